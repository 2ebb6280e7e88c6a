//! Volume topology: where a pod's persistent volumes let it run. A bound
//! claim's PersistentVolume pins its node affinity (usually one zone); an
//! unbound claim whose StorageClass lists `allowedTopologies` is limited to
//! those. As upstream does, only the first OR-ed term of either is used.

use crate::state::CachedPod;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use karpenter_api::requirements::{Requirement, Requirements};

/// Why a pod's volume topology cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    /// The pod uses a claim that does not exist (yet): retry once it does.
    #[error("persistentvolumeclaim {claim} not found")]
    ClaimNotFound {
        /// `namespace/name`.
        claim: String,
    },
    /// A volume's node affinity or a class's allowed topologies is malformed.
    #[error("volume topology: {0}")]
    Topology(String),
}

/// The node requirements a pod's volumes impose, found among `claims`,
/// `volumes` and `classes`; `Err` when a claim the pod uses does not exist.
pub fn volume_requirements(
    pod: &CachedPod,
    claims: &[PersistentVolumeClaim],
    volumes: &[PersistentVolume],
    classes: &[StorageClass],
) -> Result<Requirements, VolumeError> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let pod_name = pod.metadata.name.as_deref().unwrap_or_default();
    let mut out = Requirements::default();
    for volume in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let (claim_name, template_class) = if let Some(source) = &volume.persistent_volume_claim {
            (source.claim_name.clone(), None)
        } else if let Some(ephemeral) = &volume.ephemeral {
            let class = ephemeral
                .volume_claim_template
                .as_ref()
                .and_then(|t| t.spec.storage_class_name.clone());
            (format!("{pod_name}-{}", volume.name), Some(class))
        } else {
            continue;
        };
        let claim = claims.iter().find(|c| {
            c.metadata.name.as_deref() == Some(claim_name.as_str())
                && c.metadata.namespace.as_deref().unwrap_or("default") == namespace
        });
        let spec = claim.and_then(|c| c.spec.as_ref());
        let bound = spec.and_then(|s| s.volume_name.as_deref());
        if let Some(volume) = bound.and_then(|name| {
            volumes
                .iter()
                .find(|v| v.metadata.name.as_deref() == Some(name))
        }) {
            let term = volume
                .spec
                .as_ref()
                .and_then(|s| s.node_affinity.as_ref())
                .and_then(|a| a.required.as_ref())
                .and_then(|r| r.node_selector_terms.first());
            for expr in term
                .iter()
                .flat_map(|t| t.match_expressions.iter().flatten())
            {
                out.add(
                    Requirement::from_node_selector(expr)
                        .map_err(|e| VolumeError::Topology(e.0))?,
                );
            }
            continue;
        }
        let class_name = match (claim, template_class) {
            (Some(_), _) => spec.and_then(|s| s.storage_class_name.clone()),
            (None, Some(class)) => class,
            (None, None) => {
                return Err(VolumeError::ClaimNotFound {
                    claim: format!("{namespace}/{claim_name}"),
                });
            }
        };
        let class = class_name.and_then(|name| {
            classes
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
        });
        let term = class
            .and_then(|c| c.allowed_topologies.as_ref())
            .and_then(|t| t.first());
        for expr in term
            .iter()
            .flat_map(|t| t.match_label_expressions.iter().flatten())
        {
            let values: Vec<&str> = expr.values.iter().map(String::as_str).collect();
            out.add(
                Requirement::new(&expr.key, "In", &values)
                    .map_err(|e| VolumeError::Topology(e.0))?,
            );
        }
    }
    Ok(out)
}

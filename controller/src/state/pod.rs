//! The pod as the controller caches it: the same JSON shape as a Kubernetes
//! Pod, but only the fields scheduling, draining and the start-up metric
//! read. It is deserialized straight from the API server's responses, so the
//! rest (container commands, environments, probes, mounts, most volume
//! sources, container statuses) is never allocated at all. At 10k pods the
//! full `k8s_openapi` Pod (about 4 KB inline before any string) was most of
//! the controller's memory.
//!
//! Field names and types follow `k8s_openapi::api::core::v1`, so code reads
//! a cached pod the way it would read a full one.

use k8s_openapi::api::core::v1::{
    Affinity, ContainerPort, EphemeralVolumeSource, PersistentVolumeClaimVolumeSource,
    PodCondition, PodTemplateSpec, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A pod: metadata in full (less what [`super::trim`] drops), the
/// scheduling-relevant spec and the phase and conditions.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CachedPod {
    /// Name, namespace, uid, labels, annotations, owners, timestamps.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the pod asks of a node.
    pub spec: Option<CachedPodSpec>,
    /// Phase and conditions.
    pub status: Option<CachedPodStatus>,
}

/// The parts of a PodSpec the controller reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedPodSpec {
    /// The node the pod is bound to.
    pub node_name: Option<String>,
    /// Containers (name, requests, ports).
    #[serde(default)]
    pub containers: Vec<CachedContainer>,
    /// Init containers, sidecars (`restartPolicy: Always`) among them.
    pub init_containers: Option<Vec<CachedContainer>>,
    /// The runtime class's overhead.
    pub overhead: Option<BTreeMap<String, Quantity>>,
    /// Required node labels.
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Node and pod (anti-)affinity.
    pub affinity: Option<Affinity>,
    /// Tolerations.
    pub tolerations: Option<Vec<Toleration>>,
    /// Topology spread constraints.
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// Volumes; only claim-backed sources are kept.
    pub volumes: Option<Vec<CachedVolume>>,
    /// Priority class (critical pods drain last).
    pub priority_class_name: Option<String>,
    /// Resolved priority.
    pub priority: Option<i32>,
}

/// A container as scheduling sees it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedContainer {
    /// Container name.
    #[serde(default)]
    pub name: String,
    /// Requests and limits (limits only feed the node metrics: the API
    /// server defaults missing requests from them).
    pub resources: Option<CachedResources>,
    /// Ports (host ports matter).
    pub ports: Option<Vec<ContainerPort>>,
    /// `Always` on an init container makes it a sidecar.
    pub restart_policy: Option<String>,
}

/// A container's resource requests, as a list: a one- or two-entry
/// `BTreeMap` allocates room for eleven (about 640 B per container, 6 MB at
/// 10k pods).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CachedResources {
    /// Resource name and amount, as in `resources.requests`.
    #[serde(default, deserialize_with = "map_as_list")]
    pub requests: Vec<(String, Quantity)>,
    /// Resource name and amount, as in `resources.limits`.
    #[serde(default, deserialize_with = "map_as_list")]
    pub limits: Vec<(String, Quantity)>,
}

/// A JSON object (absent or null: empty) as its entries in key order.
fn map_as_list<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, Quantity)>, D::Error> {
    let map: Option<BTreeMap<String, Quantity>> = Option::deserialize(deserializer)?;
    Ok(map.into_iter().flatten().collect())
}

/// A volume: its name and, when it has one, the claim it is backed by.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedVolume {
    /// Volume name (a generic ephemeral volume's claim is `<pod>-<name>`).
    #[serde(default)]
    pub name: String,
    /// A PersistentVolumeClaim.
    pub persistent_volume_claim: Option<PersistentVolumeClaimVolumeSource>,
    /// A generic ephemeral volume (a claim from a template).
    pub ephemeral: Option<EphemeralVolumeSource>,
}

/// The parts of a PodStatus the controller reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedPodStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed`.
    pub phase: Option<String>,
    /// `PodScheduled`, `Ready`, ...
    pub conditions: Option<Vec<PodCondition>>,
}

impl CachedPod {
    /// The pod a template (a DaemonSet's, say) would make, as cached. The
    /// cached shape is a subset of the full one, so an error here means a
    /// spec the API server should not have accepted.
    pub fn from_template(template: PodTemplateSpec) -> Result<Self, serde_json::Error> {
        let spec = match template.spec {
            Some(spec) => Some(serde_json::from_value(serde_json::to_value(spec)?)?),
            None => None,
        };
        Ok(CachedPod {
            metadata: template.metadata.unwrap_or_default(),
            spec,
            status: None,
        })
    }
}

impl k8s_openapi::Resource for CachedPod {
    const API_VERSION: &'static str = "v1";
    const GROUP: &'static str = "";
    const KIND: &'static str = "Pod";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "pods";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for CachedPod {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_what_the_controllers_need_and_drops_the_rest() {
        let pod: CachedPod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "nodeName": "n1",
                "containers": [{"name": "app", "image": "app",
                    "command": ["/app"], "env": [{"name": "A", "value": "1"}],
                    "ports": [{"containerPort": 80, "hostPort": 8080}],
                    "resources": {"requests": {"memory": "1Gi", "cpu": "500m"},
                        "limits": {"cpu": "1"}}}],
                "initContainers": [{"name": "sidecar", "restartPolicy": "Always",
                    "resources": {"requests": null}}],
                "volumes": [
                    {"name": "token", "projected": {"sources": []}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                ],
                "priorityClassName": "system-node-critical",
            },
            "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "image": "app", "imageID": "x",
                    "ready": true, "restartCount": 0}]},
        }))
        .unwrap();
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert_eq!(
            spec.containers[0].ports.as_ref().unwrap()[0].host_port,
            Some(8080)
        );
        let requests: Vec<(&str, &str)> = spec.containers[0]
            .resources
            .iter()
            .flat_map(|r| &r.requests)
            .map(|(name, q)| (name.as_str(), q.0.as_str()))
            .collect();
        assert_eq!(requests, [("cpu", "500m"), ("memory", "1Gi")]);
        let init = &spec.init_containers.as_ref().unwrap()[0];
        assert!(init.resources.as_ref().unwrap().requests.is_empty());
        assert_eq!(init.restart_policy.as_deref(), Some("Always"));
        let volumes = spec.volumes.as_ref().unwrap();
        assert!(volumes[0].persistent_volume_claim.is_none());
        assert_eq!(
            volumes[1]
                .persistent_volume_claim
                .as_ref()
                .unwrap()
                .claim_name,
            "data"
        );
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.conditions.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn is_a_kube_resource_for_pods() {
        use kube::Resource;
        assert_eq!(CachedPod::kind(&()), "Pod");
        assert_eq!(CachedPod::plural(&()), "pods");
        assert_eq!(CachedPod::api_version(&()), "v1");
        let pod = CachedPod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let reference = pod.object_ref(&());
        assert_eq!(reference.kind.as_deref(), Some("Pod"));
        assert_eq!(reference.namespace.as_deref(), Some("ns"));
    }
}

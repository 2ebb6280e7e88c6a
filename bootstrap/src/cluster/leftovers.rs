//! Objects of Karpenter's old APIs still in the cluster: v1alpha5
//! `Provisioner`s and `Machine`s, v1alpha1 `AWSNodeTemplate`s, and v1
//! CRDs whose `status.storedVersions` still lists v1beta1. The v1
//! controller acts on none of them, so `status` and `apply` name them with
//! the `convert` command that turns them into v1 objects.

use crate::Error;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams};

/// One kind of old object found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// The resource (`provisioners.karpenter.sh`).
    pub resource: String,
    /// What was found (`2 objects, karpenter.sh/v1alpha5`).
    pub found: String,
    /// What to do about it.
    pub hint: String,
}

/// The old APIs' CRDs, and what to do with their objects.
const OLD_KINDS: &[(&str, &str)] = &[
    (
        "provisioners.karpenter.sh",
        "convert them: `kubectl get provisioners.karpenter.sh,awsnodetemplates.karpenter.k8s.aws -o yaml | karpenter-bootstrap convert - > v1.yaml`, apply v1.yaml, then delete the old objects and their CRD",
    ),
    (
        "awsnodetemplates.karpenter.k8s.aws",
        "convert them with the Provisioners that use them: `kubectl get provisioners.karpenter.sh,awsnodetemplates.karpenter.k8s.aws -o yaml | karpenter-bootstrap convert - > v1.yaml`",
    ),
    (
        "machines.karpenter.sh",
        "the old controller's records of its nodes: v1 does not adopt them; replace their nodes (cordon and drain) once the converted NodePools can launch, then delete the Machines and their CRD",
    ),
];

/// The v1 CRDs whose stored versions must be v1 only.
const V1_CRDS: &[&str] = &[
    "nodepools.karpenter.sh",
    "nodeclaims.karpenter.sh",
    "ec2nodeclasses.karpenter.k8s.aws",
];

/// The CRD called `name`, if the cluster has it.
async fn crd(
    crds: &Api<CustomResourceDefinition>,
    name: &str,
) -> Result<Option<CustomResourceDefinition>, Error> {
    crds.get_opt(name)
        .await
        .map_err(|e| Error::kube(&format!("crd {name}"), "get", e))
}

/// Every old-API leftover in the cluster.
pub async fn find(client: &kube::Client) -> Result<Vec<Leftover>, Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut found = Vec::new();
    for (name, hint) in OLD_KINDS {
        let Some(crd) = crd(&crds, name).await? else {
            continue;
        };
        let Some(version) = crd.spec.versions.iter().find(|v| v.storage) else {
            continue;
        };
        let api_resource = ApiResource {
            group: crd.spec.group.clone(),
            version: version.name.clone(),
            api_version: format!("{}/{}", crd.spec.group, version.name),
            kind: crd.spec.names.kind.clone(),
            plural: crd.spec.names.plural.clone(),
        };
        let objects: Api<DynamicObject> = Api::all_with(client.clone(), &api_resource);
        let count = objects
            .list_metadata(&ListParams::default())
            .await
            .map_err(|e| Error::kube(name, "list", e))?
            .items
            .len();
        found.push(Leftover {
            resource: name.to_string(),
            found: format!("{count} object(s), {}", api_resource.api_version),
            hint: if count == 0 {
                "no objects left: delete the CRD".to_string()
            } else {
                hint.to_string()
            },
        });
    }
    for name in V1_CRDS {
        let Some(crd) = crd(&crds, name).await? else {
            continue;
        };
        let old: Vec<String> = crd
            .status
            .and_then(|s| s.stored_versions)
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v != "v1")
            .collect();
        if old.is_empty() {
            continue;
        }
        let (group, plural) = (crd.spec.group, crd.spec.names.plural);
        found.push(Leftover {
            resource: name.to_string(),
            found: format!("objects may still be stored as {}", old.join(", ")),
            hint: format!(
                "`kubectl get {plural}.{}.{group} -o yaml | karpenter-bootstrap convert -` and apply the output (or re-apply your manifests as v1), then remove {} from the CRD's status.storedVersions; the API server refuses a CRD without a version it still stores",
                old[0],
                old.join(", ")
            ),
        });
    }
    Ok(found)
}

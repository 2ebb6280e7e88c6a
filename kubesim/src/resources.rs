//! The kinds the API server serves: the built-in table, plus kinds added at run
//! time by CustomResourceDefinitions.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// One servable resource (`pods`, `deployments.apps`, `nodepools.karpenter.sh`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceType {
    /// API group, empty for the core group.
    pub group: String,
    /// Version served (one per resource).
    pub version: String,
    /// Kind (`Pod`).
    pub kind: String,
    /// URL plural (`pods`).
    pub plural: String,
    /// Lower-case singular (`pod`).
    pub singular: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names for kubectl (`po`).
    pub short_names: Vec<String>,
    /// Categories for kubectl (`all`).
    pub categories: Vec<String>,
    /// Subresources besides the object itself (`status`, `binding`, `eviction`, `scale`).
    pub subresources: Vec<String>,
    /// The CRD schema (openAPIV3Schema) for custom resources.
    pub schema: Option<Arc<JSONSchemaProps>>,
    /// The schema's compiled CEL rules, when it has any.
    pub rules: Option<Arc<crate::cel::CelRules>>,
    /// A CRD's `additionalPrinterColumns`, for `kubectl get`.
    pub printer_columns: Option<Arc<Vec<serde_json::Value>>>,
}

impl ResourceType {
    /// `apiVersion` of objects (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (or `plural` for the core group): the store's key.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// True when writes to the spec bump `metadata.generation` (custom resources
    /// and built-in kinds with a spec that controllers observe).
    pub fn tracks_generation(&self) -> bool {
        const WITH_GENERATION: &[&str] = &[
            "deployments",
            "replicasets",
            "daemonsets",
            "statefulsets",
            "poddisruptionbudgets",
            "customresourcedefinitions",
            "services",
            "persistentvolumeclaims",
        ];
        self.schema.is_some() || WITH_GENERATION.contains(&self.plural.as_str())
    }

    /// True when the resource has a `status` subresource (status is then ignored on
    /// main-resource writes and only written through `/status`).
    pub fn has_status(&self) -> bool {
        self.subresources.iter().any(|s| s == "status")
    }
}

/// Built-in kinds: (group, version, kind, plural, namespaced, short names, subresources).
/// (group, version, kind, plural, namespaced, short names, subresources).
type BuiltIn = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    &'static [&'static str],
    &'static [&'static str],
);

const BUILT_IN: &[BuiltIn] = &[
    (
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        &["ns"],
        &["status", "finalize"],
    ),
    (
        "",
        "v1",
        "Pod",
        "pods",
        true,
        &["po"],
        &["status", "binding", "eviction"],
    ),
    ("", "v1", "Node", "nodes", false, &["no"], &["status"]),
    ("", "v1", "Event", "events", true, &["ev"], &[]),
    ("", "v1", "Secret", "secrets", true, &[], &[]),
    ("", "v1", "ConfigMap", "configmaps", true, &["cm"], &[]),
    (
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &["sa"],
        &[],
    ),
    ("", "v1", "Service", "services", true, &["svc"], &["status"]),
    ("", "v1", "Endpoints", "endpoints", true, &["ep"], &[]),
    (
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        false,
        &["pv"],
        &["status"],
    ),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        &["pvc"],
        &["status"],
    ),
    (
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        &["deploy"],
        &["status", "scale"],
    ),
    (
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        &["rs"],
        &["status", "scale"],
    ),
    (
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        true,
        &["ds"],
        &["status"],
    ),
    (
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        &["sts"],
        &["status", "scale"],
    ),
    (
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        true,
        &[],
        &[],
    ),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["pdb"],
        &["status"],
    ),
    (
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        false,
        &["pc"],
        &[],
    ),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
        &["sc"],
        &[],
    ),
    (
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        false,
        &[],
        &["status"],
    ),
    (
        "storage.k8s.io",
        "v1",
        "CSINode",
        "csinodes",
        false,
        &[],
        &[],
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        &[],
        &[],
    ),
    ("events.k8s.io", "v1", "Event", "events", true, &["ev"], &[]),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        &[],
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
        &[],
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
        &[],
    ),
    (
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
        &["status"],
    ),
];

/// Kinds kubectl lists under `kubectl get all`.
const CATEGORY_ALL: &[&str] = &[
    "pods",
    "services",
    "deployments",
    "replicasets",
    "daemonsets",
    "statefulsets",
];

/// Kinds by (group, version, plural).
type Kinds = BTreeMap<(String, String, String), ResourceType>;

/// The table of servable kinds, shared by the API server and the CRD controller.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    by_path: Arc<RwLock<Kinds>>,
}

impl Registry {
    /// A registry with every built-in kind.
    pub fn with_built_ins() -> Self {
        let registry = Registry::default();
        for (group, version, kind, plural, namespaced, short, sub) in BUILT_IN {
            registry.add(ResourceType {
                group: group.to_string(),
                version: version.to_string(),
                kind: kind.to_string(),
                plural: plural.to_string(),
                singular: kind.to_lowercase(),
                namespaced: *namespaced,
                short_names: short.iter().map(|s| s.to_string()).collect(),
                categories: if CATEGORY_ALL.contains(plural) {
                    vec!["all".into()]
                } else {
                    vec![]
                },
                subresources: sub.iter().map(|s| s.to_string()).collect(),
                schema: None,
                rules: None,
                printer_columns: None,
            });
        }
        registry
    }

    /// Adds or replaces a kind.
    pub fn add(&self, rt: ResourceType) {
        let key = (rt.group.clone(), rt.version.clone(), rt.plural.clone());
        self.by_path.write().expect("registry lock").insert(key, rt);
    }

    /// Removes a kind (its CRD was deleted).
    pub fn remove(&self, group: &str, plural: &str) {
        self.by_path
            .write()
            .expect("registry lock")
            .retain(|(g, _, p), _| !(g == group && p == plural));
    }

    /// The kind served at `/apis/{group}/{version}/{plural}`.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        let key = (group.to_string(), version.to_string(), plural.to_string());
        self.by_path
            .read()
            .expect("registry lock")
            .get(&key)
            .cloned()
    }

    /// Every kind, sorted by group, version and plural.
    pub fn all(&self) -> Vec<ResourceType> {
        self.by_path
            .read()
            .expect("registry lock")
            .values()
            .cloned()
            .collect()
    }
}

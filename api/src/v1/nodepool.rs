//! `karpenter.sh/v1` NodePool: the template and constraints for nodes Karpenter launches.

use super::common::*;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A NodePool: what nodes may look like, how many, and how they may be disrupted.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "karpenter.sh",
    version = "v1",
    derive = "PartialEq",
    kind = "NodePool",
    plural = "nodepools",
    status = "NodePoolStatus",
    category = "karpenter",
    scale = r#"{"specReplicasPath":".spec.replicas","statusReplicasPath":".status.nodes"}"#,
    printcolumn = r#"{"name":"NodeClass","type":"string","jsonPath":".spec.template.spec.nodeClassRef.name"}"#,
    printcolumn = r#"{"name":"Nodes","type":"string","jsonPath":".status.nodes"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Weight","type":"integer","jsonPath":".spec.weight","priority":1}"#,
    printcolumn = r#"{"name":"CPU","type":"string","jsonPath":".status.resources.cpu","priority":1}"#,
    printcolumn = r#"{"name":"Memory","type":"string","jsonPath":".status.resources.memory","priority":1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolSpec {
    /// The template every NodeClaim of this pool is made from.
    pub template: NodeClaimTemplate,
    /// How and when nodes of this pool may be disrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption: Option<Disruption>,
    /// Upper bounds on the resources all nodes of this pool may add up to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceList>,
    /// Priority among pools (1..100, higher first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub weight: Option<i32>,
    /// A static node count (alpha, `StaticCapacity` feature gate upstream).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub replicas: Option<i64>,
}

/// The NodeClaim template of a NodePool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimTemplate {
    /// Labels and annotations every node of the pool gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    /// The NodeClaim spec.
    pub spec: NodeClaimTemplateSpec,
}

/// The labels and annotations of a NodeClaim template.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Labels copied to NodeClaims and Nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 100))]
    pub labels: Option<StringMap>,
    /// Annotations copied to NodeClaims and Nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
}

/// The spec part of a NodeClaim template (a NodeClaim spec without resources).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimTemplateSpec {
    /// Taints every node gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taints: Option<Vec<Taint>>,
    /// Taints present at start-up that something else removes once the node is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_taints: Option<Vec<Taint>>,
    /// Constraints on instance type, zone, capacity type, architecture and custom labels.
    #[schemars(extend("maxItems" = 100))]
    pub requirements: Vec<NodeSelectorRequirementWithMinValues>,
    /// The EC2NodeClass nodes are launched with.
    pub node_class_ref: NodeClassReference,
    /// Node lifetime before it is replaced (`720h` default, or `Never`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(([0-9]+(s|m|h))+|Never)$"))]
    pub expire_after: Option<String>,
    /// How long a draining node may wait for pods before it is forcibly terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^([0-9]+(s|m|h))+$"))]
    pub termination_grace_period: Option<String>,
}

/// Disruption settings of a NodePool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Disruption {
    /// How long after the last pod event a node may be consolidated (`Never` turns it off).
    /// Required when `disruption` is given; an absent `disruption` defaults to `consolidateAfter: 0s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(([0-9]+(s|m|h))+|Never)$"))]
    pub consolidate_after: Option<String>,
    /// `WhenEmptyOrUnderutilized` (default), `WhenEmpty` or `Balanced` (consolidate
    /// an occupied node only when the saving is worth the disruption).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["WhenEmpty", "WhenEmptyOrUnderutilized", "Balanced"]))]
    pub consolidation_policy: Option<String>,
    /// Limits on how many nodes may be disrupted at once (default: 10%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxItems" = 50))]
    pub budgets: Option<Vec<Budget>>,
}

/// Consolidation policy: remove only empty nodes.
pub const CONSOLIDATION_WHEN_EMPTY: &str = "WhenEmpty";
/// Consolidation policy: remove empty nodes and replace under-used ones.
pub const CONSOLIDATION_WHEN_EMPTY_OR_UNDERUTILIZED: &str = "WhenEmptyOrUnderutilized";
/// Consolidation policy: replace or remove an occupied node only when its
/// share of the pool's cost saved is at least half its share of the pool's
/// disruption ([`BALANCED_K`]).
pub const CONSOLIDATION_BALANCED: &str = "Balanced";
/// The consolidation policies, as the CRD lists them.
pub const CONSOLIDATION_POLICIES: &[&str] = &[
    CONSOLIDATION_WHEN_EMPTY,
    CONSOLIDATION_WHEN_EMPTY_OR_UNDERUTILIZED,
    CONSOLIDATION_BALANCED,
];
/// `Balanced` approves a move whose score (saving fraction over disruption
/// fraction) is at least `1 / BALANCED_K` (upstream's constant).
pub const BALANCED_K: u32 = 2;
/// Disruption reasons a budget may be limited to.
pub const DISRUPTION_REASONS: &[&str] = &["Underutilized", "Empty", "Drifted"];

/// A disruption budget: at most `nodes` at once, optionally only in a schedule window.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// Reasons the budget applies to; all reasons when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("items" = {"type": "string", "enum": ["Underutilized", "Empty", "Drifted"]}))]
    pub reasons: Option<Vec<String>>,
    /// A node count (`5`) or a percentage of the pool's nodes (`10%`, rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^((100|[0-9]{1,2})%|[0-9]+)$"))]
    pub nodes: Option<String>,
    /// Cron schedule (UTC) when the budget becomes active; needs `duration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^(@(annually|yearly|monthly|weekly|daily|midnight|hourly))|((.+)\s(.+)\s(.+)\s(.+)\s(.+))$"
    ))]
    pub schedule: Option<String>,
    /// How long the budget stays active after each scheduled time; needs `schedule`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^((([0-9]+(h|m))|([0-9]+h[0-9]+m))(0s)?)$"))]
    pub duration: Option<String>,
}

/// Observed state of a NodePool.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolStatus {
    /// Resources of all nodes of the pool, plus `nodes` (the node count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceList>,
    /// Number of nodes in the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<i64>,
    /// Generation of the EC2NodeClass last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_class_observed_generation: Option<i64>,
    /// `Ready`, `NodeClassReady`, `ValidationSucceeded`, `NodeRegistrationHealthy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

/// NodePool condition types.
pub mod nodepool_conditions {
    /// The pool can launch nodes.
    pub const READY: &str = "Ready";
    /// The referenced EC2NodeClass is ready.
    pub const NODE_CLASS_READY: &str = "NodeClassReady";
    /// The spec passed validation.
    pub const VALIDATION_SUCCEEDED: &str = "ValidationSucceeded";
    /// Recently launched nodes registered.
    pub const NODE_REGISTRATION_HEALTHY: &str = "NodeRegistrationHealthy";
}

/// The version of [`NodePool::template_hash`] (annotation
/// `karpenter.sh/nodepool-hash-version`). It is this project's own, not
/// upstream's `v3`: the algorithms differ, and a different version is how
/// upstream's drift-hash versioning tells a controller to re-stamp the
/// NodeClaims rather than drift them. Taking over from upstream, the hash
/// controller ([`crate::labels::NODEPOOL_HASH_VERSION_ANNOTATION`]) re-stamps
/// claims marked `v3`; after a rollback, upstream's re-stamps claims marked
/// with this version. Either way no node is replaced for the switch.
pub const NODEPOOL_HASH_VERSION: &str = "karpenter-rs-v1";

impl NodePool {
    /// A hash of the template fields whose change makes existing nodes stale
    /// (labels, annotations, taints, startup taints, node class, lifetimes).
    /// Requirements are left out, as upstream does: they drift by comparison
    /// with each NodeClaim's labels instead.
    pub fn template_hash(&self) -> String {
        let template = &self.spec.template;
        let hashed = serde_json::json!({
            "metadata": template.metadata,
            "taints": template.spec.taints,
            "startupTaints": template.spec.startup_taints,
            "nodeClassRef": template.spec.node_class_ref,
            "expireAfter": template.spec.expire_after,
            "terminationGracePeriod": template.spec.termination_grace_period,
        });
        fnv_hash(&hashed)
    }
}

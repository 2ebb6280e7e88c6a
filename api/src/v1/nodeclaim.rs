//! `karpenter.sh/v1` NodeClaim: one node Karpenter launched or is launching.

use super::common::*;
use super::nodepool::NodeClaimTemplateSpec;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A request for one node, and the state of the instance that fulfils it.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "karpenter.sh",
    version = "v1",
    derive = "PartialEq",
    kind = "NodeClaim",
    plural = "nodeclaims",
    status = "NodeClaimStatus",
    category = "karpenter",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".metadata.labels.node\\.kubernetes\\.io/instance-type"}"#,
    printcolumn = r#"{"name":"Capacity","type":"string","jsonPath":".metadata.labels.karpenter\\.sh/capacity-type"}"#,
    printcolumn = r#"{"name":"Zone","type":"string","jsonPath":".metadata.labels.topology\\.kubernetes\\.io/zone"}"#,
    printcolumn = r#"{"name":"Node","type":"string","jsonPath":".status.nodeName"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"ImageID","type":"string","jsonPath":".status.imageID","priority":1}"#,
    printcolumn = r#"{"name":"ID","type":"string","jsonPath":".status.providerID","priority":1}"#,
    printcolumn = r#"{"name":"NodePool","type":"string","jsonPath":".metadata.labels.karpenter\\.sh/nodepool","priority":1}"#,
    printcolumn = r#"{"name":"NodeClass","type":"string","jsonPath":".spec.nodeClassRef.name","priority":1}"#,
    printcolumn = r#"{"name":"Drifted","type":"string","jsonPath":".status.conditions[?(@.type==\"Drifted\")].status","priority":1}"#
)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimSpec {
    /// Taints, requirements, node class, lifetimes: the fields a NodeClaim shares
    /// with its NodePool's template (flattened: they sit directly under `spec`).
    #[serde(flatten)]
    pub template: NodeClaimTemplateSpec,
    /// Resources the pods planned for this node request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Resource requests of the pods a NodeClaim was created for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirements {
    /// Requested resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceList>,
}

/// Observed state of a NodeClaim.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClaimStatus {
    /// Name of the Node that registered for this claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    /// Cloud provider ID (`aws:///us-east-1a/i-0123...`).
    #[serde(
        default,
        rename = "providerID",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider_id: Option<String>,
    /// Image the instance was launched from.
    #[serde(default, rename = "imageID", skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Instance capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<ResourceList>,
    /// Capacity left for pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocatable: Option<ResourceList>,
    /// `Launched`, `Registered`, `Initialized`, `Ready`, `Drifted`, `Consolidatable`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// Last time a pod was bound to or removed from the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_pod_event_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}

/// NodeClaim condition types.
pub mod nodeclaim_conditions {
    /// The instance was created.
    pub const LAUNCHED: &str = "Launched";
    /// A Node with the claim's provider ID joined the cluster.
    pub const REGISTERED: &str = "Registered";
    /// The Node is ready, start-up taints are gone and extended resources are present.
    pub const INITIALIZED: &str = "Initialized";
    /// Launched, Registered and Initialized.
    pub const READY: &str = "Ready";
    /// The claim no longer matches its NodePool or EC2NodeClass.
    pub const DRIFTED: &str = "Drifted";
    /// The node may be consolidated (consolidateAfter has passed).
    pub const CONSOLIDATABLE: &str = "Consolidatable";
    /// The node is being disrupted; the reason says why.
    pub const DISRUPTION_REASON: &str = "DisruptionReason";
    /// The instance is being terminated.
    pub const INSTANCE_TERMINATING: &str = "InstanceTerminating";
    /// The node's state agrees with the claim.
    pub const CONSISTENT_STATE_FOUND: &str = "ConsistentStateFound";
    /// Volumes are detached from the draining node.
    pub const VOLUMES_DETACHED: &str = "VolumesDetached";
    /// The node has been drained.
    pub const DRAINED: &str = "Drained";
}

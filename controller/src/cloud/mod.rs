//! The cloud-provider interface: everything the controller asks of EC2 goes
//! through [`CloudProvider`]. Two implementations: [`aws::AwsCloudProvider`]
//! on the official SDK, and `karpenter_sim::ec2::SimulatedEc2`, in-process and
//! deterministic, for the offline demo, load tests and fast controller tests.

pub mod aws;
pub mod offerings;

use crate::catalog::{CapacityType, InstanceType, Resources};
use karpenter_api::v1::{EC2NodeClass, EC2NodeClassStatus, NodeClaim, NodePool};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// How long an offering stays unavailable after a launch found no capacity
/// (upstream's insufficient-capacity cache).
pub const UNAVAILABLE_FOR: Duration = Duration::from_secs(180);

/// A launched instance.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// EC2 instance id (`i-0123456789abcdef0`).
    pub id: String,
    /// Kubernetes provider ID (`aws:///us-east-1a/i-0123456789abcdef0`).
    pub provider_id: String,
    /// Instance type name.
    pub instance_type: String,
    /// Availability zone.
    pub zone: String,
    /// How it was bought.
    pub capacity_type: CapacityType,
    /// The AMI it runs.
    pub image_id: String,
    /// Node capacity.
    pub capacity: Resources,
    /// Node allocatable.
    pub allocatable: Resources,
    /// Its tags (cluster, NodePool, NodeClaim, EC2NodeClass, Name, ...).
    pub tags: BTreeMap<String, String>,
}

/// The Elastic Fabric Adapters a launch of `t` for `claim` attaches: all
/// the type can take when the NodeClaim asks for EFA, else none (upstream's
/// `getEFACountForInstance`).
pub fn efa_interfaces(t: &InstanceType, claim: &NodeClaim) -> u32 {
    let asks = claim
        .spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .is_some_and(|r| r.contains_key(karpenter_api::labels::RESOURCE_EFA));
    if asks { t.efas } else { 0 }
}

/// A node's capacity and allocatable on `t` with `efas` adapters attached:
/// the type's, with `vpc.amazonaws.com/efa` only when adapters are attached
/// (a node without them never advertises it, and a NodeClaim that expected
/// it would never be Initialized).
pub fn node_resources(
    t: &InstanceType,
    kubelet: &crate::catalog::KubeletSettings,
    efas: u32,
) -> (Resources, Resources) {
    let mut capacity = t.capacity(kubelet);
    let mut allocatable = t.allocatable(kubelet);
    if efas == 0 {
        capacity.remove(karpenter_api::labels::RESOURCE_EFA);
        allocatable.remove(karpenter_api::labels::RESOURCE_EFA);
    }
    (capacity, allocatable)
}

/// Why a cloud call failed; each message says what to do about it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CloudError {
    /// No offering the NodeClaim allows has capacity now.
    #[error("insufficient capacity: no capacity in any allowed offering (tried {})", tried.join(", "))]
    InsufficientCapacity {
        /// The offerings tried (`type/zone/capacity-type`).
        tried: Vec<String>,
    },
    /// The NodeClaim allows nothing that exists.
    #[error("no offering matches the NodeClaim's requirements: {0}")]
    NoCompatibleOffering(String),
    /// The instance does not exist (any more).
    #[error("instance {0} not found")]
    NotFound(String),
    /// The request is malformed (a bad provider ID, ...).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The EC2NodeClass is not resolved yet (no subnets, AMIs, ...); the
    /// message names the missing part.
    #[error("EC2NodeClass not ready: {0}")]
    NodeClassNotReady(String),
    /// The credentials may not do this (AWS's message, with the operation).
    #[error("unauthorized: {0}; check the controller's IAM policy")]
    Unauthorized(String),
    /// Any other AWS error, as AWS reported it.
    #[error("{operation}: {code}: {message}")]
    Api {
        /// The API operation (`CreateFleet`).
        operation: &'static str,
        /// AWS's error code (`InvalidParameterValue`).
        code: String,
        /// AWS's message.
        message: String,
    },
}

/// What the controller needs from a cloud.
pub trait CloudProvider: Send + Sync {
    /// Launches an instance for `claim`, the cheapest its requirements allow
    /// (instance types, zones, capacity types; reserved, then spot, then on-demand).
    fn create(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
    ) -> impl Future<Output = Result<Instance, CloudError>> + Send;

    /// The instance behind a provider ID.
    fn get(&self, provider_id: &str) -> impl Future<Output = Result<Instance, CloudError>> + Send;

    /// Every instance launched for this cluster.
    fn list(&self) -> impl Future<Output = Result<Vec<Instance>, CloudError>> + Send;

    /// Terminates an instance; `NotFound` when it is already gone.
    fn delete(&self, provider_id: &str) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// Adds (or overwrites) tags on a running instance; `NotFound` when it
    /// is gone.
    fn tag(
        &self,
        provider_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;

    /// The instance types a NodePool may use, with current offerings (prices
    /// and availability).
    fn instance_types(
        &self,
        pool: &NodePool,
        class: &EC2NodeClass,
    ) -> impl Future<Output = Result<Vec<InstanceType>, CloudError>> + Send;

    /// Why the NodeClaim's instance no longer matches its NodeClass (a new
    /// AMI, ...), or `None`.
    fn is_drifted(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
    ) -> impl Future<Output = Result<Option<String>, CloudError>> + Send;

    /// Marks an offering unavailable for [`UNAVAILABLE_FOR`] (a launch found no
    /// capacity, or a spot interruption reclaimed it).
    fn mark_unavailable(&self, instance_type: &str, zone: &str, capacity_type: CapacityType);

    /// Resolves an EC2NodeClass's selectors (subnets, security groups, AMIs,
    /// instance profile) into the status to write, conditions included.
    fn resolve_node_class(
        &self,
        class: &EC2NodeClass,
    ) -> impl Future<Output = EC2NodeClassStatus> + Send;

    /// Removes what the provider made for a deleted EC2NodeClass (its launch
    /// templates and its managed instance profile).
    fn finalize_node_class(
        &self,
        class: &EC2NodeClass,
    ) -> impl Future<Output = Result<(), CloudError>> + Send;
}

/// The provider ID in a NodeClaim's status, or an error saying it has none yet.
pub fn claim_provider_id(claim: &NodeClaim) -> Result<&str, CloudError> {
    claim
        .status
        .as_ref()
        .and_then(|s| s.provider_id.as_deref())
        .ok_or_else(|| CloudError::Invalid("the NodeClaim has no provider ID yet".into()))
}

/// Splits `aws:///<zone>/<instance id>` into zone and id.
pub fn parse_provider_id(provider_id: &str) -> Result<(&str, &str), CloudError> {
    provider_id
        .strip_prefix("aws:///")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(zone, id)| !zone.is_empty() && id.starts_with("i-"))
        .ok_or_else(|| {
            CloudError::Invalid(format!(
                "provider ID {provider_id:?} is not aws:///<zone>/<instance id>"
            ))
        })
}

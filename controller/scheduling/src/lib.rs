//! The scheduling engine: which pending pods go on existing or launching
//! nodes, and which new NodeClaims to create, cheapest fitting first. Pure code
//! (no I/O, no async, no Kubernetes client or cloud: the manifest has none),
//! so it can be tested and benchmarked alone. Callers describe pods with
//! [`PodFacts`] and NodePools with the API types and [`karpenter_catalog`].
//!
//! What it handles: requests (CPU, memory, ephemeral storage, pods, extended
//! resources; init containers; overhead), nodeSelector and required node
//! affinity (OR-ed terms), taints and tolerations (`PreferNoSchedule` avoided
//! until relaxed), host ports, NodePool weight order, template requirements and
//! labels, limits counted with in-flight capacity, `minValues`, DaemonSet
//! overhead, zones and capacity types through offerings, topology spread
//! (any key; `maxSkew`, `minDomains`, node affinity and taint policies,
//! `matchLabelKeys`), required pod affinity and anti-affinity (including the
//! anti-affinity of running pods), preferences relaxed in upstream's order
//! ([`Preference`]), volume topology (as node requirements the caller adds with
//! [`PodInfo::restrict`]), and an
//! explanation for every pod that cannot be placed.
//!
//! Packing is first-fit-decreasing onto planned claims that grow: a claim's
//! price is its cheapest instance type that holds all its pods, and a pod may
//! join a claim only if the claim's price rises by no more than a node of the
//! pod's own would cost. Spare room is free; growth must beat a separate node.
//! That one rule keeps plain pods from growing on-demand or GPU nodes, pods
//! that narrow a claim (on-demand only, one zone) from making it dearer for
//! the others, and claims out of giant special-purpose types. A pod that no
//! new node can take (affinity to a pod on a planned claim) may grow a claim
//! at any price. Pods that fail are retried after the others while that helps.

mod bound;
mod claim;
mod pod;
mod pool;
mod resources;
mod solve;
mod topology;

pub use bound::{BoundError, lower_bound};
pub use claim::MAX_INSTANCE_TYPES;
pub use pod::{InvalidPod, InvalidSelector, PodFacts, PodInfo, Preference, label_selector};
pub use pool::{Candidate, InvalidPool, OfferingFilter, Pool};
pub use resources::Resources;
pub use solve::{ExistingNode, NewClaim, Solution, solve, solve_on};
pub use topology::{Kind, NodeFilter, TopologyTerm};

//! The scheduling engine: which pending pods go on existing or launching
//! nodes, and which new NodeClaims to create, cheapest fitting first. Pure code
//! (no I/O, no async), so it can be tested and benchmarked alone.
//!
//! Covered so far: requests (CPU, memory, ephemeral storage, pods, extended
//! resources; init containers; overhead), nodeSelector and required node
//! affinity (OR-ed terms), taints and tolerations, host ports, NodePool weight
//! order, template requirements and labels, limits counted with in-flight
//! capacity, `minValues`, DaemonSet overhead, zones and capacity types through
//! offerings, and an explanation for every pod that cannot be placed.
//!
//! Packing is first-fit-decreasing onto planned claims, with three cost rules:
//! a claim that has an efficient instance type may not grow into only
//! inefficient ones; a claim without one (GPU or on-demand types) only takes
//! pods that fit its cheapest option's spare room; and a pod whose constraints
//! narrow a claim may not make it dearer for the pods already on it.
//! Not yet: topology spread, pod (anti-)affinity, preferences and relaxation,
//! volume topology (see the open scheduling issue).

mod claim;
mod pod;
mod pool;
mod resources;
mod solve;
mod topology;
mod volumes;

pub use claim::MAX_INSTANCE_TYPES;
pub use pod::{PodInfo, Preference};
pub use pool::{Candidate, Pool};
pub use resources::Resources;
pub use solve::{ExistingNode, NewClaim, Solution, solve};
pub use topology::{Kind, NodeFilter, TopologyTerm};
pub use volumes::volume_requirements;

//! The scheduling engine ([`karpenter_scheduling`], a crate of its own with no
//! client, cache or cloud in it) and the bridge from the controller's pod cache
//! to the engine's pod model: effective requests and limits, host ports, and
//! volume topology, read from [`CachedPod`](crate::state::CachedPod).

mod pod;
mod volumes;

pub use karpenter_scheduling::*;
pub use pod::{limits_of, pod_info, requests_of};
pub use volumes::{VolumeError, volume_requirements};

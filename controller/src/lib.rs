//! # karpenter-controller
//!
//! The autoscaler itself:
//!
//! - [`catalog`]: the `karpenter-catalog` crate (EC2 instance types with their Karpenter labels, capacity and
//!   allocatable as upstream computes them, and per-zone offerings with prices;
//!   an embedded us-east-1 catalog generated from real data), re-exported.
//! - [`scheduling`]: the `karpenter-scheduling` engine (pending pods to
//!   existing nodes and new NodeClaims, cheapest first), re-exported, and the
//!   bridge from this crate's pod cache to its pod model.
//! - [`cloud`]: the cloud-provider interface and EC2 on the AWS SDK (the
//!   simulated EC2, the simulated node boot and the offline demo are the
//!   `karpenter-sim` crate's).
//! - [`state`], [`controllers`], [`runtime`]: the caches, one controller per
//!   concern, and the process that runs them under leader election
//!   ([`leader`]), talking to the API server through [`api_client`].
//! - [`settings`], [`metrics`], [`endpoints`], [`events`]: configuration,
//!   Prometheus metrics, probes, logs and Kubernetes events.
//! - [`process`]: the controller as a process (connections, endpoints,
//!   signals), for this crate's binary and `karpenter-sim`'s.

pub mod api_client;
pub use karpenter_catalog as catalog;
pub mod cloud;
pub mod controllers;
pub mod endpoints;
pub mod events;
pub mod leader;
pub mod metrics;
pub mod process;
pub mod runtime;
pub mod scheduling;
pub mod settings;
pub mod state;
pub mod userdata;

/// The crate version and the git revision it was built from
/// (`0.1.0 (0123456789ab)`), as every binary's `--version` prints it.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("KARPENTER_COMMIT"),
    ")"
);

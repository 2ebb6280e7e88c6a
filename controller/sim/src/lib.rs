//! # karpenter-sim
//!
//! Everything the controller needs to run without AWS or a real cluster, kept
//! out of the production binary:
//!
//! - [`ec2`]: a simulated EC2 behind the controller's `CloudProvider`
//!   interface: deterministic for a seed, with per-offering capacity, prices
//!   from the embedded catalog, drift and the EventBridge interruption messages.
//! - [`boot`]: a simulated node boot. It reads a launch's user data the way
//!   nodeadm, Bottlerocket and AL2's `bootstrap.sh` do and registers the Node
//!   those agents would, so user data that would not join a real EKS cluster
//!   fails here too.
//! - [`demo`]: the offline demo: kubesim with its scheduler and kubelets, the
//!   simulated EC2, the real controller, and a scenario played against them.
//!
//! The `karpenter-sim` binary runs the demo (`karpenter-sim demo`, what
//! `scripts/demo` calls) or the controller process with the simulated EC2
//! against any API server (`karpenter-sim run`, as upstream's kwok provider).

pub mod boot;
pub mod demo;
pub mod ec2;

//! # karpenter-controller
//!
//! The autoscaler itself. So far:
//!
//! - [`catalog`]: EC2 instance types with their Karpenter labels, capacity and
//!   allocatable as upstream computes them, and per-zone offerings with prices;
//!   an embedded us-east-1 catalog generated from real data.
//!
//! - [`scheduling`]: the pure scheduling engine (pending pods to existing
//!   nodes and new NodeClaims, cheapest first).
//! - [`cloud`]: the cloud-provider interface and the simulated EC2.
//!
//! The AWS cloud provider and the controllers join with their issues (see the
//! repository README).

pub mod catalog;
pub mod cloud;
pub mod controllers;
pub mod scheduling;

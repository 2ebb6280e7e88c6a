//! `autoscaling.x-k8s.io/v1beta1`: CapacityBuffer, SIG Autoscaling's API
//! for spare capacity kept ahead of demand, which upstream Karpenter ships
//! with its chart.
//!
//! Served so that manifests written for upstream apply unchanged; upstream
//! acts on buffers only behind its `CapacityBuffer` feature gate (off by
//! default), and this project refuses that gate at start-up, so a buffer
//! here is stored and not acted on, as upstream does with the gate off.

mod capacitybuffer;

pub use capacitybuffer::*;

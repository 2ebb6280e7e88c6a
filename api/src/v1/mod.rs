//! The Karpenter v1 API: `karpenter.sh/v1` NodePool and NodeClaim,
//! `karpenter.k8s.aws/v1` EC2NodeClass. Field names, nesting and JSON spelling
//! match upstream exactly, so manifests written for upstream parse unchanged.
//!
//! Optional fields are `Option` (and optional lists `Option<Vec<_>>`) so that an
//! object round-trips without gaining fields; [`crate::defaults`] fills defaults
//! explicitly, as the API server would. Enum-like fields are strings on the wire,
//! as in Go, and [`crate::validation`] reports every bad value with its path.

mod ami_family;
mod common;
mod ec2nodeclass;
mod nodeclaim;
mod nodepool;

pub use ami_family::AmiFamily;
pub use common::*;
pub use ec2nodeclass::*;
pub use nodeclaim::*;
pub use nodepool::*;

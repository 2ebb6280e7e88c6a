//! The cluster side, through `kube::Client`: so far the CRDs.

pub mod crds;

/// The field manager of everything the bootstrap applies.
pub const FIELD_MANAGER: &str = "karpenter-bootstrap";

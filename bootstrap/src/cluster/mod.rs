//! The cluster side, through `kube::Client`: so far the CRDs, and the
//! NodePools' deletion that starts a teardown.

pub mod crds;
pub mod nodepools;

/// The field manager of everything the bootstrap applies.
pub const FIELD_MANAGER: &str = "karpenter-bootstrap";

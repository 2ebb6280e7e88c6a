//! The cluster side, through `kube::Client`: the CRDs, the controller's
//! Helm release, and the NodePools' deletion that starts a teardown.

pub mod crds;
pub mod leftovers;
pub mod nodepools;
pub mod release;

/// The field manager of everything the bootstrap applies.
pub const FIELD_MANAGER: &str = "karpenter-bootstrap";

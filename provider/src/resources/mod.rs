//! The resource types: Karpenter's objects (through the cluster's API).

pub mod crd;
pub mod nodepool;

/// Every resource type, by name.
pub fn all() -> Vec<crd::Kind> {
    vec![nodepool::kind()]
}

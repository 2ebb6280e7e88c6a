//! The resource types: Karpenter's objects (through the cluster's API)
//! and the node and controller IAM roles (through AWS IAM).

pub mod controller_role;
pub mod crd;
pub mod ec2nodeclass;
mod iam;
pub mod node_role;
pub mod nodepool;
pub mod status;

/// Every resource type, by name.
pub fn all() -> Vec<crd::Kind> {
    vec![nodepool::kind(), ec2nodeclass::kind()]
}

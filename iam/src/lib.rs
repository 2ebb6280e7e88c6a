//! The IAM documents Karpenter needs, built in one place so the Terraform
//! provider (`karpenter_controller_role`, `karpenter_node_role`, the
//! `karpenter_controller_policy` data source) and `karpenter-bootstrap`
//! never disagree:
//!
//! - [`controller`]: the controller's policy, statement for statement what
//!   the `terraform-aws-modules/eks` `karpenter` sub-module grants for
//!   Karpenter v1: everything that creates, tags or deletes is scoped by
//!   the cluster's tags (`kubernetes.io/cluster/<name>: owned`,
//!   `eks:eks-cluster-name`) and a `karpenter.sh/nodepool` tag, reads are
//!   limited to the region, and `iam:PassRole` to the node role; and the
//!   controller role's trust (EKS Pod Identity or IRSA).
//! - [`bootstrap`]: what whoever runs `karpenter-bootstrap` needs, and
//!   nothing more: the queue, rules, roles, EKS access and discovery tags of
//!   one cluster, by name or by tag.
//! - [`node`]: the node role's trust and the AWS-managed policies it needs
//!   (and the IPv6 CNI policy AWS does not manage).
//! - [`queue`]: the interruption queue's policy (EventBridge and SQS may
//!   send; plain HTTP is denied).
//!
//! Every function returns the document as JSON; nothing here calls AWS.
//!
//! ```
//! use karpenter_iam::controller::{ControllerPolicy, controller_policy};
//! let policy = controller_policy(&ControllerPolicy::new(
//!     "demo", "us-east-1", "123456789012",
//!     "arn:aws:iam::123456789012:role/KarpenterNodeRole-demo",
//! ));
//! assert_eq!(policy["Version"], "2012-10-17");
//! ```

pub mod bootstrap;
pub mod controller;
mod document;
pub mod node;
pub mod queue;

pub use document::{Condition, Statement, parse_document, policy};

/// The partition a region is in (`aws`, `aws-cn` or `aws-us-gov`): the
/// second field of every ARN these documents name.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

//! The AWS side: the account and cluster everything is for, the clients,
//! and the tags every resource created carries.

pub mod discovery;
pub mod eks;
pub mod oidc;
pub mod queue;
pub mod roles;
pub mod rules;
pub mod steps;
pub mod teardown;

use crate::Calls;

pub use karpenter_iam::partition_of;

/// The cluster the resources are for, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// The EKS cluster's name.
    pub cluster: String,
    /// Its region.
    pub region: String,
    /// Its account.
    pub account_id: String,
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// The node role's name (`KarpenterNodeRole-<cluster>` unless an
    /// existing role is named, e.g. one the Terraform provider manages).
    pub node_role: String,
    /// The controller role's name (`KarpenterController-<cluster>` unless given).
    pub controller_role: String,
}

impl Account {
    /// The account for `cluster` in `region`, with the default role names.
    pub fn new(cluster: &str, region: &str, account_id: &str) -> Account {
        Account {
            cluster: cluster.to_string(),
            region: region.to_string(),
            account_id: account_id.to_string(),
            partition: partition_of(region).to_string(),
            node_role: format!("KarpenterNodeRole-{cluster}"),
            controller_role: format!("KarpenterController-{cluster}"),
        }
    }
}

/// The AWS clients, and the count of calls made through them.
pub struct Clients {
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// EventBridge.
    pub events: aws_sdk_eventbridge::Client,
    /// IAM.
    pub iam: aws_sdk_iam::Client,
    /// EC2 (teardown terminates what is left of the cluster's nodes).
    pub ec2: aws_sdk_ec2::Client,
    /// EKS (access entries, Pod Identity associations).
    pub eks: aws_sdk_eks::Client,
    /// The calls made.
    pub calls: Calls,
}

impl Clients {
    /// Clients from an SDK configuration.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Clients {
            sqs: aws_sdk_sqs::Client::new(config),
            events: aws_sdk_eventbridge::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            ec2: aws_sdk_ec2::Client::new(config),
            eks: aws_sdk_eks::Client::new(config),
            calls: Calls::default(),
        }
    }
}

/// The tag that says what created a resource.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "karpenter-bootstrap");

/// Whether tags (key, value) include [`MANAGED_BY`]: the bootstrap
/// created the resource, so it may change and delete it.
pub(crate) fn created_here<'a>(mut tags: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
    tags.any(|tag| tag == MANAGED_BY)
}

/// The tags on everything created for `cluster`: the cluster's ownership
/// tag (as Karpenter's own resources carry) and who created it, so a
/// teardown finds exactly what the bootstrap made.
pub fn cluster_tags(cluster: &str) -> Vec<(String, String)> {
    vec![
        (format!("kubernetes.io/cluster/{cluster}"), "owned".into()),
        (MANAGED_BY.0.into(), MANAGED_BY.1.into()),
    ]
}

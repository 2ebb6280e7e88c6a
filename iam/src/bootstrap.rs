//! The least-privilege policy for whoever runs `karpenter-bootstrap`
//! (`plan`, `apply`, `status` and `destroy`): the operator's role in CI, or
//! a person's. The bootstrap needs nothing else, so a platform team can
//! give exactly this instead of administrator rights.
//!
//! Its scoping:
//!
//! - the interruption queue and its rules by name (`Karpenter-<cluster>`,
//!   `Karpenter-<cluster>-*`);
//! - the node and controller roles by name; managed policies attached only
//!   from AWS's own (`arn:<partition>:iam::aws:policy/*`); `iam:PassRole`
//!   only of those two roles, only to EKS Pod Identity and to the instance
//!   profile;
//! - instance profiles: the bootstrap's own by name, and the ones the
//!   controller made for this cluster (tagged
//!   `kubernetes.io/cluster/<cluster>: owned`) for `destroy` to remove;
//! - access entries and Pod Identity associations of this cluster only;
//!   OIDC providers of the region's EKS issuers only;
//! - discovery tags: only the keys `karpenter.sh/discovery` and
//!   `karpenter-bootstrap/discovery`, with this cluster's name, on subnets
//!   and security groups;
//! - `destroy --force-terminate`: only instances tagged as this cluster's
//!   and a NodePool's, as the controller's own policy.

use crate::document::{Statement, policy};
use serde_json::Value;

/// What the bootstrap policy is scoped to.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapPolicy {
    /// The EKS cluster's name.
    pub cluster_name: String,
    /// Its region.
    pub region: String,
    /// Its account.
    pub account_id: String,
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// The node role's name.
    pub node_role: String,
    /// The controller role's name.
    pub controller_role: String,
}

impl BootstrapPolicy {
    /// The policy for `cluster_name` in `region` of `account_id` (partition
    /// `aws`), with the default role names.
    pub fn new(cluster_name: &str, region: &str, account_id: &str) -> Self {
        BootstrapPolicy {
            cluster_name: cluster_name.into(),
            region: region.into(),
            account_id: account_id.into(),
            partition: "aws".into(),
            node_role: format!("KarpenterNodeRole-{cluster_name}"),
            controller_role: format!("KarpenterController-{cluster_name}"),
        }
    }

    fn arn(&self, service: &str, regional: bool, resource: &str) -> String {
        let region = if regional { self.region.as_str() } else { "" };
        format!(
            "arn:{}:{service}:{region}:{}:{resource}",
            self.partition, self.account_id
        )
    }

    fn roles(&self) -> Vec<String> {
        [&self.node_role, &self.controller_role]
            .iter()
            .map(|r| self.arn("iam", false, &format!("role/{r}")))
            .collect()
    }
}

/// The queue's actions (create, converge, read the backlog, delete).
const QUEUE: &[&str] = &[
    "sqs:CreateQueue",
    "sqs:DeleteQueue",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
    "sqs:ListQueueTags",
    "sqs:SetQueueAttributes",
    "sqs:TagQueue",
];

/// The rules' actions.
const RULES: &[&str] = &[
    "events:DeleteRule",
    "events:DescribeRule",
    "events:ListTagsForResource",
    "events:ListTargetsByRule",
    "events:PutRule",
    "events:PutTargets",
    "events:RemoveTargets",
    "events:TagResource",
];

/// The roles' actions (attaching managed policies is a statement of its own).
const ROLES: &[&str] = &[
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies",
    "iam:PutRolePolicy",
    "iam:TagRole",
    "iam:UpdateAssumeRolePolicy",
];

/// The actions on an instance profile.
const PROFILE: &[&str] = &[
    "iam:AddRoleToInstanceProfile",
    "iam:CreateInstanceProfile",
    "iam:DeleteInstanceProfile",
    "iam:GetInstanceProfile",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:TagInstanceProfile",
];

/// The EKS actions, on this cluster and what belongs to it.
const EKS: &[&str] = &[
    "eks:CreateAccessEntry",
    "eks:CreatePodIdentityAssociation",
    "eks:DeleteAccessEntry",
    "eks:DeletePodIdentityAssociation",
    "eks:DescribeAccessEntry",
    "eks:DescribeCluster",
    "eks:DescribePodIdentityAssociation",
    "eks:ListPodIdentityAssociations",
    "eks:TagResource",
    "eks:UpdatePodIdentityAssociation",
];

/// The OIDC provider's actions (IRSA).
const OIDC: &[&str] = &[
    "iam:AddClientIDToOpenIDConnectProvider",
    "iam:CreateOpenIDConnectProvider",
    "iam:DeleteOpenIDConnectProvider",
    "iam:GetOpenIDConnectProvider",
    "iam:TagOpenIDConnectProvider",
];

/// The tag keys the bootstrap puts on subnets and security groups.
const DISCOVERY_KEYS: &[&str] = &["karpenter.sh/discovery", "karpenter-bootstrap/discovery"];

/// The bootstrap policy for `p`.
pub fn bootstrap_policy(p: &BootstrapPolicy) -> Value {
    let cluster_tag = format!("kubernetes.io/cluster/{}", p.cluster_name);
    let subnets_and_groups = vec![
        format!(
            "arn:{}:ec2:{}:{}:subnet/*",
            p.partition, p.region, p.account_id
        ),
        format!(
            "arn:{}:ec2:{}:{}:security-group/*",
            p.partition, p.region, p.account_id
        ),
    ];
    policy(&[
        Statement::allow(
            "InterruptionQueue",
            QUEUE,
            &[p.arn("sqs", true, &format!("Karpenter-{}", p.cluster_name))],
        ),
        Statement::allow(
            "InterruptionRules",
            RULES,
            &[p.arn(
                "events",
                true,
                &format!("rule/Karpenter-{}-*", p.cluster_name),
            )],
        ),
        Statement::allow("Roles", ROLES, &p.roles()),
        Statement::allow(
            "RolesManagedPolicies",
            &["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
            &p.roles(),
        )
        .when(
            "ArnLike",
            "iam:PolicyARN",
            &[&format!("arn:{}:iam::aws:policy/*", p.partition)],
        ),
        Statement::allow("PassRoles", &["iam:PassRole"], &p.roles()).when(
            "StringEquals",
            "iam:PassedToService",
            &["pods.eks.amazonaws.com", "ec2.amazonaws.com"],
        ),
        Statement::allow(
            "NodeInstanceProfile",
            PROFILE,
            &[p.arn(
                "iam",
                false,
                &format!(
                    "instance-profile/KarpenterNodeInstanceProfile-{}",
                    p.cluster_name
                ),
            )],
        ),
        Statement::allow(
            "ControllerInstanceProfiles",
            &[
                "iam:RemoveRoleFromInstanceProfile",
                "iam:DeleteInstanceProfile",
            ],
            &[p.arn("iam", false, "instance-profile/*")],
        )
        .when(
            "StringEquals",
            format!("aws:ResourceTag/{cluster_tag}"),
            &["owned"],
        ),
        Statement::allow(
            "ClusterAccess",
            EKS,
            &[
                p.arn("eks", true, &format!("cluster/{}", p.cluster_name)),
                p.arn("eks", true, &format!("access-entry/{}/*", p.cluster_name)),
                p.arn(
                    "eks",
                    true,
                    &format!("podidentityassociation/{}/*", p.cluster_name),
                ),
            ],
        ),
        Statement::allow(
            "ClusterOidcProvider",
            OIDC,
            &[p.arn(
                "iam",
                false,
                &format!("oidc-provider/oidc.eks.{}.amazonaws.com/id/*", p.region),
            )],
        ),
        Statement::allow(
            "Reads",
            &["ec2:DescribeInstances", "ec2:DescribeTags"],
            &["*".into()],
        )
        .when("StringEquals", "aws:RequestedRegion", &[&p.region]),
        Statement::allow("DiscoveryTags", &["ec2:CreateTags"], &subnets_and_groups)
            .when("ForAllValues:StringEquals", "aws:TagKeys", DISCOVERY_KEYS)
            .when(
                "StringEquals",
                "aws:RequestTag/karpenter.sh/discovery",
                &[&p.cluster_name],
            ),
        Statement::allow(
            "DiscoveryTagsRemoved",
            &["ec2:DeleteTags"],
            &subnets_and_groups,
        )
        .when("ForAllValues:StringEquals", "aws:TagKeys", DISCOVERY_KEYS)
        .when(
            "StringEquals",
            "aws:ResourceTag/karpenter-bootstrap/discovery",
            &[&p.cluster_name],
        ),
        Statement::allow(
            "TerminateClusterNodes",
            &["ec2:TerminateInstances"],
            &[format!(
                "arn:{}:ec2:{}:{}:instance/*",
                p.partition, p.region, p.account_id
            )],
        )
        .when(
            "StringEquals",
            format!("aws:ResourceTag/{cluster_tag}"),
            &["owned"],
        )
        .when(
            "StringLike",
            "aws:ResourceTag/karpenter.sh/nodepool",
            &["*"],
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_is_scoped_to_the_cluster_or_its_region() {
        let doc = bootstrap_policy(&BootstrapPolicy::new("prod", "eu-west-1", "111122223333"));
        for s in doc["Statement"].as_array().unwrap() {
            let resources = s["Resource"].to_string();
            let scoped = resources.contains("prod")
                || resources.contains("eu-west-1")
                || s.get("Condition").is_some();
            assert!(scoped, "unscoped: {s}");
            assert_ne!(s["Action"], "*");
        }
    }
}

//! The node role: its trust policy (EC2), the AWS-managed policies a node
//! needs, and the IPv6 CNI policy AWS does not manage.

use crate::controller::ec2_service;
use crate::document::{Statement, policy};
use serde_json::{Value, json};

/// The cluster's IP family (the VPC CNI needs different rights for IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    /// IPv4 (the default).
    Ipv4,
    /// IPv6.
    Ipv6,
}

/// The name the IPv6 CNI policy is created under (AWS manages none).
pub const CNI_IPV6_POLICY_NAME: &str = "AmazonEKS_CNI_IPv6_Policy";

/// The node role's trust policy: EC2 may assume it.
pub fn node_trust(partition: &str) -> Value {
    policy(&[
        Statement::allow("EKSNodeAssumeRole", &["sts:AssumeRole"], &[])
            .by(json!({"Service": ec2_service(partition)})),
    ])
}

/// The AWS-managed policies to attach to the node role: worker node, the
/// CNI's for IPv4 (for IPv6 attach the policy [`cni_ipv6_policy`] creates),
/// ECR pull-only and, with `ssm`, Session Manager's.
pub fn node_managed_policy_arns(partition: &str, family: IpFamily, ssm: bool) -> Vec<String> {
    let mut names = vec!["AmazonEKSWorkerNodePolicy"];
    if family == IpFamily::Ipv4 {
        names.push("AmazonEKS_CNI_Policy");
    }
    names.push("AmazonEC2ContainerRegistryPullOnly");
    if ssm {
        names.push("AmazonSSMManagedInstanceCore");
    }
    names
        .into_iter()
        .map(|n| format!("arn:{partition}:iam::aws:policy/{n}"))
        .collect()
}

/// The VPC CNI's rights on an IPv6 cluster, as a policy to create.
pub fn cni_ipv6_policy(partition: &str) -> Value {
    policy(&[
        Statement::allow(
            "AssignDescribe",
            &[
                "ec2:AssignIpv6Addresses",
                "ec2:DescribeInstances",
                "ec2:DescribeTags",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeInstanceTypes",
            ],
            &["*".into()],
        ),
        Statement::allow(
            "CreateTags",
            &["ec2:CreateTags"],
            &[format!("arn:{partition}:ec2:*:*:network-interface/*")],
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_nodes_get_the_ipv6_cni_policy_instead_of_the_managed_one() {
        let v4 = node_managed_policy_arns("aws", IpFamily::Ipv4, false);
        assert_eq!(
            v4,
            [
                "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
                "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
                "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
            ]
        );
        let v6 = node_managed_policy_arns("aws", IpFamily::Ipv6, true);
        assert!(!v6.iter().any(|a| a.ends_with("AmazonEKS_CNI_Policy")));
        assert!(
            v6.iter()
                .any(|a| a.ends_with("AmazonSSMManagedInstanceCore"))
        );
        assert_eq!(
            node_trust("aws-cn")["Statement"][0]["Principal"],
            json!({"Service": "ec2.amazonaws.com.cn"})
        );
    }
}

//! The controller's IAM policy and its role's trust policy.
//!
//! The policy grants, statement for statement, what the
//! `terraform-aws-modules/eks` `karpenter` sub-module grants Karpenter v1
//! (the statement ids are the same, so the two diff line by line), with
//! capacity reservations among the launch resources. Its scoping:
//!
//! - launching, tagging and deleting need the cluster's tags on the request
//!   or the resource (`kubernetes.io/cluster/<name>: owned`,
//!   `eks:eks-cluster-name: <name>`) and a `karpenter.sh/nodepool` tag, so
//!   the controller cannot touch instances it did not launch;
//! - instance profiles likewise, plus `topology.kubernetes.io/region`;
//! - reads only in the cluster's region; `iam:PassRole` only for the node
//!   role and only to EC2; SQS only on the interruption queue.

use crate::document::{Statement, policy};
use serde_json::{Value, json};

/// What the controller policy is scoped to.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerPolicy {
    /// The EKS cluster's name.
    pub cluster_name: String,
    /// Its region.
    pub region: String,
    /// Its account.
    pub account_id: String,
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// The node role instances are launched with (the only role it may pass).
    pub node_role_arn: String,
    /// The interruption queue, when interruption handling is on.
    pub interruption_queue_arn: Option<String>,
    /// SSM parameters it may read for AMIs (default: AWS's public ones).
    pub ssm_parameter_arns: Vec<String>,
    /// More statements, appended as given.
    pub extra: Vec<Statement>,
}

impl ControllerPolicy {
    /// A policy for `cluster_name` in `region` of `account_id` (partition
    /// `aws`), passing `node_role_arn`, without an interruption queue.
    pub fn new(cluster_name: &str, region: &str, account_id: &str, node_role_arn: &str) -> Self {
        ControllerPolicy {
            cluster_name: cluster_name.into(),
            region: region.into(),
            account_id: account_id.into(),
            partition: "aws".into(),
            node_role_arn: node_role_arn.into(),
            interruption_queue_arn: None,
            ssm_parameter_arns: Vec::new(),
            extra: Vec::new(),
        }
    }

    /// `arn:<partition>:ec2:<region>:<account>:<resource>` for each
    /// resource (`*` as the account; images and snapshots have none).
    fn ec2(&self, resources: &[&str]) -> Vec<String> {
        resources
            .iter()
            .map(|r| {
                let account = if r.starts_with("image/") || r.starts_with("snapshot/") {
                    ""
                } else {
                    "*"
                };
                format!("arn:{}:ec2:{}:{account}:{r}", self.partition, self.region)
            })
            .collect()
    }

    fn instance_profiles(&self) -> Vec<String> {
        vec![format!(
            "arn:{}:iam::{}:instance-profile/*",
            self.partition, self.account_id
        )]
    }

    fn cluster_tag(&self, context: &str) -> String {
        format!("aws:{context}/kubernetes.io/cluster/{}", self.cluster_name)
    }
}

/// The resources a launch creates, and tags as it does.
const LAUNCHED: &[&str] = &[
    "fleet/*",
    "instance/*",
    "volume/*",
    "network-interface/*",
    "launch-template/*",
    "spot-instances-request/*",
];

/// The reads the controller makes, all regional.
const REGIONAL_READS: &[&str] = &[
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
];

/// Scoping shared by several statements.
impl ControllerPolicy {
    /// The request tags what it creates as this cluster's and a NodePool's.
    fn launched_by_cluster(&self, s: Statement) -> Statement {
        s.when("StringEquals", self.cluster_tag("RequestTag"), &["owned"])
            .when(
                "StringEquals",
                "aws:RequestTag/eks:eks-cluster-name",
                &[&self.cluster_name],
            )
            .when("StringLike", "aws:RequestTag/karpenter.sh/nodepool", &["*"])
    }

    /// The resource is this cluster's and a NodePool's.
    fn of_cluster_nodepool(&self, s: Statement) -> Statement {
        s.when("StringEquals", self.cluster_tag("ResourceTag"), &["owned"])
            .when(
                "StringLike",
                "aws:ResourceTag/karpenter.sh/nodepool",
                &["*"],
            )
    }

    /// The instance profile (`context`: `RequestTag` for what a request
    /// sets, `ResourceTag` for what it has) is this cluster's, in its
    /// region, for an EC2NodeClass.
    fn profile_of_cluster(&self, s: Statement, context: &str) -> Statement {
        s.when("StringEquals", self.cluster_tag(context), &["owned"])
            .when(
                "StringEquals",
                format!("aws:{context}/topology.kubernetes.io/region"),
                &[&self.region],
            )
            .when(
                "StringLike",
                format!("aws:{context}/karpenter.k8s.aws/ec2nodeclass"),
                &["*"],
            )
    }

    /// The request names this cluster in `eks:eks-cluster-name`.
    fn names_cluster(&self, s: Statement, test: &'static str) -> Statement {
        s.when(
            test,
            "aws:RequestTag/eks:eks-cluster-name",
            &[&self.cluster_name],
        )
    }
}

/// The controller policy's statements.
pub fn controller_statements(p: &ControllerPolicy) -> Vec<Statement> {
    let region = p.region.as_str();
    let mut out = vec![
        Statement::allow(
            "AllowScopedEC2InstanceAccessActions",
            &["ec2:RunInstances", "ec2:CreateFleet"],
            &p.ec2(&[
                "image/*",
                "snapshot/*",
                "security-group/*",
                "subnet/*",
                "capacity-reservation/*",
            ]),
        ),
        p.of_cluster_nodepool(Statement::allow(
            "AllowScopedEC2LaunchTemplateAccessActions",
            &["ec2:RunInstances", "ec2:CreateFleet"],
            &p.ec2(&["launch-template/*"]),
        )),
        p.launched_by_cluster(Statement::allow(
            "AllowScopedEC2InstanceActionsWithTags",
            &[
                "ec2:RunInstances",
                "ec2:CreateFleet",
                "ec2:CreateLaunchTemplate",
            ],
            &p.ec2(LAUNCHED),
        )),
        p.launched_by_cluster(Statement::allow(
            "AllowScopedResourceCreationTagging",
            &["ec2:CreateTags"],
            &p.ec2(LAUNCHED),
        ))
        .when(
            "StringEquals",
            "ec2:CreateAction",
            &["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
        ),
        p.names_cluster(
            p.of_cluster_nodepool(Statement::allow(
                "AllowScopedResourceTagging",
                &["ec2:CreateTags"],
                &p.ec2(&["instance/*"]),
            )),
            "StringEqualsIfExists",
        )
        .when(
            "ForAllValues:StringEquals",
            "aws:TagKeys",
            &["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"],
        ),
        p.of_cluster_nodepool(Statement::allow(
            "AllowScopedDeletion",
            &["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            &p.ec2(&["instance/*", "launch-template/*"]),
        )),
        Statement::allow("AllowRegionalReadActions", REGIONAL_READS, &["*".into()]).when(
            "StringEquals",
            "aws:RequestedRegion",
            &[region],
        ),
        Statement::allow(
            "AllowSSMReadActions",
            &["ssm:GetParameter"],
            &if p.ssm_parameter_arns.is_empty() {
                vec![format!(
                    "arn:{}:ssm:{region}::parameter/aws/service/*",
                    p.partition
                )]
            } else {
                p.ssm_parameter_arns.clone()
            },
        ),
        Statement::allow(
            "AllowPricingReadActions",
            &["pricing:GetProducts"],
            &["*".into()],
        ),
    ];
    if let Some(queue) = &p.interruption_queue_arn {
        out.push(Statement::allow(
            "AllowInterruptionQueueActions",
            &["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            std::slice::from_ref(queue),
        ));
    }
    out.extend([
        Statement::allow(
            "AllowPassingInstanceRole",
            &["iam:PassRole"],
            std::slice::from_ref(&p.node_role_arn),
        )
        .when(
            "StringEquals",
            "iam:PassedToService",
            &[&ec2_service(&p.partition)],
        ),
        p.names_cluster(
            p.profile_of_cluster(
                Statement::allow(
                    "AllowScopedInstanceProfileCreationActions",
                    &["iam:CreateInstanceProfile"],
                    &p.instance_profiles(),
                ),
                "RequestTag",
            ),
            "StringEquals",
        ),
        p.names_cluster(
            p.profile_of_cluster(
                p.profile_of_cluster(
                    Statement::allow(
                        "AllowScopedInstanceProfileTagActions",
                        &["iam:TagInstanceProfile"],
                        &p.instance_profiles(),
                    ),
                    "ResourceTag",
                ),
                "RequestTag",
            ),
            "StringEquals",
        ),
        p.profile_of_cluster(
            Statement::allow(
                "AllowScopedInstanceProfileActions",
                &[
                    "iam:AddRoleToInstanceProfile",
                    "iam:RemoveRoleFromInstanceProfile",
                    "iam:DeleteInstanceProfile",
                ],
                &p.instance_profiles(),
            ),
            "ResourceTag",
        ),
        Statement::allow(
            "AllowInstanceProfileReadActions",
            &["iam:GetInstanceProfile"],
            &p.instance_profiles(),
        ),
        Statement::allow(
            "AllowAPIServerEndpointDiscovery",
            &["eks:DescribeCluster"],
            &[format!(
                "arn:{}:eks:{region}:{}:cluster/{}",
                p.partition, p.account_id, p.cluster_name
            )],
        ),
    ]);
    out.extend(p.extra.iter().cloned());
    out
}

/// The controller policy as IAM JSON.
pub fn controller_policy(p: &ControllerPolicy) -> Value {
    policy(&controller_statements(p))
}

/// The EC2 service principal of a partition (`ec2.amazonaws.com`, or
/// `ec2.amazonaws.com.cn` in China).
pub fn ec2_service(partition: &str) -> String {
    match partition {
        "aws-cn" => "ec2.amazonaws.com.cn".into(),
        _ => "ec2.amazonaws.com".into(),
    }
}

/// Who may assume the controller's role.
#[derive(Debug, Clone, PartialEq)]
pub enum ControllerTrust {
    /// EKS Pod Identity (the default): the `pods.eks.amazonaws.com` service.
    PodIdentity,
    /// IAM Roles for Service Accounts: the cluster's OIDC provider, for one
    /// service account.
    Irsa {
        /// The OIDC provider's ARN.
        oidc_provider_arn: String,
        /// The issuer without `https://` (`oidc.eks.<region>.amazonaws.com/id/<id>`).
        issuer: String,
        /// The controller's namespace.
        namespace: String,
        /// Its service account.
        service_account: String,
    },
}

/// The controller role's trust policy.
pub fn controller_trust(trust: &ControllerTrust) -> Value {
    let statement = match trust {
        ControllerTrust::PodIdentity => {
            Statement::allow("PodIdentity", &["sts:AssumeRole", "sts:TagSession"], &[])
                .by(json!({"Service": "pods.eks.amazonaws.com"}))
        }
        ControllerTrust::Irsa {
            oidc_provider_arn,
            issuer,
            namespace,
            service_account,
        } => {
            let issuer = issuer.trim_start_matches("https://");
            Statement::allow("IRSA", &["sts:AssumeRoleWithWebIdentity"], &[])
                .by(json!({"Federated": oidc_provider_arn}))
                .when(
                    "StringEquals",
                    format!("{issuer}:sub"),
                    &[&format!(
                        "system:serviceaccount:{namespace}:{service_account}"
                    )],
                )
                .when(
                    "StringEquals",
                    format!("{issuer}:aud"),
                    &["sts.amazonaws.com"],
                )
        }
    };
    policy(&[statement])
}

#[cfg(test)]
mod tests;

use super::*;
use pretty_assertions::assert_eq;

const NODE_ROLE: &str = "arn:aws:iam::123456789012:role/KarpenterNodeRole-demo";
const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:Karpenter-demo";

fn demo() -> ControllerPolicy {
    ControllerPolicy {
        interruption_queue_arn: Some(QUEUE.into()),
        ..ControllerPolicy::new("demo", "us-east-1", "123456789012", NODE_ROLE)
    }
}

#[test]
fn statements_match_the_terraform_module_one_for_one() {
    let sids: Vec<&str> = controller_statements(&demo())
        .iter()
        .map(|s| s.sid)
        .collect();
    assert_eq!(
        sids,
        [
            "AllowScopedEC2InstanceAccessActions",
            "AllowScopedEC2LaunchTemplateAccessActions",
            "AllowScopedEC2InstanceActionsWithTags",
            "AllowScopedResourceCreationTagging",
            "AllowScopedResourceTagging",
            "AllowScopedDeletion",
            "AllowRegionalReadActions",
            "AllowSSMReadActions",
            "AllowPricingReadActions",
            "AllowInterruptionQueueActions",
            "AllowPassingInstanceRole",
            "AllowScopedInstanceProfileCreationActions",
            "AllowScopedInstanceProfileTagActions",
            "AllowScopedInstanceProfileActions",
            "AllowInstanceProfileReadActions",
            "AllowAPIServerEndpointDiscovery",
        ]
    );
    let without_queue = ControllerPolicy::new("demo", "us-east-1", "123456789012", NODE_ROLE);
    assert!(
        controller_statements(&without_queue)
            .iter()
            .all(|s| s.sid != "AllowInterruptionQueueActions")
    );
}

/// Every AWS call the controller makes (`controller/src/cloud/aws`, the
/// interruption queue), as an IAM action.
const CALLED: &[&str] = &[
    "ec2:CreateFleet",
    "ec2:RunInstances",
    "ec2:CreateLaunchTemplate",
    "ec2:CreateTags",
    "ec2:DeleteLaunchTemplate",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSpotPriceHistory",
    "ec2:DescribeSubnets",
    "ec2:TerminateInstances",
    "ssm:GetParameter",
    "pricing:GetProducts",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueUrl",
    "iam:GetInstanceProfile",
    "iam:CreateInstanceProfile",
    "iam:TagInstanceProfile",
    "iam:AddRoleToInstanceProfile",
    "iam:RemoveRoleFromInstanceProfile",
    "iam:DeleteInstanceProfile",
    "iam:PassRole",
    "eks:DescribeCluster",
];

#[test]
fn every_call_the_controller_makes_is_allowed() {
    let statements = controller_statements(&demo());
    for action in CALLED {
        assert!(
            statements
                .iter()
                .any(|s| s.actions.iter().any(|a| a == action)),
            "{action} is not allowed"
        );
    }
}

#[test]
fn everything_that_changes_something_is_scoped_to_the_cluster() {
    let read_only = |action: &str| {
        let verb = action.split(':').nth(1).unwrap_or_default();
        ["Describe", "Get", "List", "Receive"]
            .iter()
            .any(|r| verb.starts_with(r))
    };
    // Resources a launch uses but does not create or change.
    let used = [
        "image/*",
        "snapshot/*",
        "security-group/*",
        "subnet/*",
        "capacity-reservation/*",
    ];
    for s in controller_statements(&demo()) {
        if s.actions.iter().all(|a| read_only(a)) {
            continue;
        }
        let by_tag = s
            .conditions
            .iter()
            .any(|c| c.variable.ends_with("kubernetes.io/cluster/demo") && c.values == ["owned"]);
        let only_used = s
            .resources
            .iter()
            .all(|r| used.iter().any(|u| r.ends_with(u)));
        let only_ours = s.resources == [NODE_ROLE] || s.resources == [QUEUE];
        assert!(
            by_tag || only_used || only_ours,
            "{} changes {:?} without the cluster's tag",
            s.sid,
            s.resources
        );
        assert!(
            !s.resources.iter().any(|r| r == "*"),
            "{} changes any resource",
            s.sid
        );
    }
}

#[test]
fn reads_stay_in_the_region_and_pass_role_goes_to_ec2_only() {
    let doc = controller_policy(&demo());
    let statement = |sid: &str| {
        doc["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap()
            .clone()
    };
    assert_eq!(
        statement("AllowRegionalReadActions")["Condition"],
        json!({"StringEquals": {"aws:RequestedRegion": ["us-east-1"]}})
    );
    assert_eq!(
        statement("AllowPassingInstanceRole"),
        json!({"Sid": "AllowPassingInstanceRole", "Effect": "Allow", "Action": ["iam:PassRole"],
            "Resource": [NODE_ROLE],
            "Condition": {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com"]}}})
    );
    assert_eq!(
        statement("AllowScopedEC2InstanceAccessActions")["Resource"][0],
        "arn:aws:ec2:us-east-1::image/*"
    );
    assert_eq!(
        statement("AllowAPIServerEndpointDiscovery")["Resource"],
        json!(["arn:aws:eks:us-east-1:123456789012:cluster/demo"])
    );
}

#[test]
fn irsa_trusts_one_service_account_of_the_cluster_issuer() {
    let trust = controller_trust(&ControllerTrust::Irsa {
        oidc_provider_arn:
            "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC".into(),
        issuer: "https://oidc.eks.us-east-1.amazonaws.com/id/ABC".into(),
        namespace: "kube-system".into(),
        service_account: "karpenter".into(),
    });
    assert_eq!(
        trust["Statement"][0]["Condition"],
        json!({"StringEquals": {
            "oidc.eks.us-east-1.amazonaws.com/id/ABC:sub": ["system:serviceaccount:kube-system:karpenter"],
            "oidc.eks.us-east-1.amazonaws.com/id/ABC:aud": ["sts.amazonaws.com"]}})
    );
    let pod_identity = controller_trust(&ControllerTrust::PodIdentity);
    assert_eq!(
        pod_identity["Statement"][0]["Principal"],
        json!({"Service": "pods.eks.amazonaws.com"})
    );
    assert_eq!(
        pod_identity["Statement"][0]["Action"],
        json!(["sts:AssumeRole", "sts:TagSession"])
    );
}

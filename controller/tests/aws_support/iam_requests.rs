//! The controller's recorded AWS calls evaluated against the policy
//! `karpenter-iam` ships (the mapping is `test_support::aws_requests`).

use test_support::aws_requests::{ACCOUNT, AwsCall, REGION, controller_requests};

/// The node role the tests' account launches with.
pub const NODE_ROLE: &str = "arn:aws:iam::123456789012:role/KarpenterNodeRole-demo";

/// Evaluates the requests the proxy saw from index `from` on against the
/// controller policy `karpenter-iam` ships for cluster `demo` (with the
/// interruption queue when `queue` is set); panics on any deny, naming it.
/// Returns the decisions and the actions left unmapped.
pub async fn assert_allowed(
    simulator: &std::path::Path,
    ec2: &aws_sdk_ec2::Client,
    seen: &[AwsCall],
    from: usize,
    queue: bool,
) -> (Vec<test_support::iam::Decision>, Vec<String>) {
    let (requests, unmapped) = controller_requests(ec2, NODE_ROLE, seen, from).await;
    let mut policy =
        karpenter_iam::controller::ControllerPolicy::new("demo", REGION, ACCOUNT, NODE_ROLE);
    if queue {
        policy.interruption_queue_arn =
            Some(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:Karpenter-demo"));
    }
    // The tests publish AMI parameters in their account under their own
    // prefix (moto refuses /aws/service, where AWS's public ones live).
    policy.ssm_parameter_arns = vec![format!(
        "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{}/*",
        super::SSM_PREFIX
    )];
    let decisions = test_support::iam::evaluate(
        simulator,
        &format!("arn:aws:iam::{ACCOUNT}:role/KarpenterController-demo"),
        ACCOUNT,
        &karpenter_iam::controller::controller_policy(&policy),
        &requests,
    );
    let denied: Vec<_> = decisions.iter().filter(|d| d.result != "Allowed").collect();
    assert!(
        denied.is_empty(),
        "denied by the shipped policy: {denied:#?}"
    );
    (decisions, unmapped)
}

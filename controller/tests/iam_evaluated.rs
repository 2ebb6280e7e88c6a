//! Every AWS request the EC2 provider makes, evaluated against the
//! controller policy `karpenter-iam` ships (conditions included) by
//! `@cloud-copilot/iam-simulate`: moto's enforcement ignores conditions, so
//! a launch the policy denies on AWS passes on moto. The requests are those
//! of a NodeClass resolution (reads, the instance profile), on-demand and
//! spot launches (launch templates, CreateFleet), listing, termination and
//! clean-up, captured at the fault proxy. Any implicit deny fails the test.

#[allow(dead_code)]
mod aws_support;

use aws_support::AwsEnv;
use aws_support::iam_requests::assert_allowed;
use karpenter_api::v1::NodeClaim;
use karpenter_controller::cloud::CloudProvider;
use serde_json::json;
use std::collections::BTreeMap;
use test_support::{DevEnv, Part};

fn claim(name: &str, capacity_type: &str) -> NodeClaim {
    serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "labels": {"karpenter.sh/nodepool": "default"}},
        "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                 "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large", "c5.large"]},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [capacity_type]}]}
    }))
    .unwrap()
}

#[tokio::test]
async fn every_request_of_the_ec2_provider_is_allowed_by_the_shipped_policy() {
    let devenv = DevEnv::load();
    let Some(simulator) = devenv.require(Part::IamSimulate, "iam_evaluated") else {
        return;
    };
    let Some(env) = AwsEnv::start("iam_evaluated").await else {
        return;
    };
    // What the test itself did to set the account up is not the controller's.
    let from = env.proxy.with(|f| f.requests.len());
    let mut class = env.class.clone();
    class.status = Some(env.cloud.resolve(&class).await);
    let mut launched = Vec::new();
    for (name, capacity_type) in [("od", "on-demand"), ("spot", "spot")] {
        launched.push(
            env.cloud
                .create(&claim(name, capacity_type), &class)
                .await
                .unwrap(),
        );
    }
    env.cloud.list().await.unwrap();
    for instance in &launched {
        env.cloud.delete(&instance.provider_id).await.unwrap();
    }
    env.cloud.delete_launch_templates(None).await.unwrap();
    env.cloud.delete_instance_profile(&class).await.unwrap();

    let seen = env.proxy.with(|f| f.requests.clone());
    let (decisions, unmapped) =
        assert_allowed(&simulator, &env.clients.ec2, &seen, from, false).await;
    let mut table: BTreeMap<(String, String), usize> = BTreeMap::new();
    for d in &decisions {
        *table
            .entry((d.action.clone(), d.result.clone()))
            .or_default() += 1;
    }
    eprintln!(
        "IAM evaluation of the EC2 provider's requests ({} evaluated):",
        decisions.len()
    );
    for ((action, result), n) in &table {
        eprintln!("  {action:<34} {result:<18} {n}");
    }
    eprintln!("  not evaluated (no mapping): {unmapped:?}");
    assert!(
        table.keys().any(|(a, _)| a == "ec2:CreateFleet")
            && table.keys().any(|(a, _)| a == "ec2:CreateLaunchTemplate"),
        "the launch was evaluated"
    );
}

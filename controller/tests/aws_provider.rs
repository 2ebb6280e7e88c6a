//! The EC2 provider against moto beyond launching: garbage collection, the
//! instance-type converter, and, through the fault proxy
//! (`aws_support/proxy.rs`, which emulates what moto cannot do), throttling
//! and denied calls.

#[allow(dead_code)] // each test file uses its own subset
mod aws_support;

use aws_support::AwsEnv;
use aws_support::ec2::*;
use karpenter_api::v1::NodeClaim;
use karpenter_controller::catalog::Catalog;
use karpenter_controller::cloud::{CloudError, CloudProvider};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn garbage_collection_terminates_only_orphans_of_this_cluster() {
    let Some(env) = AwsEnv::start("garbage_collection").await else {
        return;
    };
    let owned = env
        .cloud
        .create(&claim("kept", "on-demand"), &env.class)
        .await
        .unwrap();
    let orphan = env
        .cloud
        .create(&claim("orphan", "on-demand"), &env.class)
        .await
        .unwrap();
    // Someone else's instance in the same account.
    let foreign = env
        .clients
        .ec2
        .run_instances()
        .image_id(&env.images.0)
        .min_count(1)
        .max_count(1)
        .instance_type(aws_sdk_ec2::types::InstanceType::M5Large)
        .send()
        .await
        .unwrap()
        .instances
        .unwrap()
        .remove(0)
        .instance_id
        .unwrap();
    // The collector production runs, over a cluster holding the owned claim.
    let sim = kubesim::Kubesim::new();
    let client = sim.client();
    for (_, crd) in karpenter_api::crd::all() {
        let crds: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = kube::Api::all(client.clone());
        crds.create(&Default::default(), &crd).await.unwrap();
    }
    let mut kept = claim("kept", "on-demand");
    let claims: kube::Api<NodeClaim> = kube::Api::all(client.clone());
    kept = claims.create(&Default::default(), &kept).await.unwrap();
    kept.status = Some(serde_json::from_value(json!({"providerID": owned.provider_id})).unwrap());
    claims
        .replace_status("kept", &Default::default(), &kept)
        .await
        .unwrap();
    let (ctx, _reflectors) = controller_context(client.clone(), &env).await;
    use karpenter_controller::controllers::garbage::GarbageCollector;
    // Inside the grace period nothing is touched.
    let patient = GarbageCollector::new(ctx.clone(), Duration::from_secs(3600));
    assert!(patient.pass().await.unwrap().is_empty());
    let prompt = GarbageCollector::new(ctx, Duration::ZERO);
    let collected = prompt.pass().await.unwrap();
    assert_eq!(collected, vec![orphan.provider_id.clone()]);
    assert_eq!(
        env.cloud.get(&orphan.provider_id).await.unwrap_err(),
        CloudError::NotFound(orphan.id.clone())
    );
    assert!(env.cloud.get(&owned.provider_id).await.is_ok());
    let state = raw_instance(&env, &foreign)
        .await
        .state
        .unwrap()
        .name
        .unwrap();
    assert_eq!(
        state.as_str(),
        "running",
        "instances without the cluster's tags are never collected"
    );
    let listed: Vec<String> = env
        .cloud
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(listed, vec![owned.id]);
    env.assert_iam_allowed().await;
}

#[tokio::test]
async fn instance_types_from_ec2_match_the_embedded_catalog() {
    let Some(env) = AwsEnv::start("instance_types_from_ec2").await else {
        return;
    };
    let pool = serde_json::from_value(json!({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "default"},
        "spec": {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "In",
                "values": ["m5.large", "c6g.xlarge", "g4dn.xlarge", "inf2.xlarge", "m5d.large", "g5.xlarge"]}]}}}})).unwrap();
    let types = env.cloud.instance_types(&pool, &env.class).await.unwrap();
    let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "c6g.xlarge",
            "g4dn.xlarge",
            "g5.xlarge",
            "inf2.xlarge",
            "m5.large",
            "m5d.large"
        ]
    );
    for t in types {
        let mut embedded = Catalog::us_east_1().get(&t.name).unwrap().clone();
        // The embedded catalog lists every zone; the NodeClass has a subnet in each.
        embedded.offerings.retain(|o| t.zones.contains(&o.zone));
        assert_eq!(
            t, embedded,
            "{} converted from DescribeInstanceTypes",
            t.name
        );
    }
    env.assert_iam_allowed().await;
}

#[tokio::test]
async fn throttled_calls_are_retried_and_denied_calls_say_so() {
    let Some(env) = AwsEnv::start("throttled_calls").await else {
        return;
    };
    // Emulated by the proxy: EC2 answers RequestLimitExceeded twice; the SDK's standard retries absorb it.
    env.proxy
        .with(|f| f.throttle.insert("CreateFleet".into(), 2));
    env.cloud
        .create(&claim("patient", "on-demand"), &env.class)
        .await
        .unwrap();
    let fleets = env
        .proxy
        .with(|f| f.seen.iter().filter(|a| *a == "CreateFleet").count());
    assert_eq!(fleets, 3, "two throttled attempts, then success");

    // Throttled past the retry budget: the AWS error comes back as it is.
    env.proxy
        .with(|f| f.throttle.insert("CreateFleet".into(), 10));
    let err = env
        .cloud
        .create(&claim("impatient", "on-demand"), &env.class)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CloudError::Api { operation: "CreateFleet", code, .. } if code == "RequestLimitExceeded"),
        "{err}"
    );
    env.proxy.with(|f| f.throttle.clear());

    // Emulated by the proxy: the controller role may not call CreateFleet.
    env.proxy.with(|f| f.deny.insert("CreateFleet".into()));
    let err = env
        .cloud
        .create(&claim("denied", "on-demand"), &env.class)
        .await
        .unwrap_err();
    let CloudError::Unauthorized(message) = &err else {
        panic!("{err}")
    };
    assert!(
        message.starts_with("CreateFleet: UnauthorizedOperation: You are not authorized"),
        "{message}"
    );
    assert!(
        err.to_string()
            .contains("check the controller's IAM policy"),
        "{err}"
    );

    // A denied discovery call shows up on the NodeClass's condition with AWS's words.
    env.proxy.with(|f| f.deny.insert("DescribeSubnets".into()));
    let status = env.cloud.resolve(&env.class).await;
    let subnets = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "SubnetsReady")
        .unwrap();
    assert_eq!(subnets.status, "False");
    assert!(
        subnets.message.contains("UnauthorizedOperation"),
        "{}",
        subnets.message
    );
    assert_eq!(
        status.subnets,
        env.class.status.as_ref().unwrap().subnets,
        "the last good subnets are kept"
    );
    env.assert_iam_allowed().await;
}

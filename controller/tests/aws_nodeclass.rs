//! The EC2NodeClass against moto: discovery of subnets, security groups,
//! AMIs and the instance profile, selectors that match nothing, and the
//! class controller's status and clean-up.

#[allow(dead_code)] // each test file uses its own subset
mod aws_support;

use aws_support::ec2::*;
use aws_support::{AwsEnv, ZONES};
use karpenter_api::v1::{EC2NodeClass, NodeClaim};
use karpenter_controller::cloud::{CloudError, CloudProvider};
use serde_json::json;
use std::collections::BTreeMap;

#[tokio::test]
async fn discovers_subnets_security_groups_amis_and_the_instance_profile() {
    let Some(env) = AwsEnv::start("discovers").await else {
        return;
    };
    let status = env.class.status.clone().unwrap();
    for type_ in [
        "SubnetsReady",
        "SecurityGroupsReady",
        "AMIsReady",
        "InstanceProfileReady",
        "Ready",
    ] {
        assert_eq!(condition(&env.class, type_), ("True", ""), "{type_}");
    }
    let zones: Vec<&str> = status
        .subnets
        .iter()
        .flatten()
        .map(|s| s.zone.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        zones, ZONES,
        "one tagged subnet per zone; the default VPC's untagged ones are not selected"
    );
    let groups = status.security_groups.unwrap();
    assert_eq!(
        groups.len(),
        1,
        "tag-key selector `*` matches the tagged group only"
    );
    assert_eq!(groups[0].name.as_deref(), Some("demo-nodes"));
    let amis: BTreeMap<String, String> = status
        .amis
        .iter()
        .flatten()
        .map(|a| {
            (
                a.id.clone(),
                a.requirements[0].values.clone().unwrap()[0].clone(),
            )
        })
        .collect();
    assert_eq!(
        amis,
        BTreeMap::from([
            (env.images.0.clone(), "amd64".into()),
            (env.images.1.clone(), "arm64".into())
        ])
    );

    // The managed instance profile: tagged, under the cluster's path, holding the role.
    let name = status.instance_profile.unwrap();
    let profile = env
        .clients
        .iam
        .get_instance_profile()
        .instance_profile_name(&name)
        .send()
        .await
        .unwrap()
        .instance_profile
        .unwrap();
    assert!(name.starts_with("demo_"), "{name}");
    assert_eq!(profile.path, "/karpenter/us-east-1/demo/");
    assert_eq!(
        profile
            .roles
            .iter()
            .map(|r| r.role_name.as_str())
            .collect::<Vec<_>>(),
        ["KarpenterNodeRole-demo"]
    );
    let tags: BTreeMap<String, String> = profile
        .tags
        .unwrap_or_default()
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect();
    assert_eq!(
        tags.get("kubernetes.io/cluster/demo").map(String::as_str),
        Some("owned")
    );
    assert_eq!(
        tags.get("karpenter.k8s.aws/ec2nodeclass")
            .map(String::as_str),
        Some("default")
    );

    // Resolving again is idempotent, and deleting the NodeClass removes the profile.
    let again = env.cloud.resolve(&env.class).await;
    assert_eq!(again.instance_profile.as_deref(), Some(name.as_str()));
    env.cloud.delete_instance_profile(&env.class).await.unwrap();
    let gone = env
        .clients
        .iam
        .get_instance_profile()
        .instance_profile_name(&name)
        .send()
        .await;
    assert!(gone.is_err(), "the managed profile is deleted");
    env.cloud
        .delete_instance_profile(&env.class)
        .await
        .expect("deleting twice is fine");
    env.assert_iam_allowed().await;
}

#[tokio::test]
async fn selectors_that_match_nothing_say_so_in_conditions() {
    let Some(env) = AwsEnv::start("selectors_that_match_nothing").await else {
        return;
    };
    let mut class = aws_support::node_class("broken");
    class.spec.subnet_selector_terms[0].tags = Some(BTreeMap::from([(
        "karpenter.sh/discovery".into(),
        "nobody".into(),
    )]));
    class.spec.ami_selector_terms =
        vec![serde_json::from_value(json!({"alias": "al2023@v19990101"})).unwrap()];
    class.spec.role = None;
    class.spec.instance_profile = Some("does-not-exist".into());
    class.status = Some(env.cloud.resolve(&class).await);
    assert_eq!(
        condition(&class, "SubnetsReady"),
        ("False", "no subnet matches spec.subnetSelectorTerms")
    );
    assert_eq!(condition(&class, "SecurityGroupsReady").0, "True");
    assert_eq!(
        condition(&class, "AMIsReady"),
        ("False", "no AMI matches spec.amiSelectorTerms")
    );
    let (status, message) = condition(&class, "InstanceProfileReady");
    assert!(
        status == "False"
            && message.contains("GetInstanceProfile")
            && message.contains("NoSuchEntity"),
        "{message}"
    );
    let (status, message) = condition(&class, "Ready");
    assert!(
        status == "False" && message.starts_with("SubnetsReady: no subnet"),
        "{message}"
    );
    let err = env
        .cloud
        .create(&claim("x", "on-demand"), &class)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CloudError::NodeClassNotReady(m) if m.contains("subnets")),
        "{err}"
    );
    env.assert_iam_allowed().await;
}

#[tokio::test]
async fn the_nodeclass_controller_writes_status_and_cleans_up_on_deletion() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use karpenter_controller::controllers::nodeclass::{FINALIZER, Reconciled, reconcile};
    use kube::api::{Api, DeleteParams, PostParams};
    let Some(env) = AwsEnv::start("the_nodeclass_controller").await else {
        return;
    };
    let sim = kubesim::Kubesim::new();
    let client = sim.client();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in karpenter_api::crd::all() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
    let classes: Api<EC2NodeClass> = Api::all(client.clone());
    let mut class = aws_support::node_class("default");
    class.metadata.uid = None;
    class.metadata.generation = None;
    classes
        .create(&PostParams::default(), &class)
        .await
        .unwrap();

    let outcome = reconcile(&client, &env.cloud, "default").await.unwrap();
    assert_eq!(outcome, Reconciled::Resolved { ready: true });
    let stored = classes.get("default").await.unwrap();
    assert!(
        stored
            .metadata
            .finalizers
            .clone()
            .unwrap()
            .contains(&FINALIZER.to_string())
    );
    assert_eq!(condition(&stored, "Ready"), ("True", ""));
    let status = stored.status.unwrap();
    assert_eq!(status.amis.unwrap().len(), 2);
    let profile = status.instance_profile.unwrap();

    // A launch made a launch template for the class.
    env.cloud
        .create(&claim("launched", "on-demand"), &env.class)
        .await
        .unwrap();
    assert!(!launch_templates(&env).await.is_empty());
    // A node of the class still runs: deleting the class waits for it, and
    // its instance profile (the node's IAM) stays.
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let mut running = claim("running", "on-demand");
    running.metadata.finalizers = Some(vec!["karpenter.sh/termination".into()]);
    claims
        .create(&PostParams::default(), &running)
        .await
        .unwrap();
    classes
        .delete("default", &DeleteParams::default())
        .await
        .unwrap();
    assert!(
        classes.get_opt("default").await.unwrap().is_some(),
        "held by the finalizer"
    );
    assert_eq!(
        reconcile(&client, &env.cloud, "default").await.unwrap(),
        Reconciled::WaitingForNodeClaims(vec!["running".into()])
    );
    assert!(
        env.clients
            .iam
            .get_instance_profile()
            .instance_profile_name(&profile)
            .send()
            .await
            .is_ok(),
        "the running node keeps its instance profile"
    );
    // Once the claim is gone, the next reconcile removes the profile, then the object goes.
    claims
        .patch(
            "running",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    claims
        .delete("running", &DeleteParams::default())
        .await
        .ok();
    assert_eq!(
        reconcile(&client, &env.cloud, "default").await.unwrap(),
        Reconciled::Finalized
    );
    assert!(
        env.clients
            .iam
            .get_instance_profile()
            .instance_profile_name(&profile)
            .send()
            .await
            .is_err()
    );
    assert!(classes.get_opt("default").await.unwrap().is_none());
    assert!(
        launch_templates(&env).await.is_empty(),
        "the class's launch templates go with it"
    );
    assert_eq!(
        reconcile(&client, &env.cloud, "default").await.unwrap(),
        Reconciled::Absent
    );
    env.assert_iam_allowed().await;
}

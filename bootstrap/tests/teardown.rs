//! Teardown of the AWS side on moto: the cluster's leftover instances are
//! terminated and nothing else is; the queue, rules, roles and the
//! cluster's instance profiles (the bootstrap's and the controller's) go;
//! a second run has nothing to do.

mod common;

use common::{account, amazon_image, launch, moto};
use karpenter_bootstrap::aws::{Clients, steps, teardown};
use karpenter_bootstrap::{Action, Mode};

async fn state(ec2: &aws_sdk_ec2::Client, id: &str) -> String {
    let out = ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap();
    out.reservations()[0].instances()[0]
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn teardown_leaves_nothing_of_the_cluster_and_touches_nothing_else() {
    let Some((_moto, config)) = moto("bootstrap teardown").await else {
        return;
    };
    let account = account();
    let setup = Clients::new(&config);
    let options = steps::Options {
        instance_profile: true,
        ..Default::default()
    };
    steps::reconcile(&account, &setup, Mode::Apply, &options, &mut |_| {})
        .await
        .unwrap();
    let again = Clients::new(&config);
    let kept = steps::reconcile(&account, &again, Mode::Apply, &options, &mut |_| {})
        .await
        .unwrap();
    assert!(
        kept.iter().all(|c| c.action == Action::Unchanged),
        "{kept:?}"
    );
    assert_eq!(again.calls.writes(), 0);

    // What the controller would leave behind: an instance profile for an
    // EC2NodeClass and a node it launched; and an instance of somebody else.
    let iam = &setup.iam;
    common::cluster_instance_profile(iam, "demo_profile", "demo").await;
    let ec2 = &setup.ec2;
    let image = amazon_image(ec2).await;
    let node = launch(
        ec2,
        &image,
        &[
            ("kubernetes.io/cluster/demo", "owned"),
            ("karpenter.sh/nodepool", "default"),
        ],
    )
    .await;
    let other = launch(ec2, &image, &[("kubernetes.io/cluster/demo", "owned")]).await;

    let planner = Clients::new(&config);
    let plan = teardown::destroy(&account, &planner, Mode::Plan, &options)
        .await
        .unwrap();
    assert_eq!(planner.calls.writes(), 0);
    let planned: Vec<String> = plan.iter().map(|c| c.to_string()).collect();
    assert!(
        planned.contains(&format!("- ec2-instance {node}")),
        "{planned:?}"
    );
    assert!(!planned.iter().any(|p| p.contains(&other)), "{planned:?}");
    assert!(planned.contains(&"- sqs-queue Karpenter-demo".to_string()));
    assert!(planned.contains(&"- iam-instance-profile demo_profile".to_string()));
    assert!(
        planned.contains(&"- iam-instance-profile KarpenterNodeInstanceProfile-demo".to_string())
    );
    assert!(planned.contains(&"- eks-pod-identity kube-system/karpenter".to_string()));
    assert_eq!(
        plan.iter().filter(|c| c.action == Action::Delete).count(),
        13,
        "an instance, 5 rules, the queue, the association, the access entry, 2 profiles, 2 roles"
    );

    let destroyer = Clients::new(&config);
    teardown::destroy(&account, &destroyer, Mode::Apply, &options)
        .await
        .unwrap();
    assert!(
        ["shutting-down", "terminated"].contains(&state(ec2, &node).await.as_str()),
        "the cluster's node is terminated"
    );
    assert_eq!(
        state(ec2, &other).await,
        "running",
        "another instance is left"
    );
    assert!(
        setup
            .sqs
            .get_queue_url()
            .queue_name("Karpenter-demo")
            .send()
            .await
            .is_err()
    );
    assert!(
        iam.get_role()
            .role_name("KarpenterNodeRole-demo")
            .send()
            .await
            .is_err()
    );
    assert!(
        iam.get_role()
            .role_name("KarpenterController-demo")
            .send()
            .await
            .is_err()
    );
    let rules = setup
        .events
        .list_rules()
        .name_prefix("Karpenter-demo-")
        .send()
        .await
        .unwrap();
    assert!(rules.rules().is_empty());

    let again = Clients::new(&config);
    let nothing = teardown::destroy(&account, &again, Mode::Apply, &options)
        .await
        .unwrap();
    assert!(nothing.is_empty(), "{nothing:?}");
    assert_eq!(again.calls.writes(), 0);
}

#[tokio::test]
async fn a_node_role_another_cluster_uses_is_not_taken_from_it() {
    let Some((_moto, config)) = moto("bootstrap shared node role").await else {
        return;
    };
    let account = account();
    let setup = Clients::new(&config);
    let options = steps::Options::default();
    steps::reconcile(&account, &setup, Mode::Apply, &options, &mut |_| {})
        .await
        .unwrap();
    // Another cluster's EC2NodeClass launches with our node role.
    common::cluster_instance_profile(&setup.iam, "other_profile", "other").await;
    let gone = teardown::destroy(&account, &Clients::new(&config), Mode::Apply, &options)
        .await
        .unwrap();
    assert!(
        gone.iter().any(|c| c.action == Action::Foreign
            && c.resource.contains("KarpenterNodeRole-demo")
            && c.resource.contains("other_profile")),
        "{gone:?}"
    );
    let profile = setup
        .iam
        .get_instance_profile()
        .instance_profile_name("other_profile")
        .send()
        .await
        .unwrap();
    let roles: Vec<&str> = profile
        .instance_profile()
        .unwrap()
        .roles()
        .iter()
        .map(|r| r.role_name())
        .collect();
    assert_eq!(
        roles,
        ["KarpenterNodeRole-demo"],
        "the other cluster's nodes keep their role"
    );
}

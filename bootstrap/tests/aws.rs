//! The interruption pipeline against moto (EventBridge delivers to SQS
//! there): a plan on an empty account changes nothing and lists every
//! resource; apply creates them tagged, and a spot warning sent to
//! EventBridge arrives in the queue; a second apply makes no mutating call;
//! changes made by hand are found by plan and undone by apply.

mod common;

use aws_sdk_sqs::types::QueueAttributeName as Attr;
use common::{account, moto};
use karpenter_bootstrap::aws::{Account, Clients, queue, roles, rules, steps, teardown};
use karpenter_bootstrap::{Action, Change, Mode};
use test_support::aws::sdk_config;

/// Queue and rules, planned or applied with fresh call counts.
async fn reconcile(c: &Clients, mode: Mode) -> Vec<Change> {
    let account = account();
    let mut out = vec![queue::reconcile(&account, c, mode).await.expect("queue")];
    out.extend(rules::reconcile(&account, c, mode).await.expect("rules"));
    out
}

#[tokio::test]
async fn the_interruption_pipeline_converges_and_a_second_apply_changes_nothing() {
    let Some((_moto, config)) = moto("bootstrap aws").await else {
        return;
    };

    // A plan on an empty account: everything to create, nothing written.
    let planner = Clients::new(&config);
    let plan = reconcile(&planner, Mode::Plan).await;
    assert_eq!(plan.len(), 6);
    assert!(plan.iter().all(|c| c.action == Action::Create), "{plan:?}");
    assert_eq!(planner.calls.writes(), 0);
    assert_eq!(plan[0].to_string(), "+ sqs-queue Karpenter-demo");

    let first = Clients::new(&config);
    let applied = reconcile(&first, Mode::Apply).await;
    assert!(applied.iter().all(|c| c.action == Action::Create));
    assert!(first.calls.writes() >= 6);

    // What AWS has now.
    let sqs = &first.sqs;
    let url = sqs
        .get_queue_url()
        .queue_name("Karpenter-demo")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(Attr::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    assert_eq!(attributes[&Attr::MessageRetentionPeriod], "300");
    assert_eq!(attributes[&Attr::SqsManagedSseEnabled], "true");
    let tags = sqs.list_queue_tags().queue_url(&url).send().await.unwrap();
    assert_eq!(tags.tags().unwrap()["kubernetes.io/cluster/demo"], "owned");
    let listed = first
        .events
        .list_rules()
        .name_prefix("Karpenter-demo-")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.rules().len(), 5);

    // The pipeline delivers: a spot warning reaches the queue.
    let put = first
        .events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("aws.ec2")
                .detail_type("EC2 Spot Instance Interruption Warning")
                .detail(r#"{"instance-id": "i-0abc", "instance-action": "terminate"}"#)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.failed_entry_count(), 0);
    let received = sqs
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(5)
        .send()
        .await
        .unwrap();
    let body = received.messages()[0].body().unwrap();
    assert!(body.contains("i-0abc"), "{body}");

    // Converged: a second apply only reads.
    let second = Clients::new(&config);
    let again = reconcile(&second, Mode::Apply).await;
    assert!(
        again.iter().all(|c| c.action == Action::Unchanged),
        "{again:?}"
    );
    assert_eq!(
        second.calls.writes(),
        0,
        "a second apply made mutating calls"
    );
    assert!(second.calls.reads() >= 6);

    // Changed by hand: found by plan, put back by apply.
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(Attr::MessageRetentionPeriod, "600")
        .send()
        .await
        .unwrap();
    let rule = "Karpenter-demo-SpotInterruption";
    second
        .events
        .remove_targets()
        .rule(rule)
        .ids(rules::TARGET_ID)
        .send()
        .await
        .unwrap();
    let drift = reconcile(&Clients::new(&config), Mode::Plan).await;
    // moto drops the queue policy on any attribute update that leaves it
    // out (real SQS keeps it), so the policy shows up as changed too.
    let Action::Update(fields) = &drift[0].action else {
        panic!("{:?}", drift[0]);
    };
    assert!(
        fields.contains(&"MessageRetentionPeriod".to_string()),
        "{fields:?}"
    );
    let spot = drift
        .iter()
        .find(|c| c.resource.ends_with("SpotInterruption"))
        .unwrap();
    assert_eq!(spot.action, Action::Update(vec!["target".into()]));
    reconcile(&Clients::new(&config), Mode::Apply).await;
    let third = Clients::new(&config);
    let clean = reconcile(&third, Mode::Apply).await;
    assert!(
        clean.iter().all(|c| c.action == Action::Unchanged),
        "{clean:?}"
    );
    assert_eq!(third.calls.writes(), 0);
}

#[tokio::test]
async fn roles_converge_and_a_role_made_by_someone_else_is_left_alone() {
    let Some((_moto, config)) = moto("bootstrap roles").await else {
        return;
    };
    let account = account();
    let specs = [
        roles::node_role(&account, true),
        roles::controller_role(
            &account,
            &karpenter_iam::controller::ControllerTrust::PodIdentity,
        ),
    ];
    let run = |mode| {
        let clients = Clients::new(&config);
        let specs = &specs;
        let account = &account;
        async move {
            let mut changes = Vec::new();
            for spec in specs {
                changes.push(
                    roles::reconcile(account, &clients, mode, spec)
                        .await
                        .expect("role"),
                );
            }
            (changes, clients.calls.writes())
        }
    };
    let (planned, writes) = run(Mode::Plan).await;
    assert!(planned.iter().all(|c| c.action == Action::Create));
    assert_eq!(writes, 0);
    let (created, _) = run(Mode::Apply).await;
    assert!(created.iter().all(|c| c.action == Action::Create));
    let (again, writes) = run(Mode::Apply).await;
    assert!(
        again.iter().all(|c| c.action == Action::Unchanged),
        "{again:?}"
    );
    assert_eq!(writes, 0, "a second apply made mutating calls");

    // What IAM has: the node role with its four managed policies, the
    // controller role trusting Pod Identity with the policy inline.
    let iam = aws_sdk_iam::Client::new(&config);
    let attached = iam
        .list_attached_role_policies()
        .role_name("KarpenterNodeRole-demo")
        .send()
        .await
        .unwrap();
    assert_eq!(attached.attached_policies().len(), 4);
    let inline = iam
        .get_role_policy()
        .role_name("KarpenterController-demo")
        .policy_name(roles::CONTROLLER_POLICY_NAME)
        .send()
        .await
        .unwrap();
    let document = karpenter_iam::parse_document(inline.policy_document()).unwrap();
    assert!(document.to_string().contains("KarpenterNodeRole-demo"));

    // Changed by hand: found and put back.
    iam.delete_role_policy()
        .role_name("KarpenterController-demo")
        .policy_name(roles::CONTROLLER_POLICY_NAME)
        .send()
        .await
        .unwrap();
    iam.update_assume_role_policy()
        .role_name("KarpenterNodeRole-demo")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#)
        .send()
        .await
        .unwrap();
    let (drift, _) = run(Mode::Plan).await;
    assert_eq!(drift[0].action, Action::Update(vec!["trust policy".into()]));
    assert_eq!(
        drift[1].action,
        Action::Update(vec![format!("policy {}", roles::CONTROLLER_POLICY_NAME)])
    );
    run(Mode::Apply).await;
    let (clean, writes) = run(Mode::Apply).await;
    assert!(
        clean.iter().all(|c| c.action == Action::Unchanged),
        "{clean:?}"
    );
    assert_eq!(writes, 0);

    // Somebody else's role of the same name is used as it is.
    let other = Account::new("other", &account.region, &account.account_id);
    iam.create_role()
        .role_name("KarpenterNodeRole-other")
        .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[]}"#)
        .send()
        .await
        .unwrap();
    let clients = Clients::new(&config);
    let change = roles::reconcile(
        &other,
        &clients,
        Mode::Apply,
        &roles::node_role(&other, false),
    )
    .await
    .unwrap();
    assert_eq!(change.action, Action::Foreign);
    assert_eq!(clients.calls.writes(), 0);
    assert!(change.to_string().contains("not created here"));
}

#[tokio::test]
async fn an_apply_that_fails_half_way_resumes_on_the_next_run() {
    let Some((_moto, config)) = moto("bootstrap resume").await else {
        return;
    };
    let account = account();
    // IAM unreachable: the queue and the rules are made, the roles fail.
    let broken = sdk_config("http://127.0.0.1:1").await;
    let half = Clients {
        iam: aws_sdk_iam::Client::new(&broken),
        ..Clients::new(&config)
    };
    let mut done = Vec::new();
    let failed = steps::reconcile(
        &account,
        &half,
        Mode::Apply,
        &steps::Options::default(),
        &mut |c| done.push(c.clone()),
    )
    .await
    .unwrap_err();
    assert!(
        failed.to_string().contains("iam:GetRole failed"),
        "{failed}"
    );
    assert_eq!(done.len(), 6, "the queue and the five rules were done");

    let resumed = steps::reconcile(
        &account,
        &Clients::new(&config),
        Mode::Apply,
        &steps::Options::default(),
        &mut |_| {},
    )
    .await
    .unwrap();
    let actions: Vec<&Action> = resumed.iter().map(|c| &c.action).collect();
    assert_eq!(actions[..6], [&Action::Unchanged; 6]);
    assert_eq!(
        actions[6..],
        [&Action::Create; 4],
        "the two roles, the access entry and the Pod Identity association"
    );
}

#[tokio::test]
async fn discovery_tags_go_on_and_come_off_with_the_same_inputs() {
    let Some((_moto, config)) = moto("bootstrap discovery tags").await else {
        return;
    };
    let account = account();
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let (subnet_id, group_id) = common::subnet_and_group(&ec2).await;
    // The group is tagged for another cluster already: left alone, and said so.
    ec2.create_tags()
        .resources(&group_id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("karpenter.sh/discovery")
                .value("other")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let options = steps::Options {
        discovery: vec![subnet_id.clone(), group_id.clone()],
        ..Default::default()
    };
    let applied = steps::reconcile(
        &account,
        &Clients::new(&config),
        Mode::Apply,
        &options,
        &mut |_| {},
    )
    .await
    .unwrap();
    let tagged = &applied[applied.len() - 2..];
    assert_eq!(tagged[0].action, Action::Create);
    assert_eq!(tagged[1].action, Action::Foreign);
    let tag_of = |id: String| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_tags()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("resource-id")
                        .values(id)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            out.tags()
                .iter()
                .find(|t| t.key() == Some("karpenter.sh/discovery"))
                .and_then(|t| t.value().map(str::to_string))
        }
    };
    assert_eq!(tag_of(subnet_id.clone()).await.as_deref(), Some("demo"));
    assert_eq!(
        tag_of(group_id.clone()).await.as_deref(),
        Some("other"),
        "another cluster's discovery tag is not taken over"
    );
    let again = Clients::new(&config);
    steps::reconcile(&account, &again, Mode::Apply, &options, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(again.calls.writes(), 0);
    teardown::destroy(&account, &Clients::new(&config), Mode::Apply, &options)
        .await
        .unwrap();
    assert_eq!(
        tag_of(subnet_id).await,
        None,
        "the tag the bootstrap set comes off"
    );
    assert_eq!(
        tag_of(group_id).await.as_deref(),
        Some("other"),
        "the other cluster's tag stays"
    );
}

#[tokio::test]
async fn what_the_bootstrap_did_not_create_it_neither_adopts_nor_deletes() {
    let Some((_moto, config)) = moto("bootstrap foreign").await else {
        return;
    };
    let account = account();
    let c = Clients::new(&config);
    // Upstream's queue and rules by the same names, made by someone else.
    let url = c
        .sqs
        .create_queue()
        .queue_name("Karpenter-demo")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let rule = karpenter_aws::interruption_rules::event_rules()[0].name("demo");
    c.events
        .put_rule()
        .name(&rule)
        .event_pattern(r#"{"source":["aws.ec2"]}"#)
        .send()
        .await
        .unwrap();
    // A subnet whose discovery tag was there before (Terraform's).
    let ec2 = aws_sdk_ec2::Client::new(&config);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.1.0.0/16")
        .send()
        .await
        .unwrap();
    let subnet = ec2
        .create_subnet()
        .vpc_id(vpc.vpc().unwrap().vpc_id().unwrap())
        .cidr_block("10.1.1.0/24")
        .send()
        .await
        .unwrap();
    let subnet_id = subnet.subnet().unwrap().subnet_id().unwrap().to_string();
    ec2.create_tags()
        .resources(&subnet_id)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("karpenter.sh/discovery")
                .value("demo")
                .build(),
        )
        .send()
        .await
        .unwrap();

    let applied = reconcile(&Clients::new(&config), Mode::Apply).await;
    assert_eq!(applied[0].action, Action::Foreign, "{applied:?}");
    let foreign_rule = applied
        .iter()
        .find(|ch| ch.resource == format!("eventbridge-rule {rule}"))
        .unwrap();
    assert_eq!(foreign_rule.action, Action::Foreign);
    let queue_tags = c
        .sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap_or_default();
    assert!(
        queue_tags.is_empty(),
        "not re-tagged as ours: {queue_tags:?}"
    );
    let options = steps::Options {
        discovery: vec![subnet_id.clone()],
        ..Default::default()
    };
    teardown::destroy(&account, &Clients::new(&config), Mode::Apply, &options)
        .await
        .unwrap();
    assert!(
        c.sqs
            .get_queue_url()
            .queue_name("Karpenter-demo")
            .send()
            .await
            .is_ok(),
        "the queue it did not create survives destroy"
    );
    assert!(c.events.describe_rule().name(&rule).send().await.is_ok());
    let tags = ec2
        .describe_tags()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("resource-id")
                .values(&subnet_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == Some("karpenter.sh/discovery") && t.value() == Some("demo")),
        "a discovery tag that was there before stays"
    );
}

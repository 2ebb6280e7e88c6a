//! The controller end to end on the real AWS paths: kubesim is the cluster,
//! moto (behind the fault proxy) is EC2, SSM, IAM, SQS and EventBridge.
//! Pods are provisioned through `AwsCloudProvider` (launch templates,
//! CreateFleet), and a spot interruption arrives the way AWS delivers it:
//! `PutEvents` → the rule from `event_rules()` → the `Karpenter-demo` queue
//! → `SqsQueue` → the controller.
//!
//! moto boots nothing, so this test stands in for the instances' kubelets:
//! it registers a Node for every running instance it finds in EC2 (through
//! the provider's `list`, which reads DescribeInstances), the way a booting
//! instance registers itself.

#[allow(dead_code)]
mod aws_support;

use aws_support::AwsEnv;
use k8s_openapi::api::core::v1::{Node, Pod};
use karpenter_api::v1::NodeClaim;
use karpenter_controller::cloud::CloudProvider;
use karpenter_controller::cloud::aws::AwsCloudProvider;
use karpenter_controller::controllers::interruption::{SqsQueue, event_rules};
use karpenter_controller::endpoints::Health;
use karpenter_controller::metrics::Metrics;
use karpenter_controller::runtime::{self, Parts};
use karpenter_controller::settings::Settings;
use karpenter_sim::demo::cluster::{apply_yaml, control_plane};
use karpenter_sim::demo::{self, Timing};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use test_support::eventually_some;

const QUEUE: &str = "Karpenter-demo";
const REPLICAS: usize = 8;

/// The interruption queue and its five rules, as the bootstrap sets them up.
async fn interruption_queue(config: &aws_config::SdkConfig) -> (aws_sdk_sqs::Client, String) {
    let sqs = aws_sdk_sqs::Client::new(config);
    let url = sqs
        .create_queue()
        .queue_name(QUEUE)
        .send()
        .await
        .expect("queue")
        .queue_url
        .expect("queue url");
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("queue arn");
    let events = aws_sdk_eventbridge::Client::new(config);
    for rule in event_rules() {
        let name = rule.name("demo");
        events
            .put_rule()
            .name(&name)
            .description(rule.description)
            .event_pattern(rule.pattern.to_string())
            .send()
            .await
            .expect("rule");
        events
            .put_targets()
            .rule(&name)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("KarpenterInterruptionQueue")
                    .arn(&arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("target");
    }
    (sqs, url)
}

/// The demo's NodePool with an EC2NodeClass that matches the moto account,
/// and a Deployment whose pods need spot capacity.
fn manifests() -> String {
    let pool = demo::DEFAULT_MANIFESTS
        .split("\n---\n")
        .next()
        .expect("the NodePool comes first");
    let class = json!({
        "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
        "metadata": {"name": "default"},
        "spec": serde_json::to_value(&aws_support::node_class("default").spec).unwrap(),
    });
    let app = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": "app"}},
            "template": {
                "metadata": {"labels": {"app": "app"}},
                "spec": {
                    "nodeSelector": {"karpenter.sh/capacity-type": "spot"},
                    "containers": [{"name": "app", "image": "app",
                        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}}}],
                },
            },
        },
    });
    format!("{pool}\n---\n{class}\n---\n{app}\n")
}

/// Stands in for the instances' boot: each running instance of the cluster
/// reads the user data EC2 holds for it (DescribeInstanceAttribute, as IMDS
/// serves it) with its AMI family's agent and registers the Node that
/// describes; an instance whose user data would not join panics the test.
async fn kubelets(
    cloud: Arc<AwsCloudProvider>,
    ec2: aws_sdk_ec2::Client,
    class: karpenter_api::v1::EC2NodeClass,
    client: kube::Client,
) {
    let nodes: Api<Node> = Api::all(client);
    let mut registered = HashSet::new();
    loop {
        for instance in cloud.list().await.unwrap_or_default() {
            if registered.insert(instance.id.clone()) {
                let node = aws_support::boot_instance(
                    &ec2,
                    &instance,
                    &class,
                    &karpenter_sim::boot::sim_cluster_identity(),
                )
                .await
                .unwrap_or_else(|e| panic!("{} does not join: {e}", instance.id));
                nodes
                    .create(&PostParams::default(), &node)
                    .await
                    .expect("the kubelet registers its Node");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn running_on(pods: &[Pod]) -> BTreeMap<String, usize> {
    let mut per_node = BTreeMap::new();
    for pod in pods {
        let status = pod.status.as_ref();
        if status.and_then(|s| s.phase.as_deref()) == Some("Running") {
            let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
            *per_node.entry(node.unwrap_or_default()).or_default() += 1;
        }
    }
    per_node
}

/// (instance id, type, zone, state) of every instance moto has.
async fn ec2_instances(ec2: &aws_sdk_ec2::Client) -> Vec<(String, String, String, String)> {
    let out = ec2.describe_instances().send().await.expect("instances");
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| {
            (
                i.instance_id().unwrap_or_default().to_string(),
                i.instance_type()
                    .map(|t| t.as_str())
                    .unwrap_or_default()
                    .to_string(),
                i.placement()
                    .and_then(|p| p.availability_zone())
                    .unwrap_or_default()
                    .to_string(),
                i.state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str())
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provisions_through_ec2_and_drains_on_a_real_spot_interruption() {
    let Some(env) = AwsEnv::start("aws_controller").await else {
        return;
    };
    let config = aws_support::sdk_config(&env.proxy.endpoint).await;
    let (sqs, queue_url) = interruption_queue(&config).await;
    // From here on the proxy sees the controller's requests (and the test's
    // own, which the IAM check below leaves out by action).
    let from = env.proxy.with(|f| f.requests.len());
    let cloud = Arc::new(AwsCloudProvider::new(
        env.clients.clone(),
        env.cloud.settings().clone(),
    ));
    let queue = Arc::new(SqsQueue::connect(&config, QUEUE).await.expect("queue"));

    let (sim, _controllers) = control_plane(&Timing::at_speed(20.0))
        .await
        .expect("kubesim");
    let client = sim.client();
    apply_yaml(&client, &manifests()).await.expect("manifests");
    let kubelets = tokio::spawn(kubelets(
        cloud.clone(),
        env.clients.ec2.clone(),
        env.class.clone(),
        client.clone(),
    ));

    let mut settings = Settings::defaults("demo");
    settings.disable_leader_election = true;
    settings.interruption_queue = QUEUE.into();
    let metrics = Arc::new(Metrics::new("aws"));
    let parts = Parts {
        lease_client: None,
        client: client.clone(),
        cloud: cloud.clone(),
        queue: Some(queue),
        settings,
        metrics: metrics.clone(),
        health: Arc::new(Health::default()),
    };
    let controller = tokio::spawn(runtime::run(parts, futures::future::pending()));

    // 1. Provisioning: every pod runs on a node launched through CreateFleet.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client.clone());
    eventually_some(Duration::from_secs(120), "all pods running", || async {
        let list = pods.list(&ListParams::default()).await.ok()?.items;
        let running: usize = running_on(&list).values().sum();
        (running == REPLICAS).then_some(())
    })
    .await;
    let launched = claims.list(&ListParams::default()).await.unwrap().items;
    let instances = ec2_instances(&env.clients.ec2).await;
    assert_eq!(
        instances.iter().filter(|i| i.3 == "running").count(),
        launched.len(),
        "one running instance per NodeClaim: {instances:?}"
    );
    let node_list = nodes.list(&ListParams::default()).await.unwrap().items;
    for node in &node_list {
        let provider_id = node.spec.as_ref().and_then(|s| s.provider_id.clone());
        let claim = launched
            .iter()
            .find(|c| c.status.as_ref().and_then(|s| s.provider_id.clone()) == provider_id);
        let claim =
            claim.unwrap_or_else(|| panic!("node {:?} has no NodeClaim", node.metadata.name));
        let conditions = claim.status.as_ref().unwrap().conditions.as_deref();
        for condition in ["Launched", "Registered", "Initialized"] {
            let found = karpenter_api::v1::find_condition(conditions, condition);
            assert_eq!(
                found.map(|c| c.status.as_str()),
                Some("True"),
                "{condition} on {:?}",
                claim.metadata.name
            );
        }
        let labels = claim.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["karpenter.sh/capacity-type"], "spot");
    }

    // 2. A spot interruption through EventBridge.
    let victim = &launched[0];
    let victim_name = victim.metadata.name.clone().unwrap();
    let status = victim.status.as_ref().unwrap();
    let victim_node = status.node_name.clone().unwrap();
    let victim_id = status
        .provider_id
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .unwrap()
        .to_string();
    let (_, victim_type, victim_zone, _) = instances
        .iter()
        .find(|i| i.0 == victim_id)
        .cloned()
        .expect("the victim's instance");
    let events = aws_sdk_eventbridge::Client::new(&config);
    let put = events
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .source("aws.ec2")
                .detail_type("EC2 Spot Instance Interruption Warning")
                .resources(format!(
                    "arn:aws:ec2:us-east-1:123456789012:instance/{victim_id}"
                ))
                .detail(
                    json!({"instance-id": victim_id, "instance-action": "terminate"}).to_string(),
                )
                .build(),
        )
        .send()
        .await
        .expect("PutEvents");
    assert_eq!(put.failed_entry_count(), 0);

    eventually_some(
        Duration::from_secs(90),
        "the victim's NodeClaim gone",
        || async {
            claims
                .get_opt(&victim_name)
                .await
                .ok()?
                .is_none()
                .then_some(())
        },
    )
    .await;
    eventually_some(
        Duration::from_secs(30),
        "the victim's instance terminated",
        || async {
            let instances = ec2_instances(&env.clients.ec2).await;
            let state = instances.iter().find(|i| i.0 == victim_id)?.3.clone();
            matches!(state.as_str(), "shutting-down" | "terminated").then_some(())
        },
    )
    .await;
    eventually_some(
        Duration::from_secs(120),
        "every pod running again",
        || async {
            let per_node = running_on(&pods.list(&ListParams::default()).await.ok()?.items);
            let running: usize = per_node.values().sum();
            (running == REPLICAS && !per_node.contains_key(&victim_node)).then_some(())
        },
    )
    .await;
    assert!(nodes.get_opt(&victim_node).await.unwrap().is_none());

    // The interrupted offering was not used again.
    let replacements: Vec<_> = ec2_instances(&env.clients.ec2)
        .await
        .into_iter()
        .filter(|i| i.3 == "running" && !instances.iter().any(|old| old.0 == i.0))
        .collect();
    assert!(
        replacements
            .iter()
            .all(|i| (i.1.as_str(), i.2.as_str()) != (victim_type.as_str(), victim_zone.as_str())),
        "a replacement reused the interrupted offering {victim_type}/{victim_zone}: {replacements:?}"
    );

    // The message was counted and deleted from the queue.
    let text = metrics.encode();
    assert!(
        text.lines().any(|l| l.starts_with(
            "karpenter_interruption_received_messages_total{message_type=\"spot_interrupted\"} 1"
        )),
        "{text}"
    );
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    for key in [
        aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages,
        aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
    ] {
        assert_eq!(attributes[&key], "0", "{key:?}");
    }
    controller.abort();
    kubelets.abort();

    // The controller's requests (EC2, IAM, SSM, SQS) under the shipped policy.
    let devenv = test_support::DevEnv::load();
    if let Some(simulator) = devenv.require(test_support::Part::IamSimulate, "aws_controller IAM") {
        // The test's own calls: the spot warning it sends, the boots it stands in for.
        let tests_own = [
            "PutEvents",
            "DescribeInstanceAttribute",
            "GetQueueAttributes",
        ];
        let seen: Vec<_> = env
            .proxy
            .with(|f| f.requests.clone())
            .into_iter()
            .enumerate()
            .filter(|(i, r)| *i < from || !tests_own.contains(&r.action.as_str()))
            .map(|(_, r)| r)
            .collect();
        let from = seen.len().min(from);
        let (decisions, unmapped) = aws_support::iam_requests::assert_allowed(
            &simulator,
            &env.clients.ec2,
            &seen,
            from,
            true,
        )
        .await;
        assert!(
            decisions.iter().any(|d| d.action == "sqs:ReceiveMessage")
                && decisions.iter().any(|d| d.action == "sqs:DeleteMessage"),
            "the interruption queue was evaluated"
        );
        eprintln!(
            "IAM: {} controller requests allowed; not mapped: {unmapped:?}",
            decisions.len()
        );
    }
}

//! What the EC2 provider's tests against moto share: a NodeClaim to launch,
//! a class's conditions, and the launch templates, instances and controller
//! context they inspect.

use super::AwsEnv;
use karpenter_api::v1::{EC2NodeClass, NodeClaim};
use karpenter_controller::cloud::CloudProvider;
use karpenter_controller::cloud::aws::AwsCloudProvider;
use karpenter_controller::cloud::aws::launch_template::CLUSTER_TAG;
use serde_json::json;

/// A NodeClaim for `web` pods (tainted, three instance types) of `capacity_type`.
pub fn claim(name: &str, capacity_type: &str) -> NodeClaim {
    serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": name, "labels": {"karpenter.sh/nodepool": "default", "team": "web"}},
        "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                 "taints": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}],
                 "requirements": [
                    {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large", "c5.large", "m5a.large"]},
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": [capacity_type]}]}
    }))
    .unwrap()
}

/// The status and message of `class`'s condition `type_`.
pub fn condition<'a>(class: &'a EC2NodeClass, type_: &str) -> (&'a str, &'a str) {
    let c = karpenter_api::v1::find_condition(
        class.status.as_ref().unwrap().conditions.as_deref(),
        type_,
    )
    .unwrap();
    (c.status.as_str(), c.message.as_str())
}

/// The launch templates tagged for the test cluster.
pub async fn launch_templates(env: &AwsEnv) -> Vec<aws_sdk_ec2::types::LaunchTemplate> {
    env.clients
        .ec2
        .describe_launch_templates()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{CLUSTER_TAG}"))
                .values("demo")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .launch_templates
        .unwrap_or_default()
}

/// The instance `id` as EC2 describes it.
pub async fn raw_instance(env: &AwsEnv, id: &str) -> aws_sdk_ec2::types::Instance {
    env.clients
        .ec2
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .unwrap()
        .reservations
        .unwrap()[0]
        .instances
        .clone()
        .unwrap()
        .remove(0)
}

/// The ids of the instances tagged for NodeClaim `claim`.
pub async fn instances_of(env: &AwsEnv, claim: &str) -> Vec<String> {
    env.cloud
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter(|i| i.tags.get("karpenter.sh/nodeclaim").map(String::as_str) == Some(claim))
        .map(|i| i.id)
        .collect()
}

/// A controller context over `client` and the provider of `env`, its caches synced.
pub async fn controller_context(
    client: kube::Client,
    env: &AwsEnv,
) -> (
    std::sync::Arc<karpenter_controller::controllers::Context<AwsCloudProvider>>,
    karpenter_controller::state::Reflectors,
) {
    use karpenter_controller::events::{EventSink, Reporter};
    let (state, reflectors) = karpenter_controller::state::ClusterState::start(&client);
    state.wait_until_ready().await.unwrap();
    let cloud = AwsCloudProvider::new(env.clients.clone(), env.cloud.settings().clone());
    let ctx = std::sync::Arc::new(karpenter_controller::controllers::Context {
        events: EventSink::start(
            client.clone(),
            Reporter {
                controller: "karpenter".into(),
                instance: "test".into(),
            },
        ),
        client,
        state,
        cloud: std::sync::Arc::new(cloud),
        metrics: std::sync::Arc::new(karpenter_controller::metrics::Metrics::new("aws")),
        settings: karpenter_controller::settings::Settings::defaults("demo"),
        unplaceable: Default::default(),
        decisions: Default::default(),
    });
    (ctx, reflectors)
}

/// The latest version's data of launch template `name`.
pub async fn template_data(
    env: &AwsEnv,
    name: &str,
) -> aws_sdk_ec2::types::ResponseLaunchTemplateData {
    env.clients
        .ec2
        .describe_launch_template_versions()
        .launch_template_name(name)
        .send()
        .await
        .unwrap()
        .launch_template_versions
        .unwrap()
        .remove(0)
        .launch_template_data
        .unwrap()
}

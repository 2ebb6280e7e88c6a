//! The EC2 provider against moto: NodeClass discovery, launches and their
//! tags, launch-template reuse and recreation, the instance-profile lifecycle,
//! garbage collection, the instance-type converter, and, through the fault
//! proxy (`aws_support/proxy.rs`, which emulates what moto cannot do),
//! throttling and denied calls.

#[allow(dead_code)] // each test file uses its own subset
mod aws_support;

use aws_support::{AwsEnv, ZONES};
use karpenter_api::v1::{ConnectionTracking, EC2NodeClass, NetworkInterface, NodeClaim};
use karpenter_controller::catalog::{CapacityType, Catalog};
use karpenter_controller::cloud::aws::AwsCloudProvider;
use karpenter_controller::cloud::aws::launch_template::CLUSTER_TAG;
use karpenter_controller::cloud::{CloudError, CloudProvider};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

fn claim(name: &str, capacity_type: &str) -> NodeClaim {
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

fn condition<'a>(class: &'a EC2NodeClass, type_: &str) -> (&'a str, &'a str) {
    let c = karpenter_api::v1::find_condition(
        class.status.as_ref().unwrap().conditions.as_deref(),
        type_,
    )
    .unwrap();
    (c.status.as_str(), c.message.as_str())
}

async fn launch_templates(env: &AwsEnv) -> Vec<aws_sdk_ec2::types::LaunchTemplate> {
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

async fn raw_instance(env: &AwsEnv, id: &str) -> aws_sdk_ec2::types::Instance {
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
async fn launches_tag_instances_and_reuse_one_launch_template() {
    let Some(env) = AwsEnv::start("launches_tag_instances").await else {
        return;
    };
    let on_demand = env
        .cloud
        .create(&claim("web-1", "on-demand"), &env.class)
        .await
        .unwrap();
    let spot = env
        .cloud
        .create(&claim("web-2", "spot"), &env.class)
        .await
        .unwrap();
    assert_eq!(
        (on_demand.capacity_type, spot.capacity_type),
        (CapacityType::OnDemand, CapacityType::Spot)
    );
    // Cheapest first: moto launches the first override, which is ours.
    let cheapest_on_demand = ["m5.large", "c5.large", "m5a.large"]
        .iter()
        .map(|n| Catalog::us_east_1().get(n).unwrap())
        .min_by(|a, b| a.on_demand_price.total_cmp(&b.on_demand_price))
        .unwrap();
    assert_eq!(on_demand.instance_type, cheapest_on_demand.name);

    let raw = raw_instance(&env, &on_demand.id).await;
    let tags: BTreeMap<String, String> = raw
        .tags
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| Some((t.key?, t.value?)))
        .collect();
    for (key, value) in [
        ("kubernetes.io/cluster/demo", "owned"),
        ("eks:eks-cluster-name", "demo"),
        ("karpenter.sh/nodepool", "default"),
        ("karpenter.sh/nodeclaim", "web-1"),
        ("karpenter.k8s.aws/ec2nodeclass", "default"),
        ("team", "platform"),
    ] {
        assert_eq!(
            tags.get(key).map(String::as_str),
            Some(value),
            "tag {key} on the instance"
        );
    }
    assert!(
        !tags.contains_key("Name"),
        "named after its node once registered (the tagging controller), not at launch"
    );
    assert_eq!(raw.image_id.as_deref(), Some(on_demand.image_id.as_str()));
    let zone = raw.placement.unwrap().availability_zone.unwrap();
    assert_eq!(
        on_demand.provider_id,
        format!("aws:///{zone}/{}", on_demand.id)
    );

    // One template per capacity type (it is one of the node's labels in its
    // user data, as upstream writes it); the same NodeClass, AMI, NodePool
    // and max pods otherwise.
    let templates = launch_templates(&env).await;
    assert_eq!(templates.len(), 2, "{templates:?}");
    // The on-demand launch's template: its user data labels the node on-demand.
    let mut name = String::new();
    for template in &templates {
        let candidate = template.launch_template_name.clone().unwrap();
        let data = template_data(&env, &candidate).await;
        use base64::Engine;
        let text = base64::engine::general_purpose::STANDARD
            .decode(data.user_data.unwrap_or_default())
            .unwrap();
        if String::from_utf8_lossy(&text).contains("karpenter.sh/capacity-type=on-demand") {
            name = candidate;
        }
    }
    assert!(name.starts_with("karpenter.k8s.aws/"), "{name}");
    let version = template_data(&env, &name).await;
    let metadata = version
        .metadata_options
        .clone()
        .unwrap_or_else(|| panic!("{version:?}"));
    assert_eq!(
        metadata
            .http_tokens
            .map(|t| t.as_str().to_string())
            .as_deref(),
        Some("required")
    );
    assert_eq!(metadata.http_put_response_hop_limit, Some(1));
    let device = &version.block_device_mappings.unwrap()[0];
    let ebs = device.ebs.as_ref().unwrap();
    assert_eq!(
        (
            device.device_name.as_deref(),
            ebs.volume_size,
            ebs.encrypted
        ),
        (Some("/dev/xvda"), Some(20), Some(true))
    );
    use base64::Engine;
    let user_data = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(version.user_data.unwrap())
            .unwrap(),
    )
    .unwrap();
    // What nodeadm reads from it.
    let read = karpenter_sim::boot::read(
        karpenter_controller::userdata::AmiFamily::Al2023,
        &user_data,
    )
    .unwrap_or_else(|e| panic!("{e}\n{user_data}"));
    assert_eq!(
        read.endpoint,
        karpenter_sim::boot::sim_cluster_identity().endpoint
    );
    let taints: Vec<String> = read
        .taints
        .iter()
        .map(karpenter_controller::userdata::gofmt::taint)
        .collect();
    assert_eq!(
        taints,
        [
            "dedicated=web:NoSchedule",
            "karpenter.sh/unregistered:NoExecute"
        ],
        "{user_data}"
    );
    assert_eq!(read.labels["karpenter.sh/nodepool"], "default");
    assert_eq!(read.labels["team"], "web");
    assert_eq!(read.labels["karpenter.sh/do-not-sync-taints"], "true");
    assert_eq!(
        version.iam_instance_profile.unwrap().name,
        env.class.status.as_ref().unwrap().instance_profile
    );

    // A template deleted behind our back is recreated once, and the launch goes on.
    env.clients
        .ec2
        .delete_launch_template()
        .launch_template_name(&name)
        .send()
        .await
        .unwrap();
    let third = env
        .cloud
        .create(&claim("web-3", "on-demand"), &env.class)
        .await
        .unwrap();
    assert_eq!(third.instance_type, cheapest_on_demand.name);
    let names: std::collections::BTreeSet<String> = launch_templates(&env)
        .await
        .into_iter()
        .filter_map(|t| t.launch_template_name)
        .collect();
    assert!(
        names.len() == 2 && names.contains(&name),
        "recreated under the same name: {names:?}"
    );
    let deleted: std::collections::BTreeSet<String> = env
        .cloud
        .delete_launch_templates(Some("default"))
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(deleted, names);
    env.assert_iam_allowed().await;
}

#[tokio::test]
async fn a_lost_fleet_response_does_not_launch_a_second_instance() {
    let Some(env) = AwsEnv::start("lost_fleet_response").await else {
        return;
    };
    // EC2 launches, the answer is lost, the SDK retries the same request.
    env.proxy
        .with(|f| f.lose_response.insert("CreateFleet".into(), 1));
    let launched = env
        .cloud
        .create(&claim("retried", "on-demand"), &env.class)
        .await
        .unwrap();
    assert_eq!(
        env.proxy
            .with(|f| f.seen.iter().filter(|a| *a == "CreateFleet").count()),
        2,
        "the SDK retried"
    );
    assert_eq!(
        instances_of(&env, "retried").await,
        vec![launched.id],
        "one instance for the claim"
    );
    env.assert_iam_allowed().await;
}

/// The whole call fails (every SDK attempt's answer is lost after EC2
/// acted, as when the operation times out), and the controller calls again
/// for the same claim: the request carries the same ClientToken, so EC2
/// answers with the first fleet instead of launching a second instance.
/// (The SDK fills in a token of its own when none is given, but a new one
/// per call, which covers only its own retries.)
#[tokio::test]
async fn a_launch_repeated_after_a_failed_call_gets_the_first_instance() {
    let Some(env) = AwsEnv::start("repeated_launch").await else {
        return;
    };
    env.proxy
        .with(|f| f.lose_response.insert("CreateFleet".into(), 3));
    let claim = claim("repeated", "on-demand");
    let first = env.cloud.create(&claim, &env.class).await;
    assert!(first.is_err(), "every attempt's answer was lost: {first:?}");
    let again = env.cloud.create(&claim, &env.class).await.unwrap();
    assert_eq!(
        instances_of(&env, "repeated").await,
        vec![again.id],
        "one instance for the claim"
    );
    env.assert_iam_allowed().await;
}

/// The ids of the instances tagged for NodeClaim `claim`.
async fn instances_of(env: &AwsEnv, claim: &str) -> Vec<String> {
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
async fn controller_context(
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
/// The network settings of a NodeClass reach the launch template: its
/// interfaces (an EFA-only one without security groups), the primary
/// interface's prefixes, connection tracking on the interfaces with IP
/// traffic.
#[tokio::test]
async fn network_interfaces_prefixes_and_connection_tracking_reach_the_launch_template() {
    let Some(env) = AwsEnv::start("network_settings").await else {
        return;
    };
    let mut class = env.class.clone();
    class.spec.network_interfaces = Some(vec![
        NetworkInterface {
            network_card_index: 0,
            device_index: 0,
            interface_type: "interface".into(),
        },
        NetworkInterface {
            network_card_index: 1,
            device_index: 0,
            interface_type: "efa-only".into(),
        },
    ]);
    class.spec.ip_prefix_count = Some(2);
    class.spec.connection_tracking = Some(ConnectionTracking {
        tcp_established_timeout: Some(300),
        ..Default::default()
    });
    env.cloud
        .create(&claim("efa-1", "on-demand"), &class)
        .await
        .unwrap();
    let [template] = launch_templates(&env).await.try_into().unwrap();
    let data = template_data(&env, template.launch_template_name.as_deref().unwrap()).await;
    assert!(
        data.security_group_ids.is_none(),
        "groups go on the interfaces"
    );
    let interfaces = data.network_interfaces.unwrap();
    let card = |i: usize| {
        let ni = &interfaces[i];
        (
            ni.network_card_index,
            ni.device_index,
            ni.interface_type.as_deref(),
            ni.groups.as_ref().map(Vec::len),
            ni.ipv4_prefix_count,
            ni.connection_tracking_specification
                .as_ref()
                .and_then(|c| c.tcp_established_timeout),
        )
    };
    assert_eq!(
        card(0),
        (Some(0), Some(0), None, Some(1), Some(2), Some(300))
    );
    assert_eq!(
        card(1),
        (Some(1), Some(0), Some("efa-only"), None, None, None)
    );
    env.assert_iam_allowed().await;
}

/// A NodeClaim asking for `vpc.amazonaws.com/efa` is launched from a
/// template attaching one `efa` interface per adapter the type takes (the
/// first card's device 0, the others device 1, each with the security
/// groups), and its instance reports the adapters; one that does not ask
/// gets the plain template and no EFA resource.
#[tokio::test]
async fn a_claim_asking_for_efa_gets_every_adapter_of_its_type() {
    let Some(env) = AwsEnv::start("efa").await else {
        return;
    };
    let efa_type = "c6in.32xlarge";
    let adapters = karpenter_controller::catalog::Catalog::us_east_1()
        .get(efa_type)
        .unwrap()
        .efas;
    assert!(adapters >= 2, "{efa_type} takes {adapters} adapters");
    let mut asking = claim("efa-1", "on-demand");
    asking.spec.template.requirements[0].values = Some(vec![efa_type.into()]);
    asking.spec.resources =
        Some(serde_json::from_value(json!({"requests": {"vpc.amazonaws.com/efa": "1"}})).unwrap());
    let instance = env.cloud.create(&asking, &env.class).await.unwrap();
    assert_eq!(
        instance.capacity["vpc.amazonaws.com/efa"],
        adapters.to_string().parse().unwrap()
    );
    let [template] = launch_templates(&env).await.try_into().unwrap();
    let data = template_data(&env, template.launch_template_name.as_deref().unwrap()).await;
    let interfaces = data.network_interfaces.unwrap();
    assert_eq!(interfaces.len(), adapters as usize);
    for (i, ni) in interfaces.iter().enumerate() {
        assert_eq!(ni.interface_type.as_deref(), Some("efa"));
        assert_eq!(ni.network_card_index, Some(i as i32));
        assert_eq!(ni.device_index, Some(if i == 0 { 0 } else { 1 }));
        assert_eq!(ni.groups.as_ref().map(Vec::len), Some(1));
    }

    let mut plain = claim("efa-2", "on-demand");
    plain.spec.template.requirements[0].values = Some(vec![efa_type.into()]);
    let instance = env.cloud.create(&plain, &env.class).await.unwrap();
    assert!(!instance.capacity.contains_key("vpc.amazonaws.com/efa"));
    assert_eq!(
        launch_templates(&env).await.len(),
        2,
        "a template without EFA interfaces"
    );
    env.assert_iam_allowed().await;
}

async fn template_data(env: &AwsEnv, name: &str) -> aws_sdk_ec2::types::ResponseLaunchTemplateData {
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

//! Launches against moto: tags, launch-template reuse and recreation, no
//! second instance after a lost or failed fleet call, and the network
//! settings (interfaces, prefixes, connection tracking, EFA) a template
//! carries.

#[allow(dead_code)] // each test file uses its own subset
mod aws_support;

use aws_support::AwsEnv;
use aws_support::ec2::*;
use karpenter_api::v1::{ConnectionTracking, NetworkInterface};
use karpenter_controller::catalog::{CapacityType, Catalog};
use karpenter_controller::cloud::CloudProvider;
use serde_json::json;
use std::collections::BTreeMap;

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

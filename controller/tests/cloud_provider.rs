//! The cloud-provider behaviour suite: one set of behaviours, run against every
//! implementation: the simulated EC2, and the AWS provider against moto with a
//! fault-injection proxy for what moto cannot do (`aws_support/proxy.rs`:
//! insufficient capacity is emulated there, and spot prices are the catalog's
//! modelled ones because moto's are flat).

// Shared with aws_provider.rs; this suite uses only part of it.
#[allow(dead_code)]
mod aws_support;

use aws_support::AwsEnv;
use karpenter_api::v1::{EC2NodeClass, NodeClaim};
use karpenter_controller::catalog::{CapacityType, Catalog, KubeletSettings};
use karpenter_controller::cloud::{CloudError, CloudProvider, UNAVAILABLE_FOR, parse_provider_id};
use karpenter_sim::ec2::{SimEvent, SimulatedEc2, SimulationConfig};
use serde_json::json;
use std::time::Duration;

/// A cloud under test: the provider, the NodeClass it launches with, and a
/// way to make it run out of capacity.
trait TestCloud {
    /// The provider.
    type Cloud: CloudProvider;
    /// The provider.
    fn cloud(&self) -> &Self::Cloud;
    /// A resolved NodeClass.
    fn class(&self) -> &EC2NodeClass;
    /// The offering has no capacity left.
    fn exhaust(&self, instance_type: &str, zone: &str, capacity_type: CapacityType);
    /// After a test: what a real cloud would also check of the requests
    /// made (on AWS, the controller policy allows every one).
    async fn check_requests(&self) {}
}

struct Simulated(SimulatedEc2, EC2NodeClass);

impl TestCloud for Simulated {
    type Cloud = SimulatedEc2;
    fn cloud(&self) -> &SimulatedEc2 {
        &self.0
    }
    fn class(&self) -> &EC2NodeClass {
        &self.1
    }
    fn exhaust(&self, instance_type: &str, zone: &str, capacity_type: CapacityType) {
        self.0.set_capacity(instance_type, zone, capacity_type, 0);
    }
}

impl TestCloud for AwsEnv {
    type Cloud = karpenter_controller::cloud::aws::AwsCloudProvider;
    fn cloud(&self) -> &Self::Cloud {
        &self.cloud
    }
    fn class(&self) -> &EC2NodeClass {
        &self.class
    }
    fn exhaust(&self, instance_type: &str, zone: &str, capacity_type: CapacityType) {
        let key = (
            instance_type.to_string(),
            zone.to_string(),
            capacity_type.label().to_string(),
        );
        self.proxy.with(|f| f.exhausted.insert(key));
    }
    async fn check_requests(&self) {
        self.assert_iam_allowed().await;
    }
}

fn simulated() -> SimulatedEc2 {
    let catalog = Catalog::new(Catalog::us_east_1().iter().cloned());
    SimulatedEc2::new(catalog, SimulationConfig::default())
}

async fn simulated_env(_test: &str) -> Option<Simulated> {
    Some(Simulated(simulated(), aws_support::node_class("default")))
}

fn claim(name: &str, requirements: serde_json::Value) -> NodeClaim {
    serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
        "metadata": {"name": name, "labels": {"karpenter.sh/nodepool": "default"}},
        "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                 "requirements": requirements}
    }))
    .unwrap()
}

fn types(names: &[&str]) -> serde_json::Value {
    json!({"key": "node.kubernetes.io/instance-type", "operator": "In", "values": names})
}

/// The cheapest offering among `names` with `capacity_type`, as (type, zone, price).
fn cheapest(names: &[&str], capacity_type: CapacityType) -> (String, String, f64) {
    names
        .iter()
        .flat_map(|n| {
            let t = Catalog::us_east_1().get(n).unwrap();
            t.offerings
                .iter()
                .filter(move |o| o.capacity_type == capacity_type)
                .map(move |o| (t.name.clone(), o.zone.clone(), o.price))
        })
        .min_by(|a, b| a.2.total_cmp(&b.2))
        .unwrap()
}

const TYPES: &[&str] = &["m5.large", "c5.large", "r5.large"];

async fn launches_the_cheapest_allowed_offering_with_tags(env: &impl TestCloud) {
    let (cloud, class) = (env.cloud(), env.class());
    let instance = cloud
        .create(&claim("web-abc12", json!([types(TYPES)])), class)
        .await
        .unwrap();
    let (name, zone, _) = cheapest(TYPES, CapacityType::Spot);
    assert_eq!(
        (
            instance.capacity_type,
            &instance.instance_type,
            &instance.zone
        ),
        (CapacityType::Spot, &name, &zone)
    );
    assert_eq!(
        parse_provider_id(&instance.provider_id).unwrap(),
        (zone.as_str(), instance.id.as_str())
    );
    assert!(
        instance.id.starts_with("i-") && instance.id.len() == 19,
        "{}",
        instance.id
    );
    for (key, value) in [
        ("kubernetes.io/cluster/demo", "owned"),
        ("eks:eks-cluster-name", "demo"),
        ("karpenter.sh/nodepool", "default"),
        ("karpenter.sh/nodeclaim", "web-abc12"),
        ("karpenter.k8s.aws/ec2nodeclass", "default"),
    ] {
        assert_eq!(
            instance.tags.get(key).map(String::as_str),
            Some(value),
            "tag {key}"
        );
    }
    assert!(!instance.tags.contains_key("Name"), "named once registered");
    let expected = Catalog::us_east_1()
        .get(&name)
        .unwrap()
        .allocatable(&KubeletSettings::default());
    assert_eq!(instance.allocatable, expected);
}

async fn honours_zone_and_capacity_type(env: &impl TestCloud) {
    let (cloud, class) = (env.cloud(), env.class());
    let requirements = json!([types(TYPES),
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1b"]},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]);
    let instance = cloud
        .create(&claim("od", requirements), class)
        .await
        .unwrap();
    assert_eq!(
        (instance.zone.as_str(), instance.capacity_type),
        ("us-east-1b", CapacityType::OnDemand)
    );
    let impossible = json!([types(&["m5.large"]), {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]);
    let err = cloud
        .create(&claim("none", impossible), class)
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::NoCompatibleOffering(_)), "{err}");
}

async fn gets_lists_and_deletes(env: &impl TestCloud) {
    let (cloud, class) = (env.cloud(), env.class());
    let a = cloud
        .create(&claim("a", json!([types(TYPES)])), class)
        .await
        .unwrap();
    let b = cloud
        .create(&claim("b", json!([types(TYPES)])), class)
        .await
        .unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(cloud.get(&a.provider_id).await.unwrap(), a);
    let listed: Vec<String> = cloud
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert!(listed.contains(&a.id) && listed.contains(&b.id));
    cloud.delete(&a.provider_id).await.unwrap();
    assert_eq!(
        cloud.get(&a.provider_id).await.unwrap_err(),
        CloudError::NotFound(a.id.clone())
    );
    assert_eq!(
        cloud.delete(&a.provider_id).await.unwrap_err(),
        CloudError::NotFound(a.id.clone())
    );
    assert!(
        matches!(cloud.get("i-123").await.unwrap_err(), CloudError::Invalid(m) if m.contains("aws:///<zone>/<instance id>"))
    );
}

async fn unavailable_offerings_are_skipped_until_they_expire(env: &impl TestCloud) {
    let (cloud, class) = (env.cloud(), env.class());
    let (name, zone, _) = cheapest(TYPES, CapacityType::Spot);
    cloud.mark_unavailable(&name, &zone, CapacityType::Spot);
    let second = cloud
        .create(&claim("second", json!([types(TYPES)])), class)
        .await
        .unwrap();
    assert_ne!((&second.instance_type, &second.zone), (&name, &zone));
    let pool = serde_json::from_value(json!({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "default"},
        "spec": {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [types(TYPES)]}}}})).unwrap();
    let offered = |types: &[karpenter_controller::catalog::InstanceType]| {
        types
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .offerings
            .iter()
            .find(|o| o.zone == zone && o.capacity_type == CapacityType::Spot)
            .unwrap()
            .available
    };
    let listed = cloud.instance_types(&pool, class).await.unwrap();
    assert_eq!(listed.len(), TYPES.len());
    assert!(!offered(&listed));
    pass_time(UNAVAILABLE_FOR + Duration::from_secs(1)).await;
    assert!(offered(&cloud.instance_types(&pool, class).await.unwrap()));
    let third = cloud
        .create(&claim("third", json!([types(TYPES)])), class)
        .await
        .unwrap();
    assert_eq!((&third.instance_type, &third.zone), (&name, &zone));
}

async fn insufficient_capacity_falls_back_then_fails(env: &impl TestCloud) {
    let (cloud, class) = (env.cloud(), env.class());
    let only = &["m5.large"];
    let requirements = json!([types(only), {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a", "us-east-1b"]}]);
    env.exhaust("m5.large", "us-east-1a", CapacityType::OnDemand);
    let instance = cloud
        .create(&claim("fallback", requirements.clone()), class)
        .await
        .unwrap();
    assert_eq!(instance.zone, "us-east-1b");
    env.exhaust("m5.large", "us-east-1b", CapacityType::OnDemand);
    pass_time(UNAVAILABLE_FOR + Duration::from_secs(1)).await;
    let err = cloud
        .create(&claim("none-left", requirements), class)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        CloudError::InsufficientCapacity {
            tried: vec![
                "m5.large/us-east-1a/on-demand".into(),
                "m5.large/us-east-1b/on-demand".into()
            ]
        }
    );
    assert!(err.to_string().contains("insufficient capacity"), "{err}");
}

/// Moves tokio's clock forward by `by` and lets it run on from there. The
/// suite runs on the real clock: the SDK's HTTP stack hangs on a paused one.
async fn pass_time(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

/// Runs every behaviour against one implementation.
macro_rules! suite {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn launches_the_cheapest_allowed_offering_with_tags() {
                let Some(env) = $make(stringify!($module)).await else {
                    return;
                };
                super::launches_the_cheapest_allowed_offering_with_tags(&env).await;
                env.check_requests().await;
            }

            #[tokio::test]
            async fn honours_zone_and_capacity_type() {
                let Some(env) = $make(stringify!($module)).await else {
                    return;
                };
                super::honours_zone_and_capacity_type(&env).await;
                env.check_requests().await;
            }

            #[tokio::test]
            async fn gets_lists_and_deletes() {
                let Some(env) = $make(stringify!($module)).await else {
                    return;
                };
                super::gets_lists_and_deletes(&env).await;
                env.check_requests().await;
            }

            #[tokio::test]
            async fn unavailable_offerings_are_skipped_until_they_expire() {
                let Some(env) = $make(stringify!($module)).await else {
                    return;
                };
                super::unavailable_offerings_are_skipped_until_they_expire(&env).await;
                env.check_requests().await;
            }

            #[tokio::test]
            async fn insufficient_capacity_falls_back_then_fails() {
                let Some(env) = $make(stringify!($module)).await else {
                    return;
                };
                super::insufficient_capacity_falls_back_then_fails(&env).await;
                env.check_requests().await;
            }
        }
    };
}

suite!(simulated_ec2, simulated_env);
suite!(aws_ec2_on_moto, AwsEnv::start);

#[tokio::test(start_paused = true)]
async fn simulated_drift_interruptions_and_launch_hook() {
    let class = &aws_support::node_class("default");
    let launched = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = launched.clone();
    let config = SimulationConfig {
        launch_latency: Duration::from_secs(30),
        ..Default::default()
    };
    let cloud = SimulatedEc2::new(Catalog::new(Catalog::us_east_1().iter().cloned()), config)
        .with_launch_hook(std::sync::Arc::new(move |i, _| {
            seen.lock().unwrap().push(i.id.clone())
        }));
    let started = tokio::time::Instant::now();
    let instance = cloud
        .create(&claim("spot", json!([types(TYPES)])), class)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(30),
        "launch latency is simulated"
    );
    assert_eq!(*launched.lock().unwrap(), vec![instance.id.clone()]);

    let mut with_status = claim("spot", json!([types(TYPES)]));
    with_status.status =
        Some(serde_json::from_value(json!({"providerID": instance.provider_id})).unwrap());
    assert_eq!(cloud.is_drifted(&with_status, class).await.unwrap(), None);
    cloud.release_image("ami-0000000000000sim2");
    let drift = cloud
        .is_drifted(&with_status, class)
        .await
        .unwrap()
        .unwrap();
    assert!(
        drift.starts_with("AMIDrift") && drift.contains("ami-0000000000000sim2"),
        "{drift}"
    );

    for (event, source, detail_type) in [
        (
            SimEvent::Rebalance,
            "aws.ec2",
            "EC2 Instance Rebalance Recommendation",
        ),
        (
            SimEvent::StateChange("stopping"),
            "aws.ec2",
            "EC2 Instance State-change Notification",
        ),
        (SimEvent::ScheduledChange, "aws.health", "AWS Health Event"),
    ] {
        let message = cloud.event(event, &instance.provider_id).unwrap();
        assert_eq!(
            (message["source"].as_str(), message["detail-type"].as_str()),
            (Some(source), Some(detail_type))
        );
        assert!(message.to_string().contains(&instance.id));
    }
    let wrong = cloud
        .event(
            SimEvent::CapacityReservationInterruption,
            &instance.provider_id,
        )
        .unwrap_err();
    assert!(
        matches!(&wrong, CloudError::Invalid(m) if m.contains("only goes to reserved")),
        "{wrong}"
    );
    let message = cloud
        .event(SimEvent::SpotInterruption, &instance.provider_id)
        .unwrap();
    assert_eq!(
        message["detail-type"],
        "EC2 Spot Instance Interruption Warning"
    );
    assert_eq!(message["detail"]["instance-id"], instance.id.as_str());
    let next = cloud
        .create(&claim("after", json!([types(TYPES)])), class)
        .await
        .unwrap();
    assert_ne!(
        (next.instance_type.as_str(), next.zone.as_str()),
        (instance.instance_type.as_str(), instance.zone.as_str()),
        "the interrupted offering is unavailable"
    );

    // Same seed, same ids.
    let again = simulated();
    let first = again
        .create(&claim("x", json!([types(TYPES)])), class)
        .await
        .unwrap();
    assert_eq!(
        first.id,
        simulated()
            .create(&claim("x", json!([types(TYPES)])), class)
            .await
            .unwrap()
            .id
    );
}

//! The cloud-provider behaviour suite: one set of behaviours, run against every
//! implementation. Today that is the simulated EC2; the AWS provider (against
//! moto, with a fault-injection layer for what moto cannot do) joins with the
//! cloud-provider issue by implementing [`Faults`] and adding a `suite!` line.

use karpenter_api::v1::NodeClaim;
use karpenter_controller::catalog::{CapacityType, Catalog, KubeletSettings};
use karpenter_controller::cloud::{
    CloudError, CloudProvider, SimEvent, SimulatedEc2, SimulationConfig, UNAVAILABLE_FOR,
    parse_provider_id,
};
use serde_json::json;
use std::time::Duration;

/// What a test needs to make a cloud misbehave.
trait Faults {
    /// The offering has no capacity left.
    fn exhaust(&self, instance_type: &str, zone: &str, capacity_type: CapacityType);
}

impl Faults for SimulatedEc2 {
    fn exhaust(&self, instance_type: &str, zone: &str, capacity_type: CapacityType) {
        self.set_capacity(instance_type, zone, capacity_type, 0);
    }
}

fn simulated() -> SimulatedEc2 {
    let catalog = Catalog::new(Catalog::us_east_1().iter().cloned());
    SimulatedEc2::new(catalog, SimulationConfig::default())
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

async fn launches_the_cheapest_allowed_offering_with_tags(cloud: &impl CloudProvider) {
    let instance = cloud
        .create(&claim("web-abc12", json!([types(TYPES)])))
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
        ("Name", "default/web-abc12"),
    ] {
        assert_eq!(
            instance.tags.get(key).map(String::as_str),
            Some(value),
            "tag {key}"
        );
    }
    let expected = Catalog::us_east_1()
        .get(&name)
        .unwrap()
        .allocatable(&KubeletSettings::default());
    assert_eq!(instance.allocatable, expected);
}

async fn honours_zone_and_capacity_type(cloud: &impl CloudProvider) {
    let requirements = json!([types(TYPES),
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1b"]},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]);
    let instance = cloud.create(&claim("od", requirements)).await.unwrap();
    assert_eq!(
        (instance.zone.as_str(), instance.capacity_type),
        ("us-east-1b", CapacityType::OnDemand)
    );
    let impossible = json!([types(&["m5.large"]), {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}]);
    let err = cloud.create(&claim("none", impossible)).await.unwrap_err();
    assert!(matches!(err, CloudError::NoCompatibleOffering(_)), "{err}");
}

async fn gets_lists_and_deletes(cloud: &impl CloudProvider) {
    let a = cloud
        .create(&claim("a", json!([types(TYPES)])))
        .await
        .unwrap();
    let b = cloud
        .create(&claim("b", json!([types(TYPES)])))
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

async fn unavailable_offerings_are_skipped_until_they_expire(cloud: &impl CloudProvider) {
    let (name, zone, _) = cheapest(TYPES, CapacityType::Spot);
    cloud.mark_unavailable(&name, &zone, CapacityType::Spot);
    let second = cloud
        .create(&claim("second", json!([types(TYPES)])))
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
    let listed = cloud.instance_types(&pool).await.unwrap();
    assert_eq!(listed.len(), TYPES.len());
    assert!(!offered(&listed));
    tokio::time::advance(UNAVAILABLE_FOR + Duration::from_secs(1)).await;
    assert!(offered(&cloud.instance_types(&pool).await.unwrap()));
    let third = cloud
        .create(&claim("third", json!([types(TYPES)])))
        .await
        .unwrap();
    assert_eq!((&third.instance_type, &third.zone), (&name, &zone));
}

async fn insufficient_capacity_falls_back_then_fails(cloud: &(impl CloudProvider + Faults)) {
    let only = &["m5.large"];
    let requirements = json!([types(only), {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a", "us-east-1b"]}]);
    cloud.exhaust("m5.large", "us-east-1a", CapacityType::OnDemand);
    let instance = cloud
        .create(&claim("fallback", requirements.clone()))
        .await
        .unwrap();
    assert_eq!(instance.zone, "us-east-1b");
    cloud.exhaust("m5.large", "us-east-1b", CapacityType::OnDemand);
    tokio::time::advance(UNAVAILABLE_FOR + Duration::from_secs(1)).await;
    let err = cloud
        .create(&claim("none-left", requirements))
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

/// Runs every behaviour against one implementation.
macro_rules! suite {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            #[tokio::test(start_paused = true)]
            async fn launches_the_cheapest_allowed_offering_with_tags() {
                super::launches_the_cheapest_allowed_offering_with_tags(&$make).await;
            }

            #[tokio::test(start_paused = true)]
            async fn honours_zone_and_capacity_type() {
                super::honours_zone_and_capacity_type(&$make).await;
            }

            #[tokio::test(start_paused = true)]
            async fn gets_lists_and_deletes() {
                super::gets_lists_and_deletes(&$make).await;
            }

            #[tokio::test(start_paused = true)]
            async fn unavailable_offerings_are_skipped_until_they_expire() {
                super::unavailable_offerings_are_skipped_until_they_expire(&$make).await;
            }

            #[tokio::test(start_paused = true)]
            async fn insufficient_capacity_falls_back_then_fails() {
                super::insufficient_capacity_falls_back_then_fails(&$make).await;
            }
        }
    };
}

suite!(simulated_ec2, simulated());

#[tokio::test(start_paused = true)]
async fn simulated_drift_interruptions_and_launch_hook() {
    let launched = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = launched.clone();
    let config = SimulationConfig {
        launch_latency: Duration::from_secs(30),
        ..Default::default()
    };
    let cloud = SimulatedEc2::new(Catalog::new(Catalog::us_east_1().iter().cloned()), config)
        .with_launch_hook(std::sync::Arc::new(move |i| {
            seen.lock().unwrap().push(i.id.clone())
        }));
    let started = tokio::time::Instant::now();
    let instance = cloud
        .create(&claim("spot", json!([types(TYPES)])))
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
    assert_eq!(cloud.is_drifted(&with_status).await.unwrap(), None);
    cloud.release_image("ami-0000000000000sim2");
    let drift = cloud.is_drifted(&with_status).await.unwrap().unwrap();
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
        .create(&claim("after", json!([types(TYPES)])))
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
        .create(&claim("x", json!([types(TYPES)])))
        .await
        .unwrap();
    assert_eq!(
        first.id,
        simulated()
            .create(&claim("x", json!([types(TYPES)])))
            .await
            .unwrap()
            .id
    );
}

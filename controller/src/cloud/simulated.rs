//! A simulated EC2 behind [`CloudProvider`]: in-process and deterministic for a
//! seed. It launches from the embedded catalog at its prices, keeps per-offering
//! capacity (so launches can run out and fall back), remembers unavailable
//! offerings for [`UNAVAILABLE_FOR`], can replace the AMI (drift) and emit the
//! five kinds of EventBridge message the interruption queue carries. No real part exists for this role (the AWS implementation is
//! tested against moto); it stands in for EC2 in the demo and fast tests only.

use super::{CloudError, CloudProvider, Instance, UNAVAILABLE_FOR, parse_provider_id};
use crate::catalog::{CapacityType, Catalog, InstanceType, KubeletSettings, Offering};
use karpenter_api::labels;
use karpenter_api::requirements::Requirements;
use karpenter_api::v1::{NodeClaim, NodePool};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How the simulation behaves.
#[derive(Debug, Clone)]
pub struct SimulationConfig {
    /// Cluster name (tags, EventBridge messages).
    pub cluster_name: String,
    /// Seed for instance ids.
    pub seed: u64,
    /// How long a launch takes.
    pub launch_latency: Duration,
    /// The AMI new instances get (see [`SimulatedEc2::release_image`]).
    pub image_id: String,
    /// Kubelet settings for capacity and allocatable.
    pub kubelet: KubeletSettings,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            cluster_name: "demo".into(),
            seed: 1,
            launch_latency: Duration::ZERO,
            image_id: "ami-0000000000000sim1".into(),
            kubelet: KubeletSettings::default(),
        }
    }
}

/// The five kinds of message the interruption queue receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimEvent {
    /// "EC2 Spot Instance Interruption Warning" (two minutes' notice).
    SpotInterruption,
    /// "EC2 Instance Rebalance Recommendation".
    Rebalance,
    /// "EC2 Instance State-change Notification" with the new state (`stopping`, `terminated`, ...).
    StateChange(&'static str),
    /// "AWS Health Event": a scheduled change (instance retirement).
    ScheduledChange,
    /// "EC2 Capacity Reservation Instance Interruption Warning".
    CapacityReservationInterruption,
}

/// An offering's key: instance type, zone, capacity type.
type OfferingKey = (String, String, CapacityType);

/// Called with every instance that starts (the demo registers a Node in kubesim).
pub type LaunchHook = Arc<dyn Fn(&Instance) + Send + Sync>;

struct State {
    instances: BTreeMap<String, Instance>,
    /// Instances an offering can still launch (absent: unlimited).
    capacity: HashMap<OfferingKey, u32>,
    unavailable_until: HashMap<OfferingKey, Instant>,
    image_id: String,
    rng: u64,
}

/// The simulated EC2.
pub struct SimulatedEc2 {
    catalog: Catalog,
    config: SimulationConfig,
    state: Mutex<State>,
    on_launch: Option<LaunchHook>,
}

fn rank(capacity_type: CapacityType) -> u8 {
    match capacity_type {
        CapacityType::Reserved => 0,
        CapacityType::Spot => 1,
        CapacityType::OnDemand => 2,
    }
}

/// True when the type's well-known labels meet `requirements` (zone, capacity
/// type and labels the type does not define are for offerings and NodePools).
fn type_matches(t: &InstanceType, requirements: &Requirements) -> bool {
    let type_labels = t.labels();
    requirements.iter().all(|r| match r.key() {
        labels::ZONE | labels::CAPACITY_TYPE | labels::NODEPOOL | labels::HOSTNAME => true,
        key if !labels::is_well_known(key) => true,
        key => match type_labels.get(key) {
            Some(value) => r.has(value),
            None => matches!(r.operator(), "NotIn" | "DoesNotExist"),
        },
    })
}

fn offering_allowed(o: &Offering, requirements: &Requirements) -> bool {
    requirements
        .get(labels::ZONE)
        .is_none_or(|r| r.has(&o.zone))
        && requirements
            .get(labels::CAPACITY_TYPE)
            .is_none_or(|r| r.has(o.capacity_type.label()))
}

impl SimulatedEc2 {
    /// A simulated EC2 selling `catalog`.
    pub fn new(catalog: Catalog, config: SimulationConfig) -> Self {
        let state = State {
            instances: BTreeMap::new(),
            capacity: HashMap::new(),
            unavailable_until: HashMap::new(),
            image_id: config.image_id.clone(),
            rng: config.seed.max(1),
        };
        SimulatedEc2 {
            catalog,
            config,
            state: Mutex::new(state),
            on_launch: None,
        }
    }

    /// Calls `hook` with every instance that starts.
    pub fn with_launch_hook(mut self, hook: LaunchHook) -> Self {
        self.on_launch = Some(hook);
        self
    }

    /// Limits how many more instances an offering can launch.
    pub fn set_capacity(
        &self,
        instance_type: &str,
        zone: &str,
        capacity_type: CapacityType,
        instances: u32,
    ) {
        let key = (instance_type.to_string(), zone.to_string(), capacity_type);
        self.lock().capacity.insert(key, instances);
    }

    /// Publishes a new AMI: instances on the old one are drifted.
    pub fn release_image(&self, image_id: &str) {
        self.lock().image_id = image_id.to_string();
    }

    /// The EventBridge message AWS would put on the interruption queue for
    /// `event` on an instance. A spot interruption also marks the instance's
    /// offering unavailable (AWS is taking the capacity back); spot warnings
    /// only go to spot instances, capacity-reservation ones to reserved ones.
    pub fn event(
        &self,
        event: SimEvent,
        provider_id: &str,
    ) -> Result<serde_json::Value, CloudError> {
        let (_, id) = parse_provider_id(provider_id)?;
        let instance = self
            .lock()
            .instances
            .get(id)
            .cloned()
            .ok_or_else(|| CloudError::NotFound(id.to_string()))?;
        let needs = match event {
            SimEvent::SpotInterruption => Some(CapacityType::Spot),
            SimEvent::CapacityReservationInterruption => Some(CapacityType::Reserved),
            _ => None,
        };
        if let Some(needed) = needs.filter(|c| *c != instance.capacity_type) {
            return Err(CloudError::Invalid(format!(
                "{id} is {}: this warning only goes to {} instances",
                instance.capacity_type.label(),
                needed.label()
            )));
        }
        if event == SimEvent::SpotInterruption {
            self.mark_unavailable(
                &instance.instance_type,
                &instance.zone,
                instance.capacity_type,
            );
        }
        let (source, detail_type, detail) = match event {
            SimEvent::SpotInterruption => (
                "aws.ec2",
                "EC2 Spot Instance Interruption Warning",
                serde_json::json!({"instance-id": id, "instance-action": "terminate"}),
            ),
            SimEvent::Rebalance => (
                "aws.ec2",
                "EC2 Instance Rebalance Recommendation",
                serde_json::json!({"instance-id": id}),
            ),
            SimEvent::StateChange(state) => (
                "aws.ec2",
                "EC2 Instance State-change Notification",
                serde_json::json!({"instance-id": id, "state": state}),
            ),
            SimEvent::ScheduledChange => (
                "aws.health",
                "AWS Health Event",
                serde_json::json!({"service": "EC2", "eventTypeCategory": "scheduledChange",
                    "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
                    "affectedEntities": [{"entityValue": id}]}),
            ),
            SimEvent::CapacityReservationInterruption => (
                "aws.ec2",
                "EC2 Capacity Reservation Instance Interruption Warning",
                serde_json::json!({"instance-id": id, "instance-action": "terminate"}),
            ),
        };
        Ok(serde_json::json!({
            "version": "0",
            "id": format!("sim-{id}-{}", detail_type.len()),
            "detail-type": detail_type,
            "source": source,
            "account": "000000000000",
            "region": "us-east-1",
            "resources": [format!("arn:aws:ec2:{}:instance/{id}", instance.zone)],
            "detail": detail
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written
        // (every update is a single insert or remove), so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_id(state: &mut State) -> String {
        // xorshift64*: deterministic for the seed.
        state.rng ^= state.rng >> 12;
        state.rng ^= state.rng << 25;
        state.rng ^= state.rng >> 27;
        format!("i-{:017x}", state.rng.wrapping_mul(0x2545_F491_4F6C_DD1D))
    }

    fn available(state: &State, key: &OfferingKey, now: Instant) -> bool {
        state
            .unavailable_until
            .get(key)
            .is_none_or(|until| *until <= now)
    }

    fn launch(&self, claim: &NodeClaim) -> Result<Instance, CloudError> {
        let name = claim.metadata.name.clone().unwrap_or_default();
        let requirements = Requirements::from_api(&claim.spec.template.requirements)
            .map_err(|e| CloudError::Invalid(format!("NodeClaim {name}: {e}")))?;
        let mut choices: Vec<(&InstanceType, &Offering)> = self
            .catalog
            .iter()
            .filter(|t| type_matches(t, &requirements))
            .flat_map(|t| t.offerings.iter().map(move |o| (t, o)))
            .filter(|(_, o)| offering_allowed(o, &requirements))
            .collect();
        if choices.is_empty() {
            return Err(CloudError::NoCompatibleOffering(format!(
                "NodeClaim {name} allows no instance type, zone and capacity type the catalog sells"
            )));
        }
        choices.sort_by(|a, b| {
            rank(a.1.capacity_type)
                .cmp(&rank(b.1.capacity_type))
                .then(a.1.price.total_cmp(&b.1.price))
                .then_with(|| a.0.name.cmp(&b.0.name))
        });
        let now = Instant::now();
        let mut state = self.lock();
        let mut tried = Vec::new();
        for (t, o) in choices {
            let key = (t.name.clone(), o.zone.clone(), o.capacity_type);
            if !Self::available(&state, &key, now) {
                continue;
            }
            if let Some(left) = state.capacity.get_mut(&key) {
                if *left == 0 {
                    tried.push(format!("{}/{}/{}", t.name, o.zone, o.capacity_type.label()));
                    state.unavailable_until.insert(key, now + UNAVAILABLE_FOR);
                    continue;
                }
                *left -= 1;
            }
            let id = Self::next_id(&mut state);
            let pool = claim
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::NODEPOOL))
                .cloned()
                .unwrap_or_default();
            let cluster = &self.config.cluster_name;
            let tags = BTreeMap::from([
                (
                    format!("kubernetes.io/cluster/{cluster}"),
                    "owned".to_string(),
                ),
                ("eks:eks-cluster-name".to_string(), cluster.clone()),
                (labels::NODEPOOL.to_string(), pool.clone()),
                (labels::NODECLAIM.to_string(), name.clone()),
                (
                    labels::EC2NODECLASS.to_string(),
                    claim.spec.template.node_class_ref.name.clone(),
                ),
                ("Name".to_string(), format!("{pool}/{name}")),
            ]);
            let instance = Instance {
                provider_id: format!("aws:///{}/{id}", o.zone),
                id: id.clone(),
                instance_type: t.name.clone(),
                zone: o.zone.clone(),
                capacity_type: o.capacity_type,
                image_id: state.image_id.clone(),
                capacity: t.capacity(&self.config.kubelet),
                allocatable: t.allocatable(&self.config.kubelet),
                tags,
            };
            state.instances.insert(id, instance.clone());
            return Ok(instance);
        }
        Err(CloudError::InsufficientCapacity { tried })
    }
}

impl CloudProvider for SimulatedEc2 {
    async fn create(&self, claim: &NodeClaim) -> Result<Instance, CloudError> {
        tokio::time::sleep(self.config.launch_latency).await;
        let instance = self.launch(claim)?;
        if let Some(hook) = &self.on_launch {
            hook(&instance);
        }
        Ok(instance)
    }

    async fn get(&self, provider_id: &str) -> Result<Instance, CloudError> {
        let (_, id) = parse_provider_id(provider_id)?;
        self.lock()
            .instances
            .get(id)
            .cloned()
            .ok_or_else(|| CloudError::NotFound(id.to_string()))
    }

    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        Ok(self.lock().instances.values().cloned().collect())
    }

    async fn delete(&self, provider_id: &str) -> Result<(), CloudError> {
        let (_, id) = parse_provider_id(provider_id)?;
        self.lock()
            .instances
            .remove(id)
            .map(|_| ())
            .ok_or_else(|| CloudError::NotFound(id.to_string()))
    }

    async fn instance_types(&self, pool: &NodePool) -> Result<Vec<InstanceType>, CloudError> {
        let requirements = Requirements::from_api(&pool.spec.template.spec.requirements)
            .map_err(|e| CloudError::Invalid(format!("NodePool: {e}")))?;
        let now = Instant::now();
        let state = self.lock();
        Ok(self
            .catalog
            .iter()
            .filter(|t| type_matches(t, &requirements))
            .map(|t| {
                let mut t = t.clone();
                for o in &mut t.offerings {
                    let key = (t.name.clone(), o.zone.clone(), o.capacity_type);
                    o.available = o.available && Self::available(&state, &key, now);
                }
                t
            })
            .collect())
    }

    async fn is_drifted(&self, claim: &NodeClaim) -> Result<Option<String>, CloudError> {
        let provider_id = claim
            .status
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .ok_or_else(|| CloudError::Invalid("the NodeClaim has no provider ID yet".into()))?;
        let instance = self.get(provider_id).await?;
        let current = self.lock().image_id.clone();
        Ok((instance.image_id != current).then(|| {
            format!(
                "AMIDrift: the instance runs {}, the EC2NodeClass now resolves {current}",
                instance.image_id
            )
        }))
    }

    fn mark_unavailable(&self, instance_type: &str, zone: &str, capacity_type: CapacityType) {
        let key = (instance_type.to_string(), zone.to_string(), capacity_type);
        self.lock()
            .unavailable_until
            .insert(key, Instant::now() + UNAVAILABLE_FOR);
    }
}

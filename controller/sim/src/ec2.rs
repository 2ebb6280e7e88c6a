//! A simulated EC2 behind [`CloudProvider`]: in-process and deterministic for a
//! seed. It launches from the embedded catalog at its prices, keeps per-offering
//! capacity (so launches can run out and fall back), remembers unavailable
//! offerings for [`UNAVAILABLE_FOR`], can replace the AMI (drift) and emit the
//! five kinds of EventBridge message the interruption queue carries. No real part exists for this role (the AWS implementation is
//! tested against moto); it stands in for EC2 in the demo and fast tests only.

use crate::boot::BootMedia;
use karpenter_api::requirements::Requirements;
use karpenter_api::v1::{EC2NodeClass, EC2NodeClassStatus, NodeClaim, NodePool};
use karpenter_controller::catalog::{CapacityType, Catalog, InstanceType, KubeletSettings};
use karpenter_controller::cloud::offerings::{
    OfferingKey, UnavailableOfferings, instance_tags, launch_choices, offering_name, type_matches,
};
use karpenter_controller::cloud::{
    CloudError, CloudProvider, Instance, claim_provider_id, parse_provider_id,
};
use karpenter_controller::userdata::{AmiFamily, ClusterInfo, NodeBootstrap, render};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// Kubelet settings for capacity and allocatable (the VM memory
    /// overhead; the rest comes from each launch's EC2NodeClass).
    pub kubelet: KubeletSettings,
    /// The cluster the user data points nodes at.
    pub cluster: ClusterInfo,
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            cluster_name: "demo".into(),
            seed: 1,
            launch_latency: Duration::ZERO,
            image_id: "ami-0000000000000sim1".into(),
            kubelet: KubeletSettings::default(),
            cluster: crate::boot::sim_cluster_info(),
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

/// Called with every instance that starts and what it boots from (the demo
/// boots it and registers its Node in kubesim).
pub type LaunchHook = Arc<dyn Fn(&Instance, &BootMedia) + Send + Sync>;

/// Called with the provider ID of every instance terminated (the demo
/// removes its Node, as the cloud controller manager does on EKS).
pub type TerminateHook = Arc<dyn Fn(&str) + Send + Sync>;

struct State {
    instances: BTreeMap<String, Instance>,
    /// Every launch: instance id and the NodeClaim it was for.
    launches: Vec<(String, String)>,
    /// A fraction of launches and terminations failing, with the
    /// generator's state; and how many failed.
    faults: Option<(f64, u64)>,
    injected: u64,
    /// Instances an offering can still launch (absent: unlimited).
    capacity: HashMap<OfferingKey, u32>,
    image_id: String,
    rng: u64,
}

/// The simulated EC2.
pub struct SimulatedEc2 {
    catalog: Catalog,
    config: SimulationConfig,
    state: Mutex<State>,
    unavailable: UnavailableOfferings,
    on_launch: Option<LaunchHook>,
    on_terminate: Option<TerminateHook>,
}

impl SimulatedEc2 {
    /// A simulated EC2 selling `catalog`.
    pub fn new(catalog: Catalog, config: SimulationConfig) -> Self {
        let state = State {
            instances: BTreeMap::new(),
            launches: Vec::new(),
            faults: None,
            injected: 0,
            capacity: HashMap::new(),
            image_id: config.image_id.clone(),
            rng: config.seed.max(1),
        };
        SimulatedEc2 {
            catalog,
            config,
            state: Mutex::new(state),
            unavailable: UnavailableOfferings::default(),
            on_launch: None,
            on_terminate: None,
        }
    }

    /// Calls `hook` with every instance terminated.
    pub fn with_terminate_hook(mut self, hook: TerminateHook) -> Self {
        self.on_terminate = Some(hook);
        self
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

    /// From now on `fraction` of launches and terminations fail (an AWS
    /// `InternalError`), chosen by a generator seeded with `seed`; 0 stops it.
    pub fn fail_fraction(&self, fraction: f64, seed: u64) {
        self.lock().faults = (fraction > 0.0).then_some((fraction, seed.max(1)));
    }

    /// How many calls [`Self::fail_fraction`] failed.
    pub fn injected_faults(&self) -> u64 {
        self.lock().injected
    }

    /// Every launch so far: instance id and the NodeClaim it was for.
    pub fn launches(&self) -> Vec<(String, String)> {
        self.lock().launches.clone()
    }

    /// Whether this call fails (an injected fault).
    fn fault(&self, operation: &'static str) -> Result<(), CloudError> {
        let mut state = self.lock();
        let Some((fraction, rng)) = state.faults.as_mut() else {
            return Ok(());
        };
        *rng ^= *rng >> 12;
        *rng ^= *rng << 25;
        *rng ^= *rng >> 27;
        let draw = (rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        if draw < *fraction {
            state.injected += 1;
            return Err(CloudError::Api {
                operation,
                code: "InternalError".into(),
                message: "injected fault".into(),
            });
        }
        Ok(())
    }

    /// Publishes a new AMI: instances on the old one are drifted.
    pub fn release_image(&self, image_id: &str) {
        self.lock().image_id = image_id.to_string();
    }

    /// The AMI a class resolves to. Simplified: an `id` term selects that
    /// id (any id exists here, where EC2 would check it and its
    /// architecture); any other selector (alias, tags, name) resolves to the
    /// published image.
    fn image_of(&self, class: &EC2NodeClass) -> String {
        class
            .spec
            .ami_selector_terms
            .iter()
            .find_map(|t| t.id.clone())
            .unwrap_or_else(|| self.lock().image_id.clone())
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

    fn launch(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
    ) -> Result<(Instance, BootMedia), CloudError> {
        let choices = launch_choices(claim, self.catalog.iter())?;
        let kubelet = KubeletSettings::for_class_with(
            class,
            karpenter_controller::catalog::NodeOverheads {
                vm_memory_overhead_percent: self.config.kubelet.vm_memory_overhead_percent,
                reserved_enis: self.config.kubelet.reserved_enis,
            },
        );
        let family = AmiFamily::of(class);
        let image_id = self.image_of(class);
        let mut state = self.lock();
        let mut tried = Vec::new();
        for (t, o) in choices {
            if !self
                .unavailable
                .is_available(&t.name, &o.zone, o.capacity_type)
            {
                continue;
            }
            let key = (t.name.clone(), o.zone.clone(), o.capacity_type);
            if let Some(left) = state.capacity.get_mut(&key) {
                if *left == 0 {
                    tried.push(offering_name(&t.name, &o.zone, o.capacity_type));
                    self.unavailable.mark(&t.name, &o.zone, o.capacity_type);
                    continue;
                }
                *left -= 1;
            }
            // The user data a launch template would carry, rendered as the EC2 provider does.
            let node = NodeBootstrap::for_claim(
                claim,
                class,
                o.capacity_type.label(),
                t.max_pods(&kubelet),
            );
            let user_data = render(
                family,
                &self.config.cluster,
                &node,
                class.spec.user_data.as_deref(),
            )
            .map_err(|e| CloudError::NodeClassNotReady(e.to_string()))?;
            let id = Self::next_id(&mut state);
            let efas = karpenter_controller::cloud::efa_interfaces(t, claim);
            let (capacity, allocatable) =
                karpenter_controller::cloud::node_resources(t, &kubelet, efas);
            let instance = Instance {
                provider_id: format!("aws:///{}/{id}", o.zone),
                id: id.clone(),
                instance_type: t.name.clone(),
                zone: o.zone.clone(),
                capacity_type: o.capacity_type,
                image_id: image_id.clone(),
                capacity,
                allocatable,
                tags: instance_tags(&self.config.cluster_name, claim, class.spec.tags.as_ref()),
            };
            let claim_name = claim.metadata.name.clone().unwrap_or_default();
            state.launches.push((id.clone(), claim_name));
            state.instances.insert(id, instance.clone());
            let media = BootMedia {
                family,
                user_data,
                volumes: crate::boot::launch_volumes(class),
                efa_interfaces: efas,
            };
            return Ok((instance, media));
        }
        Err(CloudError::InsufficientCapacity { tried })
    }
}

impl CloudProvider for SimulatedEc2 {
    async fn create(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
    ) -> Result<Instance, CloudError> {
        tokio::time::sleep(self.config.launch_latency).await;
        self.fault("CreateFleet")?;
        let (instance, media) = self.launch(claim, class)?;
        if let Some(hook) = &self.on_launch {
            hook(&instance, &media);
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
        self.fault("TerminateInstances")?;
        let (_, id) = parse_provider_id(provider_id)?;
        let removed = self.lock().instances.remove(id);
        match removed {
            Some(instance) => {
                if let Some(hook) = &self.on_terminate {
                    hook(&instance.provider_id);
                }
                Ok(())
            }
            None => Err(CloudError::NotFound(id.to_string())),
        }
    }

    async fn tag(
        &self,
        provider_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.fault("CreateTags")?;
        let (_, id) = parse_provider_id(provider_id)?;
        match self.lock().instances.get_mut(id) {
            Some(instance) => {
                instance.tags.extend(tags.clone());
                Ok(())
            }
            None => Err(CloudError::NotFound(id.to_string())),
        }
    }

    async fn instance_types(
        &self,
        pool: &NodePool,
        _class: &EC2NodeClass,
    ) -> Result<Vec<InstanceType>, CloudError> {
        let requirements = Requirements::from_api(&pool.spec.template.spec.requirements)
            .map_err(|e| CloudError::Invalid(format!("NodePool: {e}")))?;
        let mut types: Vec<InstanceType> = self
            .catalog
            .iter()
            .filter(|t| type_matches(t, &requirements))
            .cloned()
            .collect();
        self.unavailable.apply(&mut types);
        Ok(types)
    }

    async fn is_drifted(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
    ) -> Result<Option<String>, CloudError> {
        let provider_id = claim_provider_id(claim)?;
        let instance = self.get(provider_id).await?;
        let current = self.image_of(class);
        Ok((instance.image_id != current).then(|| {
            format!(
                "AMIDrift: the instance runs {}, the EC2NodeClass now resolves {current}",
                instance.image_id
            )
        }))
    }

    fn mark_unavailable(&self, instance_type: &str, zone: &str, capacity_type: CapacityType) {
        self.unavailable.mark(instance_type, zone, capacity_type);
    }

    /// The simulation has one subnet per zone it sells in, one security
    /// group and the current image; a class is Ready unless its user data
    /// cannot be generated (`ValidationSucceeded`).
    async fn resolve_node_class(&self, class: &EC2NodeClass) -> EC2NodeClassStatus {
        use karpenter_api::v1::ec2nodeclass_conditions as cond;
        use karpenter_api::v1::{AmiStatus, SecurityGroupStatus, SubnetStatus, set_condition};
        let zones: std::collections::BTreeSet<&str> = self
            .catalog
            .iter()
            .flat_map(|t| t.offerings.iter().map(|o| o.zone.as_str()))
            .collect();
        let mut conditions = class
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let validation =
            karpenter_controller::userdata::validate_class(class, &self.config.cluster);
        for type_ in [
            cond::SUBNETS_READY,
            cond::SECURITY_GROUPS_READY,
            cond::AMIS_READY,
            cond::INSTANCE_PROFILE_READY,
        ] {
            set_condition(
                &mut conditions,
                type_,
                true,
                type_,
                "",
                class.metadata.generation,
            );
        }
        let (ok, reason, message) = match &validation {
            Ok(()) => (true, cond::VALIDATION_SUCCEEDED.to_string(), String::new()),
            Err((reason, message)) => (false, reason.clone(), message.clone()),
        };
        set_condition(
            &mut conditions,
            cond::VALIDATION_SUCCEEDED,
            ok,
            &reason,
            &message,
            class.metadata.generation,
        );
        let ready_message = if ok {
            String::new()
        } else {
            format!("ValidationSucceeded: {message}")
        };
        set_condition(
            &mut conditions,
            cond::READY,
            ok,
            if ok { cond::READY } else { "NotReady" },
            &ready_message,
            class.metadata.generation,
        );
        let name = class.metadata.name.clone().unwrap_or_default();
        EC2NodeClassStatus {
            subnets: Some(
                zones
                    .iter()
                    .map(|zone| SubnetStatus {
                        id: format!("subnet-sim-{zone}"),
                        zone: zone.to_string(),
                        zone_id: None,
                    })
                    .collect(),
            ),
            security_groups: Some(vec![SecurityGroupStatus {
                id: "sg-sim".into(),
                name: Some(format!("{}-nodes", self.config.cluster_name)),
            }]),
            capacity_reservations: None,
            amis: Some(vec![AmiStatus {
                id: self.image_of(class),
                name: Some("simulated".into()),
                requirements: Vec::new(),
                deprecated: None,
            }]),
            instance_profile: Some(format!("{}_{name}", self.config.cluster_name)),
            conditions: Some(conditions),
        }
    }

    async fn finalize_node_class(&self, _class: &EC2NodeClass) -> Result<(), CloudError> {
        Ok(())
    }
}

//! What every cloud provider decides the same way: which offerings a NodeClaim
//! allows and in what order to try them, which offerings are out of capacity
//! for a while, and how launched instances are tagged.

use super::{CloudError, UNAVAILABLE_FOR};
use crate::catalog::{CapacityType, InstanceType, Offering};
use karpenter_api::labels;
use karpenter_api::requirements::Requirements;
use karpenter_api::v1::NodeClaim;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tokio::time::Instant;

/// An offering's key: instance type, zone, capacity type.
pub type OfferingKey = (String, String, CapacityType);

/// `m5.large/us-east-1a/spot`, as errors and logs name an offering.
pub fn offering_name(instance_type: &str, zone: &str, capacity_type: CapacityType) -> String {
    format!("{instance_type}/{zone}/{}", capacity_type.label())
}

/// Offerings that recently had no capacity (upstream's insufficient-capacity
/// cache): each stays unavailable for [`UNAVAILABLE_FOR`].
#[derive(Debug, Default)]
pub struct UnavailableOfferings {
    until: Mutex<HashMap<OfferingKey, Instant>>,
}

impl UnavailableOfferings {
    /// Marks an offering unavailable from now on for [`UNAVAILABLE_FOR`].
    pub fn mark(&self, instance_type: &str, zone: &str, capacity_type: CapacityType) {
        let key = (instance_type.to_string(), zone.to_string(), capacity_type);
        self.lock().insert(key, Instant::now() + UNAVAILABLE_FOR);
    }

    /// False while the offering is marked.
    pub fn is_available(
        &self,
        instance_type: &str,
        zone: &str,
        capacity_type: CapacityType,
    ) -> bool {
        let key = (instance_type.to_string(), zone.to_string(), capacity_type);
        self.lock()
            .get(&key)
            .is_none_or(|until| *until <= Instant::now())
    }

    /// Clears `available` on every marked offering of `types`.
    pub fn apply(&self, types: &mut [InstanceType]) {
        let now = Instant::now();
        let until = self.lock();
        for t in types {
            for o in &mut t.offerings {
                let key = (t.name.clone(), o.zone.clone(), o.capacity_type);
                if until.get(&key).is_some_and(|u| *u > now) {
                    o.available = false;
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<OfferingKey, Instant>> {
        // Every update is one insert: a panic elsewhere cannot leave it half-written.
        self.until.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// True when the type's well-known labels meet `requirements` (zone, capacity
/// type and labels the type does not define are for offerings and NodePools).
pub fn type_matches(t: &InstanceType, requirements: &Requirements) -> bool {
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

/// True when the offering's zone and capacity type meet `requirements`.
pub fn offering_allowed(o: &Offering, requirements: &Requirements) -> bool {
    requirements
        .get(labels::ZONE)
        .is_none_or(|r| r.has(&o.zone))
        && requirements
            .get(labels::CAPACITY_TYPE)
            .is_none_or(|r| r.has(o.capacity_type.label()))
}

/// The NodeClaim's requirements, or an error naming it.
pub fn claim_requirements(claim: &NodeClaim) -> Result<Requirements, CloudError> {
    Requirements::from_api(&claim.spec.template.requirements).map_err(|e| {
        CloudError::Invalid(format!(
            "NodeClaim {}: {e}",
            claim.metadata.name.as_deref().unwrap_or_default()
        ))
    })
}

/// Every offering of `types` the claim allows, in the order a launch tries them: reserved,
/// spot, then on-demand (upstream's order), cheapest first within each. Errors when the claim allows nothing that exists.
pub fn launch_choices<'a>(
    claim: &NodeClaim,
    types: impl IntoIterator<Item = &'a InstanceType>,
) -> Result<Vec<(&'a InstanceType, &'a Offering)>, CloudError> {
    let requirements = claim_requirements(claim)?;
    let mut choices: Vec<(&InstanceType, &Offering)> = types
        .into_iter()
        .filter(|t| type_matches(t, &requirements))
        .flat_map(|t| t.offerings.iter().map(move |o| (t, o)))
        .filter(|(_, o)| offering_allowed(o, &requirements))
        .collect();
    if choices.is_empty() {
        return Err(CloudError::NoCompatibleOffering(format!(
            "NodeClaim {} allows no instance type, zone and capacity type on sale",
            claim.metadata.name.as_deref().unwrap_or_default()
        )));
    }
    choices.sort_by(|a, b| {
        a.1.capacity_type
            .cmp(&b.1.capacity_type)
            .then(a.1.price.total_cmp(&b.1.price))
            .then_with(|| a.0.name.cmp(&b.0.name))
            .then_with(|| a.1.zone.cmp(&b.1.zone))
    });
    Ok(choices)
}

/// The tags every instance (and its volumes and network interfaces) carries,
/// so it can be found and cleaned up: cluster ownership, NodePool, NodeClaim
/// and EC2NodeClass, after the NodeClass's own tags (ours win). `Name` is
/// not among them: as upstream, the tagging controller names the instance
/// after its node once it registers, unless the NodeClass's tags name it.
pub fn instance_tags(
    cluster: &str,
    claim: &NodeClaim,
    class_tags: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let name = claim.metadata.name.clone().unwrap_or_default();
    let pool = claim
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::NODEPOOL))
        .cloned()
        .unwrap_or_default();
    let mut tags = class_tags.cloned().unwrap_or_default();
    tags.extend([
        (cluster_tag(cluster), "owned".to_string()),
        (EKS_CLUSTER_NAME_TAG.to_string(), cluster.to_string()),
        (labels::NODEPOOL.to_string(), pool.clone()),
        (labels::NODECLAIM.to_string(), name.clone()),
        (
            labels::EC2NODECLASS.to_string(),
            claim.spec.template.node_class_ref.name.clone(),
        ),
    ]);
    tags
}

/// `kubernetes.io/cluster/<cluster>`, valued `owned` on everything we create.
pub fn cluster_tag(cluster: &str) -> String {
    format!("kubernetes.io/cluster/{cluster}")
}

/// The EKS cluster-name tag, valued with the cluster name.
pub const EKS_CLUSTER_NAME_TAG: &str = "eks:eks-cluster-name";

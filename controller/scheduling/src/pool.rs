//! A NodePool as the solver sees it: its requirements and taints, its limits
//! less what it already uses, and every instance type that can serve it, with
//! allocatable less DaemonSet overhead and the offerings its requirements allow.

use super::resources::Resources;
use k8s_openapi::api::core::v1::Taint;
use karpenter_api::requirements::{Requirement, Requirements};
use karpenter_api::v1::NodePool;
use karpenter_catalog::{CapacityType, Catalog, InstanceType, KubeletSettings, Offering};
use std::collections::{BTreeMap, BTreeSet};

/// An instance type a pool may launch.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Instance type name.
    pub name: String,
    /// Its well-known labels (zone and capacity type come from offerings).
    pub labels: BTreeMap<String, String>,
    /// What pods may use: allocatable less the pool's DaemonSet overhead.
    pub allocatable: Resources,
    /// Full capacity (what counts against NodePool limits).
    pub capacity: Resources,
    /// Available offerings the pool's requirements allow, cheapest first.
    pub offerings: Vec<Offering>,
}

impl Candidate {
    /// The cheapest offering that satisfies `requirements` (zone and capacity type).
    pub fn cheapest(&self, requirements: &Requirements) -> Option<&Offering> {
        OfferingFilter::of(requirements).cheapest(self)
    }

    /// The lowest price of any of its offerings (a floor under any requirements).
    pub fn lowest_price(&self) -> f64 {
        self.offerings
            .iter()
            .map(|o| o.price)
            .fold(f64::INFINITY, f64::min)
    }

    /// True when the type's labels and some offering satisfy `requirements`.
    pub fn satisfies(&self, requirements: &Requirements) -> bool {
        requirements.iter().all(|r| match r.key() {
            karpenter_api::labels::ZONE
            | karpenter_api::labels::CAPACITY_TYPE
            | karpenter_api::labels::NODEPOOL
            | karpenter_api::labels::HOSTNAME => true,
            // Custom labels come from the pool's template, not from the instance type.
            key if !karpenter_api::labels::is_well_known(key) => true,
            key => match self.labels.get(key) {
                Some(value) => r.has(value),
                None => matches!(r.operator(), "NotIn" | "DoesNotExist"),
            },
        }) && self.cheapest(requirements).is_some()
    }
}

/// The zone and capacity-type requirements offerings must meet, looked up once
/// for checking many candidates.
#[derive(Clone, Copy)]
pub struct OfferingFilter<'a> {
    zone: Option<&'a Requirement>,
    capacity_type: Option<&'a Requirement>,
}

impl<'a> OfferingFilter<'a> {
    /// The offering requirements within `requirements`.
    pub fn of(requirements: &'a Requirements) -> Self {
        OfferingFilter {
            zone: requirements.get(karpenter_api::labels::ZONE),
            capacity_type: requirements.get(karpenter_api::labels::CAPACITY_TYPE),
        }
    }

    /// The cheapest offering of `candidate` that meets them.
    pub fn cheapest(self, candidate: &Candidate) -> Option<&Offering> {
        candidate.offerings.iter().find(|o| {
            self.zone.is_none_or(|r| r.has(&o.zone))
                && self
                    .capacity_type
                    .is_none_or(|r| r.has(o.capacity_type.label()))
        })
    }
}

/// A NodePool ready for solving.
#[derive(Debug, Clone)]
pub struct Pool {
    /// NodePool name.
    pub name: String,
    /// Weight (higher is tried first).
    pub weight: i32,
    /// Template requirements and labels.
    pub requirements: Requirements,
    /// Taints of new nodes (startup taints are ignored, as upstream does).
    pub taints: Vec<Taint>,
    /// Resources the pool may still add (`i64::MAX` where unlimited).
    pub remaining: Resources,
    /// Instance types that can serve the pool, by [`Candidate::lowest_price`].
    pub candidates: Vec<Candidate>,
}

fn unlimited() -> Resources {
    Resources {
        cpu_milli: i64::MAX,
        memory: i64::MAX,
        storage: i64::MAX,
        pods: i64::MAX,
        extended: BTreeMap::new(),
    }
}

/// A NodePool the engine cannot use (a malformed requirement or limit);
/// fixed only by editing the NodePool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NodePool {pool}: {reason}")]
pub struct InvalidPool {
    /// The NodePool's name.
    pub pool: String,
    /// The field and the rule it breaks.
    pub reason: String,
}

impl Pool {
    /// The price of the cheapest node of this pool that holds `requests` alone
    /// under one of `terms` (infinite when none): what a pod pays without company.
    pub fn alone_price(&self, terms: &[Requirements], requests: &Resources) -> f64 {
        self.candidates
            .iter()
            .filter(|c| requests.fits_in(&c.allocatable))
            .filter_map(|c| {
                terms
                    .iter()
                    .filter(|t| c.satisfies(t))
                    .filter_map(|t| c.cheapest(t))
                    .map(|o| o.price)
                    .reduce(f64::min)
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// The values label `key` can take on this pool's nodes (topology domains).
    pub fn domains(&self, key: &str) -> BTreeSet<String> {
        let allowed = |v: &str| self.requirements.get(key).is_none_or(|r| r.has(v));
        let offered: BTreeSet<String> = match key {
            karpenter_api::labels::ZONE => self
                .candidates
                .iter()
                .flat_map(|c| c.offerings.iter().map(|o| o.zone.clone()))
                .collect(),
            karpenter_api::labels::CAPACITY_TYPE => self
                .candidates
                .iter()
                .flat_map(|c| {
                    c.offerings
                        .iter()
                        .map(|o| o.capacity_type.label().to_string())
                })
                .collect(),
            _ => match self
                .requirements
                .get(key)
                .filter(|r| r.operator() == "In")
                .and_then(|r| r.values())
            {
                Some(values) => values.clone(),
                None => self
                    .candidates
                    .iter()
                    .filter_map(|c| c.labels.get(key).cloned())
                    .collect(),
            },
        };
        offered.into_iter().filter(|v| allowed(v)).collect()
    }

    /// Prepares a NodePool: `in_use` is the capacity of its existing and in-flight
    /// nodes; `daemon_overhead` what its DaemonSets request on every node.
    pub fn new(
        pool: &NodePool,
        catalog: &Catalog,
        kubelet: &KubeletSettings,
        daemon_overhead: &Resources,
        in_use: &Resources,
    ) -> Result<Self, InvalidPool> {
        Self::prepare(pool, catalog, kubelet, daemon_overhead, in_use).map_err(|reason| {
            InvalidPool {
                pool: pool.metadata.name.clone().unwrap_or_default(),
                reason,
            }
        })
    }

    fn prepare(
        pool: &NodePool,
        catalog: &Catalog,
        kubelet: &KubeletSettings,
        daemon_overhead: &Resources,
        in_use: &Resources,
    ) -> Result<Self, String> {
        let name = pool.metadata.name.clone().unwrap_or_default();
        let template = &pool.spec.template;
        let mut requirements =
            Requirements::from_api(&template.spec.requirements).map_err(String::from)?;
        let labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        requirements.extend(&Requirements::from_labels(&labels));
        requirements
            .add(Requirement::new(karpenter_api::labels::NODEPOOL, "In", &[&name]).expect("In"));

        let mut remaining = unlimited();
        for (resource, q) in pool.spec.limits.iter().flatten() {
            let limit: karpenter_api::quantity::Quantity =
                q.0.parse()
                    .map_err(|e| format!("limits[{resource}]: {e}"))?;
            remaining.set(resource, &limit);
        }
        remaining.cpu_milli = remaining.cpu_milli.saturating_sub(in_use.cpu_milli);
        remaining.memory = remaining.memory.saturating_sub(in_use.memory);
        remaining.storage = remaining.storage.saturating_sub(in_use.storage);
        remaining.pods = remaining.pods.saturating_sub(in_use.pods);
        for (resource, amount) in &in_use.extended {
            if let Some(limit) = remaining.extended.get_mut(resource) {
                *limit -= amount;
            }
        }

        let mut candidates: Vec<Candidate> = catalog
            .iter()
            .filter_map(|t| candidate(t, &requirements, kubelet, daemon_overhead))
            .collect();
        candidates.sort_by(|a, b| {
            a.lowest_price()
                .total_cmp(&b.lowest_price())
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(Pool {
            name,
            weight: pool.spec.weight.unwrap_or(0),
            requirements,
            taints: template.spec.taints.clone().unwrap_or_default(),
            remaining,
            candidates,
        })
    }
}

fn candidate(
    t: &InstanceType,
    pool: &Requirements,
    kubelet: &KubeletSettings,
    overhead: &Resources,
) -> Option<Candidate> {
    let labels = t.labels();
    let zone = pool.get(karpenter_api::labels::ZONE);
    let capacity_type = pool.get(karpenter_api::labels::CAPACITY_TYPE);
    let mut offerings: Vec<Offering> = t
        .offerings
        .iter()
        .filter(|o| o.available)
        .filter(|o| zone.is_none_or(|r| r.has(&o.zone)))
        .filter(|o| capacity_type.is_none_or(|r| r.has(o.capacity_type.label())))
        .cloned()
        .collect();
    if offerings.is_empty() {
        return None;
    }
    // Reserved first, then by price (spot is cheaper, so it comes before on-demand).
    offerings.sort_by(|a, b| {
        (a.capacity_type != CapacityType::Reserved)
            .cmp(&(b.capacity_type != CapacityType::Reserved))
            .then(a.price.total_cmp(&b.price))
    });
    let compatible = pool.iter().all(|r| match r.key() {
        karpenter_api::labels::ZONE
        | karpenter_api::labels::CAPACITY_TYPE
        | karpenter_api::labels::NODEPOOL => true,
        key => match labels.get(key) {
            Some(value) => r.has(value),
            None => {
                matches!(r.operator(), "NotIn" | "DoesNotExist")
                    || !karpenter_api::labels::is_well_known(key)
            }
        },
    });
    if !compatible {
        return None;
    }
    let to_resources = |list: karpenter_catalog::Resources| Resources::from_list(list.iter());
    let mut allocatable = to_resources(t.allocatable(kubelet));
    allocatable.cpu_milli -= overhead.cpu_milli;
    allocatable.memory -= overhead.memory;
    allocatable.storage -= overhead.storage;
    allocatable.pods -= overhead.pods;
    for (name, amount) in &overhead.extended {
        *allocatable.extended.entry(name.clone()).or_insert(0) -= amount;
    }
    if allocatable.cpu_milli <= 0 || allocatable.memory <= 0 || allocatable.pods <= 0 {
        return None;
    }
    Some(Candidate {
        name: t.name.clone(),
        labels,
        allocatable,
        capacity: to_resources(t.capacity(kubelet)),
        offerings,
    })
}

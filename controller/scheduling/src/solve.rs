//! The solver: places pending pods on existing nodes, then on planned
//! NodeClaims, then on new NodeClaims from the highest-weight NodePool that can
//! take them, largest pods first; explains every pod it cannot place.

use super::claim::{Attempt, LOOKAHEAD, MAX_INSTANCE_TYPES, PlannedClaim};
use super::pod::{PodInfo, Preference};
use super::pool::{OfferingFilter, Pool};
use super::resources::Resources;
use super::topology::{Labels, Needs, Place, Topology};
use k8s_openapi::api::core::v1::Taint;
use karpenter_api::requirements::{Requirement, Requirements};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// A node that exists or is being launched, and what is left on it.
#[derive(Debug, Clone)]
pub struct ExistingNode {
    /// Node (or NodeClaim) name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its taints (startup taints excluded).
    pub taints: Vec<Taint>,
    /// Allocatable less what its pods request.
    pub available: Resources,
    /// Host ports its pods bind.
    pub host_ports: Vec<String>,
    /// The pods running on it (topology spreads and affinities count them).
    pub pods: Vec<PodInfo>,
}

/// A new NodeClaim to create.
#[derive(Debug, Clone)]
pub struct NewClaim {
    /// NodePool name.
    pub pool: String,
    /// Pods planned onto it (`namespace/name`).
    pub pods: Vec<String>,
    /// Requirements, including `node.kubernetes.io/instance-type In [options]`.
    pub requirements: Requirements,
    /// Instance types that hold every pod, cheapest first (at most 60).
    pub instance_types: Vec<String>,
    /// Price per hour of the cheapest option's cheapest allowed offering.
    pub price: f64,
    /// What its pods request (plus DaemonSet overhead, counted in allocatable).
    pub requests: Resources,
}

/// What the solver decided.
#[derive(Debug, Clone, Default)]
pub struct Solution {
    /// Pods that fit on existing or launching nodes: (`namespace/name`, node).
    pub nominations: Vec<(String, String)>,
    /// New NodeClaims.
    pub claims: Vec<NewClaim>,
    /// Pods that cannot be placed, and why.
    pub unschedulable: Vec<(String, String)>,
}

impl Solution {
    /// Hourly price of every new NodeClaim.
    pub fn hourly_cost(&self) -> f64 {
        self.claims.iter().map(|c| c.price).sum()
    }
}

/// What is left on an existing node as the solver places pods on it (the
/// node itself is borrowed, never copied: disruption solves against every
/// node many times a pass).
struct Left {
    available: Resources,
    host_ports: Vec<String>,
}

fn node_accepts(node: &ExistingNode, left: &Left, pod: &PodInfo, attempt: &Attempt) -> bool {
    pod.requests.fits_in(&left.available)
        && pod.tolerates(&node.taints, attempt.prefer_ok)
        && !pod.host_ports.iter().any(|p| left.host_ports.contains(p))
        && attempt.terms.iter().any(|term| term.matches(&node.labels))
}

/// Whether a claim has room for a pod size ([`PlannedClaim::has_room_for`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Room {
    Unknown,
    Yes,
    No,
}

/// [`PlannedClaim::has_room_for`] answers for one pod size, budget and
/// group, kept while pods of that size are placed (pods come largest first,
/// so sizes repeat in runs); a claim's answer is forgotten when it changes.
#[derive(Default)]
struct RoomCache {
    /// CPU, memory, group and per-pool budgets (bits) the answers are for.
    size: (i64, i64, usize, Vec<Vec<u64>>),
    known: Vec<Room>,
}

impl RoomCache {
    fn reset_for(
        &mut self,
        requests: &Resources,
        (budgets, group): (&[Vec<f64>], usize),
        claims: usize,
    ) {
        let size = (
            requests.cpu_milli,
            requests.memory,
            group,
            budgets
                .iter()
                .map(|b| b.iter().map(|p| p.to_bits()).collect())
                .collect(),
        );
        if size != self.size {
            self.size = size;
            self.known.clear();
        }
        self.known.resize(claims, Room::Unknown);
    }
}

/// What makes pods alike for pricing: node requirements and requests
/// (a Deployment's replicas share it).
fn kind_of(pod: &PodInfo) -> String {
    format!("{:?}{:?}", pod.terms, pod.requests)
}

/// Per pod, in placement `order`: how many pods of its kind are placed from
/// it on, itself included, capped at [`LOOKAHEAD`].
fn groups(pods: &[PodInfo], order: &[usize]) -> Vec<usize> {
    let mut left: HashMap<String, usize> = HashMap::new();
    let mut group = vec![1; pods.len()];
    for &index in order.iter().rev() {
        let count = left.entry(kind_of(&pods[index])).or_default();
        *count += 1;
        group[index] = (*count).min(LOOKAHEAD);
    }
    group
}

/// Per pod, per pool, for `k` = 1 ..= its group: the price of a node of
/// their own for `k` pods of its kind (shared between pods of one kind).
fn alone_prices(pods: &[PodInfo], pools: &[Pool], group: &[usize]) -> Vec<Arc<[Vec<f64>]>> {
    let mut seen: HashMap<String, Arc<[Vec<f64>]>> = HashMap::new();
    pods.iter()
        .zip(group)
        .map(|(pod, &group)| {
            seen.entry(kind_of(pod))
                .or_insert_with(|| {
                    // The first pod of a kind has the largest group.
                    pools
                        .iter()
                        .map(|p| {
                            let one = p.alone_price(&pod.terms, &pod.requests);
                            (1..=group).map(|k| one * k as f64).collect()
                        })
                        .collect()
                })
                .clone()
        })
        .collect()
}

/// Solves one batch: `pods` pending, `nodes` existing or in flight, `pools` to launch from.
pub fn solve(pods: &[PodInfo], nodes: Vec<ExistingNode>, pools: Vec<Pool>) -> Solution {
    let nodes: Vec<&ExistingNode> = nodes.iter().collect();
    solve_on(pods, &nodes, pools)
}

/// [`solve`] on borrowed nodes.
pub fn solve_on(pods: &[PodInfo], nodes: &[&ExistingNode], mut pools: Vec<Pool>) -> Solution {
    let mut order: Vec<usize> = (0..pods.len()).collect();
    // Largest first: extended resources (GPUs), then CPU, then memory.
    order.sort_by(|&a, &b| {
        let (pa, pb) = (&pods[a].requests, &pods[b].requests);
        let ext = |r: &Resources| r.extended.values().sum::<i64>();
        (ext(pb), pb.cpu_milli, pb.memory)
            .cmp(&(ext(pa), pa.cpu_milli, pa.memory))
            .then(a.cmp(&b))
    });
    pools.sort_by(|a, b| b.weight.cmp(&a.weight).then_with(|| a.name.cmp(&b.name)));
    let topology = Topology::new(pods, nodes, |key| {
        let mut domains: BTreeSet<String> = BTreeSet::new();
        for pool in &pools {
            domains.extend(pool.domains(key));
        }
        domains
    });
    let prefer_taints = nodes
        .iter()
        .flat_map(|n| n.taints.iter())
        .chain(pools.iter().flat_map(|p| p.taints.iter()))
        .any(|t| t.effect == "PreferNoSchedule");
    let group = groups(pods, &order);
    let alone = alone_prices(pods, &pools, &group);
    let left = nodes
        .iter()
        .map(|n| Left {
            available: n.available.clone(),
            host_ports: n.host_ports.clone(),
        })
        .collect();
    let mut solver = Solver {
        pods,
        nodes,
        left,
        pools,
        claims: Vec::new(),
        room: RoomCache::default(),
        topology,
        prefer_taints,
        alone,
        group,
        solution: Solution::default(),
    };
    // Pods that fail are retried while others get placed: a pod's affinity
    // may need a pod that sorts after it.
    let mut queue = order;
    loop {
        let mut failed = Vec::new();
        for &index in &queue {
            if let Err(why) = solver.place(index) {
                failed.push((index, why));
            }
        }
        if failed.is_empty() || failed.len() == queue.len() {
            for (index, why) in failed {
                solver
                    .solution
                    .unschedulable
                    .push((pods[index].key.clone(), why));
            }
            break;
        }
        queue = failed.into_iter().map(|(index, _)| index).collect();
    }
    solver.finish()
}

struct Solver<'a> {
    pods: &'a [PodInfo],
    nodes: &'a [&'a ExistingNode],
    /// Per node, what is left on it.
    left: Vec<Left>,
    pools: Vec<Pool>,
    claims: Vec<PlannedClaim>,
    /// Which claims have room for the pod size being placed.
    room: RoomCache,
    topology: Topology,
    /// Whether any node or pool has a `PreferNoSchedule` taint (else the last relaxation is moot).
    prefer_taints: bool,
    /// Per pod, per pool, per `k`: what a node of their own would cost `k`
    /// pods of its kind.
    alone: Vec<Arc<[Vec<f64>]>>,
    /// Per pod: its group (see [`Attempt::group`]).
    group: Vec<usize>,
    solution: Solution,
}

impl Solver<'_> {
    /// Places one pod, giving up its preferences one at a time until it fits.
    fn place(&mut self, index: usize) -> Result<(), String> {
        let pod = &self.pods[index];
        let mut levels = pod.preferences.len();
        if !self.prefer_taints {
            levels -= usize::from(matches!(
                pod.preferences.last(),
                Some(Preference::AvoidPreferNoSchedule)
            ));
        }
        let mut why = String::new();
        for relaxed in 0..=levels {
            match self.place_relaxed(index, relaxed) {
                Ok(()) => return Ok(()),
                Err(reason) => why = reason,
            }
        }
        Err(why)
    }

    fn place_relaxed(&mut self, index: usize, relaxed: usize) -> Result<(), String> {
        let pod = &self.pods[index];
        let needs = if self.topology.involves(index) {
            self.topology.needs(index, pod, relaxed)?
        } else {
            Needs::default()
        };
        let node_preference = pod.preferences.iter().skip(relaxed).find_map(|p| match p {
            Preference::NodeAffinity(requirements) => Some(requirements),
            _ => None,
        });
        let terms: Cow<[Requirements]> =
            if needs.requirements.iter().next().is_none() && node_preference.is_none() {
                Cow::Borrowed(&pod.terms)
            } else {
                Cow::Owned(
                    pod.terms
                        .iter()
                        .map(|term| {
                            let mut term = term.clone();
                            term.extend(&needs.requirements);
                            if let Some(preferred) = node_preference {
                                term.extend(preferred);
                            }
                            term
                        })
                        .collect(),
                )
            };
        let alone = self.alone[index].clone();
        let attempt = Attempt {
            terms,
            collapse: &needs.collapse,
            prefer_ok: relaxed >= pod.preferences.len(),
            alone: &alone,
            group: self.group[index],
        };

        for (n, (node, left)) in self.nodes.iter().zip(&mut self.left).enumerate() {
            let host = self.topology.node_host(n);
            if !node_accepts(node, left, pod, &attempt) || !self.topology.host_allows(&needs, host)
            {
                continue;
            }
            left.available.subtract(&pod.requests);
            left.host_ports.extend(pod.host_ports.iter().cloned());
            let place = Place {
                host,
                labels: Labels::Node(&node.labels),
                taints: &node.taints,
            };
            self.topology.record(index, &place);
            self.solution
                .nominations
                .push((pod.key.clone(), node.name.clone()));
            return Ok(());
        }
        if self.onto_claim(index, &attempt, &needs) {
            return Ok(());
        }
        let host = self
            .topology
            .id(&format!("\u{0}claim-{}", self.claims.len()));
        let mut reasons = Vec::new();
        if self.topology.host_allows(&needs, host) {
            for (p, pool) in self.pools.iter_mut().enumerate() {
                match new_claim(pool, (p, host), (index, pod), &attempt) {
                    Ok(claim) => {
                        charge_limits(pool, &claim);
                        let place = Place {
                            host,
                            labels: Labels::Claim(&claim.requirements),
                            taints: &pool.taints,
                        };
                        self.topology.record(index, &place);
                        self.claims.push(claim);
                        self.room.known.push(Room::Unknown);
                        return Ok(());
                    }
                    Err(reason) => reasons.push(reason),
                }
            }
        } else {
            reasons.push("its topology rules rule out a new node".to_string());
        }
        // No new node will do: grow a planned one whatever it costs (pod
        // affinity to a pod on it, or limits reached).
        let unlimited = vec![vec![f64::INFINITY]; self.pools.len()];
        let last_resort = Attempt {
            alone: &unlimited,
            ..attempt
        };
        if self.onto_claim(index, &last_resort, &needs) {
            return Ok(());
        }
        Err(if reasons.is_empty() {
            "no NodePool exists".to_string()
        } else {
            reasons.join("; ")
        })
    }

    /// Plans pod `index` onto the first planned claim that takes it.
    fn onto_claim(&mut self, index: usize, attempt: &Attempt, needs: &Needs) -> bool {
        let pod = &self.pods[index];
        self.room.reset_for(
            &pod.requests,
            (attempt.alone, attempt.group),
            self.claims.len(),
        );
        for (c, claim) in self.claims.iter_mut().enumerate().rev() {
            let pool = &self.pools[claim.pool];
            let room = match self.room.known[c] {
                Room::Unknown => {
                    let fits = claim.has_room_for(&pod.requests, attempt.fresh(claim.pool));
                    self.room.known[c] = if fits { Room::Yes } else { Room::No };
                    fits
                }
                known => known == Room::Yes,
            };
            if room
                && self.topology.host_allows(needs, claim.host)
                && claim.try_add(pool, (index, pod), attempt)
            {
                self.room.known[c] = Room::Unknown;
                let place = Place {
                    host: claim.host,
                    labels: Labels::Claim(&claim.requirements),
                    taints: &pool.taints,
                };
                self.topology.record(index, &place);
                return true;
            }
        }
        false
    }

    /// Turns the planned claims into NodeClaims, instance types cheapest first.
    fn finish(mut self) -> Solution {
        for claim in std::mem::take(&mut self.claims) {
            let pool = &self.pools[claim.pool];
            let offerings = OfferingFilter::of(&claim.requirements);
            let mut options: Vec<(f64, usize)> = claim
                .options
                .iter()
                .filter_map(|&i| Some((offerings.cheapest(&pool.candidates[i])?.price, i)))
                .collect();
            options.sort_by(|a, b| a.0.total_cmp(&b.0));
            options.truncate(MAX_INSTANCE_TYPES);
            let names: Vec<String> = options
                .iter()
                .map(|&(_, i)| pool.candidates[i].name.clone())
                .collect();
            let mut requirements = claim.requirements.clone();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            requirements.add(
                Requirement::new(karpenter_api::labels::INSTANCE_TYPE, "In", &refs).expect("In"),
            );
            self.solution.claims.push(NewClaim {
                pool: pool.name.clone(),
                pods: claim
                    .pods
                    .iter()
                    .map(|&i| self.pods[i].key.clone())
                    .collect(),
                price: options.first().map_or(0.0, |&(price, _)| price),
                requests: claim.requests,
                requirements,
                instance_types: names,
            });
        }
        self.solution
    }
}

/// A new claim on `pool` holding `pod`, or why the pool cannot take it.
fn new_claim(
    pool: &Pool,
    (pool_index, host): (usize, u32),
    (pod_index, pod): (usize, &PodInfo),
    attempt: &Attempt,
) -> Result<PlannedClaim, String> {
    let name = &pool.name;
    if let Some(taint) = pool
        .taints
        .iter()
        .find(|t| !pod.tolerates(std::slice::from_ref(*t), attempt.prefer_ok))
    {
        return Err(format!(
            "NodePool {name}: the pod does not tolerate taint {}={}:{}",
            taint.key,
            taint.value.as_deref().unwrap_or(""),
            taint.effect
        ));
    }
    // The first OR-ed node-affinity term the pool can serve wins.
    let mut first_error = None;
    for term in attempt.terms.iter() {
        let single = Attempt {
            terms: Cow::Borrowed(std::slice::from_ref(term)),
            ..*attempt
        };
        match claim_for_term(pool, (pool_index, host), (pod_index, pod), &single) {
            Ok(claim) => return Ok(claim),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error
        .unwrap_or_else(|| format!("NodePool {name}: the pod has no node-affinity term")))
}

/// A new claim for one of the pod's node-affinity terms.
fn claim_for_term(
    pool: &Pool,
    (pool_index, host): (usize, u32),
    (pod_index, pod): (usize, &PodInfo),
    attempt: &Attempt,
) -> Result<PlannedClaim, String> {
    let name = &pool.name;
    let term = &attempt.terms[0];
    pool.requirements
        .compatible(term)
        .map_err(|why| format!("NodePool {name}: {why}"))?;
    let mut requirements = pool.requirements.clone();
    requirements.extend(term);
    let within_limits = |i: &usize| pool.candidates[*i].capacity.within_limits(&pool.remaining);
    let matching: Vec<usize> = (0..pool.candidates.len())
        .filter(|&i| pool.candidates[i].satisfies(&requirements))
        .collect();
    if matching.is_empty() {
        return Err(format!(
            "NodePool {name}: no instance type matches the requirements{}",
            in_zones(&requirements)
        ));
    }
    let big_enough: Vec<usize> = matching
        .iter()
        .copied()
        .filter(|&i| pod.requests.fits_in(&pool.candidates[i].allocatable))
        .collect();
    if big_enough.is_empty() {
        let largest = matching
            .iter()
            .max_by_key(|&&i| {
                (
                    pool.candidates[i].allocatable.cpu_milli,
                    pool.candidates[i].allocatable.memory,
                )
            })
            .expect("non-empty");
        let short = pod
            .requests
            .first_shortfall(&pool.candidates[*largest].allocatable)
            .unwrap_or_default();
        let amount = amount_of(&pod.requests, &short);
        return Err(format!(
            "NodePool {name}: no instance type offers {amount} {short}{}",
            in_zones(&requirements)
        ));
    }
    let options: Vec<usize> = big_enough.into_iter().filter(within_limits).collect();
    if options.is_empty() {
        return Err(format!(
            "NodePool {name}: launching a node would exceed the pool's limits"
        ));
    }
    let mut claim = PlannedClaim::new(pool_index, pool, host, options);
    if claim.try_add(pool, (pod_index, pod), attempt) {
        Ok(claim)
    } else {
        Err(format!(
            "NodePool {name}: too few instance types to satisfy minValues"
        ))
    }
}

fn amount_of(requests: &Resources, resource: &str) -> String {
    match resource {
        "cpu" => format!("{}m", requests.cpu_milli),
        "memory" => format!("{}Mi", requests.memory / (1 << 20)),
        "ephemeral-storage" => format!("{}Mi", requests.storage / (1 << 20)),
        "pods" => requests.pods.to_string(),
        other => requests
            .extended
            .get(other)
            .copied()
            .unwrap_or(0)
            .to_string(),
    }
}

fn in_zones(requirements: &Requirements) -> String {
    requirements
        .get(karpenter_api::labels::ZONE)
        .and_then(|r| r.values())
        .map(|zones| {
            format!(
                " in zones {}",
                zones.iter().cloned().collect::<Vec<_>>().join(",")
            )
        })
        .unwrap_or_default()
}

/// Subtracts the largest capacity among the claim's options from the pool's
/// remaining limits (conservative, as upstream does).
fn charge_limits(pool: &mut Pool, claim: &PlannedClaim) {
    let largest = claim
        .options
        .iter()
        .map(|&i| &pool.candidates[i].capacity)
        .fold(Resources::default(), |mut acc, c| {
            acc.max(c);
            acc
        });
    pool.remaining.cpu_milli = pool.remaining.cpu_milli.saturating_sub(largest.cpu_milli);
    pool.remaining.memory = pool.remaining.memory.saturating_sub(largest.memory);
    pool.remaining.storage = pool.remaining.storage.saturating_sub(largest.storage);
    pool.remaining.pods = pool.remaining.pods.saturating_sub(largest.pods);
    for (name, amount) in &largest.extended {
        if let Some(limit) = pool.remaining.extended.get_mut(name) {
            *limit -= amount;
        }
    }
}

//! A NodeClaim being planned: the pods it will carry, the requirements they
//! add up to, and the instance types that can still hold them all.

use super::pod::PodInfo;
use super::pool::{Candidate, OfferingFilter, Pool};
use super::resources::Resources;
use karpenter_api::requirements::{Requirement, Requirements};
use std::borrow::Cow;

/// Instance types carried to launch, cheapest first (upstream's limit).
pub const MAX_INSTANCE_TYPES: usize = 60;

/// What one placement attempt of a pod asks of a node, beyond its resources.
pub struct Attempt<'a> {
    /// Node requirements, OR-ed (node affinity terms with preferences and topology applied).
    pub terms: Cow<'a, [Requirements]>,
    /// Keys to narrow to a single domain, each with its domains best first.
    pub collapse: &'a [(String, Vec<String>)],
    /// Whether `PreferNoSchedule` taints may be ignored.
    pub prefer_ok: bool,
    /// Per pool, for `k` = 1, 2, ...: what a node of their own would cost `k`
    /// pods like this one (see [`PlannedClaim::try_add`]).
    pub alone: &'a [Vec<f64>],
    /// How many pods like this one (same requests and node requirements) are
    /// still to be placed, itself included, capped at [`LOOKAHEAD`]: a claim
    /// may grow for them together.
    pub group: usize,
}

impl Attempt<'_> {
    /// For `k` = 1 ..= group: what `k` pods like this one would cost on a
    /// node of their own from `pool`.
    pub fn fresh(&self, pool: usize) -> &[f64] {
        let prices = &self.alone[pool];
        &prices[..self.group.clamp(1, prices.len())]
    }
}

/// The most pods of one kind a claim grows for at once (see [`PlannedClaim::try_add`]).
pub const LOOKAHEAD: usize = 8;

/// A planned new node.
#[derive(Debug, Clone)]
pub struct PlannedClaim {
    /// Index of its pool in the solver's pool list.
    pub pool: usize,
    /// Its hostname domain (topology).
    pub host: u32,
    /// Requirements of the pool intersected with those of its pods.
    pub requirements: Requirements,
    /// Pods planned onto it (indices into the solver's pod list).
    pub pods: Vec<usize>,
    /// Their requests, summed.
    pub requests: Resources,
    /// Candidates (indices into the pool's) that hold every pod, cheapest first.
    pub options: Vec<usize>,
    /// Host ports in use.
    pub host_ports: Vec<String>,
    /// Price per hour of its cheapest option.
    pub price: f64,
    /// Options by price, each step with the most CPU and memory any option up
    /// to that price has: a quick bound on what growing can hold.
    pub ladder: Vec<(f64, i64, i64)>,
}

impl PlannedClaim {
    /// An empty claim on `pool` limited to `options`.
    pub fn new(pool_index: usize, pool: &Pool, host: u32, options: Vec<usize>) -> Self {
        // The first pod's `try_add` sets the price and the ladder.
        PlannedClaim {
            pool: pool_index,
            host,
            requirements: pool.requirements.clone(),
            pods: Vec::new(),
            requests: Resources::default(),
            ladder: Vec::new(),
            options,
            host_ports: Vec::new(),
            price: 0.0,
        }
    }

    /// True when, for some `k`, `k` pods of this size might fit if the
    /// claim's price may rise by `fresh[k - 1]`.
    pub fn has_room_for(&self, requests: &Resources, fresh: &[f64]) -> bool {
        let ahead = if self.alike(requests) { fresh.len() } else { 1 };
        fresh[..ahead].iter().enumerate().any(|(i, budget)| {
            let k = i as i64 + 1;
            self.ladder_holds(
                self.requests.cpu_milli + k * requests.cpu_milli,
                self.requests.memory + k * requests.memory,
                self.price + budget + 1e-9,
            )
        })
    }

    /// Whether every pod on the claim asks for `one` (only such a claim grows
    /// ahead of the pods like it: in a mixed claim the others rarely fill
    /// the room).
    fn alike(&self, one: &Resources) -> bool {
        let n = self.pods.len() as i64;
        self.requests.cpu_milli == n * one.cpu_milli && self.requests.memory == n * one.memory
    }

    /// Whether some option priced up to `limit` might hold `cpu_milli` and
    /// `memory` (a quick bound from the ladder).
    fn ladder_holds(&self, cpu_milli: i64, memory: i64, limit: f64) -> bool {
        let reachable = self.ladder.partition_point(|(price, _, _)| *price <= limit);
        reachable > 0 && {
            let (_, cpu, mem) = self.ladder[reachable - 1];
            cpu_milli <= cpu && memory <= mem
        }
    }

    /// Plans `pod` onto the claim if some instance type can still hold everything
    /// and `minValues` stay satisfiable, and the claim's price rises by no more
    /// than what a node of the pod's own would cost (`attempt.alone`): spare
    /// room is free, and a claim grows only while growing beats a separate node.
    /// Growth is judged for the pod's group (`attempt.group`): the pod joins if
    /// for some `k` the claim could take `k` such pods for no more than one
    /// node holding those `k` would cost, so a claim steps up to a bigger type
    /// that only pays off from the third pod on (the next `k - 1` then fill
    /// its spare room).
    /// That keeps plain pods from growing on-demand or GPU nodes, keeps pods that
    /// narrow a claim (on-demand only, one zone) from making it dearer for the
    /// rest, and keeps claims out of giant special-purpose types.
    /// Returns whether it did.
    pub fn try_add(
        &mut self,
        pool: &Pool,
        (pod_index, pod): (usize, &PodInfo),
        attempt: &Attempt,
    ) -> bool {
        if pod.host_ports.iter().any(|p| self.host_ports.contains(p))
            || !pod.tolerates(&pool.taints, attempt.prefer_ok)
        {
            return false;
        }
        let mut requests = self.requests.clone();
        requests.add(&pod.requests);
        let fresh = attempt.fresh(self.pool);
        for term in attempt.terms.iter() {
            if self.requirements.compatible(term).is_err() {
                continue;
            }
            // A term that adds nothing (no node selector or affinity) leaves the
            // options' requirements as they were: only resources need checking.
            let narrows = !term.iter().all(|r| {
                self.requirements
                    .get(r.key())
                    .is_some_and(|mine| mine == r || mine.within(r))
            });
            let base = if narrows {
                let mut requirements = self.requirements.clone();
                requirements.extend(term);
                Cow::Owned(requirements)
            } else {
                Cow::Borrowed(&self.requirements)
            };
            for (requirements, collapsed) in collapse(base, attempt.collapse) {
                let narrows = narrows || collapsed;
                let Some((options, price)) = self.admit(
                    pool,
                    (&requests, &pod.requests),
                    &requirements,
                    narrows,
                    fresh,
                ) else {
                    continue;
                };
                if narrows {
                    self.requirements = requirements.into_owned();
                }
                self.requests = requests;
                self.options = options;
                self.price = price;
                self.pods.push(pod_index);
                self.host_ports.extend(pod.host_ports.iter().cloned());
                // Options only drop out as the claim fills, so the old ladder
                // still bounds what it can hold; new requirements reprice it.
                if narrows || self.ladder.is_empty() {
                    self.ladder = ladder(&self.options, &self.requirements, pool);
                }
                return true;
            }
        }
        false
    }

    /// The options and price if the claim took `requests` (its own plus the
    /// pod's `one`) under `requirements`, when for some `k` its price would
    /// rise by at most `fresh[k - 1]` to take `k` such pods.
    fn admit(
        &self,
        pool: &Pool,
        (requests, one): (&Resources, &Resources),
        requirements: &Requirements,
        narrows: bool,
        fresh: &[f64],
    ) -> Option<(Vec<usize>, f64)> {
        let holds = |i: usize, requests: &Resources| {
            requests.fits_in(&pool.candidates[i].allocatable)
                && (!narrows || pool.candidates[i].satisfies(requirements))
        };
        let offerings = OfferingFilter::of(requirements);
        // The cheapest option holding `requests`, among those whose lowest
        // price (a floor under any requirements; options are in that order)
        // is within `limit`: the price is known before every option is filtered.
        let cheapest = |requests: &Resources, limit: f64| {
            self.options
                .iter()
                .copied()
                .take_while(|&i| pool.candidates[i].lowest_price() <= limit)
                .filter(|&i| holds(i, requests))
                .filter_map(|i| offerings.cheapest(&pool.candidates[i]).map(|o| o.price))
                .fold(f64::INFINITY, f64::min)
        };
        let limit = |k: usize| self.price + fresh[k - 1] + 1e-9;
        let price = if self.pods.is_empty() {
            cheapest(requests, f64::INFINITY)
        } else {
            let widest = (1..=fresh.len()).map(limit).fold(0.0, f64::max);
            let price = cheapest(requests, widest);
            let pays_off = price <= limit(1)
                || self.alike(one)
                    && (2..=fresh.len()).any(|k| {
                        let extra = k as i64 - 1;
                        let (cpu, memory) = (
                            requests.cpu_milli + extra * one.cpu_milli,
                            requests.memory + extra * one.memory,
                        );
                        if !self.ladder_holds(cpu, memory, limit(k)) {
                            return false;
                        }
                        let mut more = requests.clone();
                        for _ in 0..extra {
                            more.add(one);
                        }
                        cheapest(&more, limit(k)) <= limit(k)
                    });
            if !pays_off {
                return None;
            }
            price
        };
        let options: Vec<usize> = self
            .options
            .iter()
            .copied()
            .filter(|&i| holds(i, requests))
            .collect();
        if options.is_empty() || !min_values_hold(requirements, &options, &pool.candidates) {
            return None;
        }
        Some((options, price))
    }
}

/// Prefix maxima of allocatable CPU and memory over `options` in order of
/// their price under `requirements` (narrowing only raises prices, so this
/// never refuses a pod that could fit).
fn ladder(options: &[usize], requirements: &Requirements, pool: &Pool) -> Vec<(f64, i64, i64)> {
    let offerings = OfferingFilter::of(requirements);
    let mut priced: Vec<(f64, &Resources)> = options
        .iter()
        .filter_map(|&i| {
            let c = &pool.candidates[i];
            Some((offerings.cheapest(c)?.price, &c.allocatable))
        })
        .collect();
    priced.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut steps: Vec<(f64, i64, i64)> = Vec::with_capacity(priced.len());
    for (price, allocatable) in priced {
        let (cpu, memory) = steps.last().map_or((0, 0), |s| (s.1, s.2));
        steps.push((
            price,
            cpu.max(allocatable.cpu_milli),
            memory.max(allocatable.memory),
        ));
    }
    steps
}

/// The ways to narrow `base` to one domain of each key in `keys` (best first);
/// each comes with whether it narrowed anything.
fn collapse<'a>(
    base: Cow<'a, Requirements>,
    keys: &[(String, Vec<String>)],
) -> Vec<(Cow<'a, Requirements>, bool)> {
    let mut variants = vec![(base, false)];
    for (key, order) in keys {
        let mut next = Vec::new();
        for (requirements, collapsed) in variants {
            let current = requirements.get(key);
            if current.is_some_and(|r| r.operator() == "In" && r.len() == 1) {
                next.push((requirements, collapsed));
                continue;
            }
            for domain in order.iter().filter(|d| current.is_none_or(|r| r.has(d))) {
                let mut narrowed = requirements.clone().into_owned();
                narrowed.add(Requirement::new(key, "In", &[domain]).expect("In"));
                next.push((Cow::Owned(narrowed), true));
            }
        }
        variants = next;
    }
    variants
}

/// Every requirement with `minValues` keeps at least that many distinct values among the options.
pub fn min_values_hold(
    requirements: &Requirements,
    options: &[usize],
    candidates: &[Candidate],
) -> bool {
    requirements.iter().all(|r| {
        let Some(min) = r.min_values() else {
            return true;
        };
        let distinct: std::collections::BTreeSet<&str> = options
            .iter()
            .filter_map(|&i| candidates[i].labels.get(r.key()).map(String::as_str))
            .collect();
        distinct.len() >= min as usize
    })
}

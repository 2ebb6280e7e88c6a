//! A NodeClaim being planned: the pods it will carry, the requirements they
//! add up to, and the instance types that can still hold them all.

use super::pod::PodInfo;
use super::pool::{Candidate, Pool};
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
}

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
    /// The most CPU (millicores) and memory (bytes) any option the claim may
    /// still grow into has left: a pod asking for more cannot fit.
    pub headroom: (i64, i64),
}

impl PlannedClaim {
    /// An empty claim on `pool` limited to `options`.
    pub fn new(pool_index: usize, pool: &Pool, host: u32, options: Vec<usize>) -> Self {
        let mut claim = PlannedClaim {
            pool: pool_index,
            host,
            requirements: pool.requirements.clone(),
            pods: Vec::new(),
            requests: Resources::default(),
            headroom: (0, 0),
            options,
            host_ports: Vec::new(),
        };
        claim.headroom = claim.headroom(pool);
        claim
    }

    /// True when a pod of this size might still fit.
    pub fn has_room_for(&self, requests: &Resources) -> bool {
        requests.cpu_milli <= self.headroom.0 && requests.memory <= self.headroom.1
    }

    /// Plans `pod` onto the claim if some instance type can still hold everything
    /// and `minValues` stay satisfiable; returns whether it did.
    pub fn try_add(
        &mut self,
        pool: &Pool,
        pod_index: usize,
        pod: &PodInfo,
        attempt: &Attempt,
    ) -> bool {
        if pod.host_ports.iter().any(|p| self.host_ports.contains(p))
            || !pod.tolerates(&pool.taints, attempt.prefer_ok)
        {
            return false;
        }
        let mut requests = self.requests.clone();
        requests.add(&pod.requests);
        for term in attempt.terms.iter() {
            if self.requirements.compatible(term).is_err() {
                continue;
            }
            // A term that adds nothing (no node selector or affinity) leaves the
            // options' requirements as they were: only resources need checking.
            let narrows = !term.iter().all(|r| {
                self.requirements
                    .get(r.key())
                    .is_some_and(|mine| mine == r || mine.intersection(r) == *mine)
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
                if let Some(options) = self.admit(pool, &requests, &requirements, narrows) {
                    if narrows {
                        self.requirements = requirements.into_owned();
                    }
                    self.requests = requests;
                    self.options = options;
                    self.pods.push(pod_index);
                    self.host_ports.extend(pod.host_ports.iter().cloned());
                    self.headroom = self.headroom(pool);
                    return true;
                }
            }
        }
        false
    }

    /// The options left if the claim took `requests` under `requirements`, when
    /// the cost rules allow it.
    fn admit(
        &self,
        pool: &Pool,
        requests: &Resources,
        requirements: &Requirements,
        narrows: bool,
    ) -> Option<Vec<usize>> {
        let options: Vec<usize> = self
            .options
            .iter()
            .copied()
            .filter(|&i| requests.fits_in(&pool.candidates[i].allocatable))
            .filter(|&i| !narrows || pool.candidates[i].satisfies(requirements))
            .collect();
        if options.is_empty() || !min_values_hold(requirements, &options, &pool.candidates) {
            return None;
        }
        let dearer = || {
            !self.pods.is_empty()
                && cheapest_price(requirements, &options, pool)
                    > cheapest_price(&self.requirements, &self.options, pool) + 1e-9
        };
        // A pod whose constraints narrow the claim (on-demand only, one zone,
        // ...) may not make it dearer for the pods already on it.
        if narrows && dearer() {
            return None;
        }
        // Never grow a claim that has an efficient option into only inefficient
        // ones (giant special-purpose types cost more per vCPU and GiB than
        // separate nodes would); a claim with no efficient option (GPU types,
        // say) only takes pods that fit in the spare room of its cheapest option.
        if self.options.iter().any(|&i| pool.efficient(i)) {
            if !options.iter().any(|&i| pool.efficient(i)) {
                return None;
            }
        } else if dearer() {
            return None;
        }
        Some(options)
    }

    /// The largest CPU and memory left on an option the claim may still grow into.
    fn headroom(&self, pool: &Pool) -> (i64, i64) {
        let efficient = self.options.iter().any(|&i| pool.efficient(i));
        let cheapest = cheapest_price(&self.requirements, &self.options, pool);
        self.options
            .iter()
            .filter(|&&i| {
                if efficient {
                    pool.efficient(i)
                } else {
                    pool.candidates[i]
                        .cheapest(&self.requirements)
                        .is_some_and(|o| o.price <= cheapest + 1e-9)
                }
            })
            .fold((0, 0), |(cpu, mem), &i| {
                let a = &pool.candidates[i].allocatable;
                (
                    cpu.max(a.cpu_milli - self.requests.cpu_milli),
                    mem.max(a.memory - self.requests.memory),
                )
            })
    }
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

/// The cheapest price among `options` under `requirements`.
pub fn cheapest_price(requirements: &Requirements, options: &[usize], pool: &Pool) -> f64 {
    options
        .iter()
        .filter_map(|&i| pool.candidates[i].cheapest(requirements))
        .map(|o| o.price)
        .fold(f64::INFINITY, f64::min)
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

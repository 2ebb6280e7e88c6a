//! A NodeClaim being planned: the pods it will carry, the requirements they
//! add up to, and the instance types that can still hold them all.

use super::pod::PodInfo;
use super::pool::{Candidate, Pool};
use super::resources::Resources;
use karpenter_api::requirements::Requirements;

/// Instance types carried to launch, cheapest first (upstream's limit).
pub const MAX_INSTANCE_TYPES: usize = 60;

/// A planned new node.
#[derive(Debug, Clone)]
pub struct PlannedClaim {
    /// Index of its pool in the solver's pool list.
    pub pool: usize,
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
    /// The most CPU (millicores) and memory (bytes) any option has left: a pod
    /// asking for more cannot fit, whatever its other constraints.
    pub headroom: (i64, i64),
}

impl PlannedClaim {
    /// Plans `pod` onto the claim if some instance type can still hold everything
    /// and `minValues` stay satisfiable; returns whether it did.
    pub fn try_add(&mut self, pool: &Pool, pod_index: usize, pod: &PodInfo) -> bool {
        if pod.host_ports.iter().any(|p| self.host_ports.contains(p))
            || !pod.tolerates(&pool.taints)
        {
            return false;
        }
        let mut requests = self.requests.clone();
        requests.add(&pod.requests);
        for term in &pod.terms {
            if self.requirements.compatible(term).is_err() {
                continue;
            }
            // A term that adds nothing (no node selector or affinity) leaves the
            // options' requirements as they were: only resources need checking.
            let narrows = !term
                .iter()
                .all(|r| self.requirements.get(r.key()) == Some(r));
            let narrowed = narrows.then(|| {
                let mut requirements = self.requirements.clone();
                requirements.extend(term);
                requirements
            });
            let requirements = narrowed.as_ref().unwrap_or(&self.requirements);
            let options: Vec<usize> = self
                .options
                .iter()
                .copied()
                .filter(|&i| requests.fits_in(&pool.candidates[i].allocatable))
                .filter(|&i| !narrows || pool.candidates[i].satisfies(requirements))
                .collect();
            if options.is_empty() || !min_values_hold(requirements, &options, &pool.candidates) {
                continue;
            }
            // Never grow a claim that has an efficient option into only
            // inefficient ones (giant special-purpose types cost more per vCPU
            // and GiB than separate nodes would).
            // A pod whose constraints narrow the claim (on-demand only, one
            // zone, ...) may not make it dearer for the pods already on it.
            if narrows
                && !self.pods.is_empty()
                && cheapest_price(requirements, &options, pool)
                    > cheapest_price(&self.requirements, &self.options, pool) + 1e-9
            {
                continue;
            }
            // A claim with no efficient option (GPU types, say) only takes pods
            // that fit in the spare room of its cheapest option.
            let efficient = |i: &usize| pool.candidates[*i].efficiency <= pool.efficiency_cap;
            if self.options.iter().any(efficient) {
                if !options.iter().any(efficient) {
                    continue;
                }
            } else if !self.pods.is_empty()
                && cheapest_price(requirements, &options, pool)
                    > cheapest_price(&self.requirements, &self.options, pool) + 1e-9
            {
                continue;
            }
            if let Some(requirements) = narrowed {
                self.requirements = requirements;
            }
            self.requests = requests;
            self.options = options;
            self.pods.push(pod_index);
            self.host_ports.extend(pod.host_ports.iter().cloned());
            self.headroom = headroom(&self.requests, &self.options, &pool.candidates);
            return true;
        }
        false
    }
}

/// The cheapest price among `options` under `requirements`.
fn cheapest_price(requirements: &Requirements, options: &[usize], pool: &Pool) -> f64 {
    options
        .iter()
        .filter_map(|&i| pool.candidates[i].cheapest(requirements))
        .map(|o| o.price)
        .fold(f64::INFINITY, f64::min)
}

/// The largest CPU and memory left on any option after `requests`.
pub fn headroom(requests: &Resources, options: &[usize], candidates: &[Candidate]) -> (i64, i64) {
    options.iter().fold((0, 0), |(cpu, mem), &i| {
        let a = &candidates[i].allocatable;
        (
            cpu.max(a.cpu_milli - requests.cpu_milli),
            mem.max(a.memory - requests.memory),
        )
    })
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

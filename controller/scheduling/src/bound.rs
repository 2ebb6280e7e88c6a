//! A lower bound on the hourly cost of any packing: the LP relaxation of
//! "buy fractional nodes so that every class of pods gets the CPU, memory and
//! GPUs it asks for from instance types (and capacity types) it may run on".
//! Pods are grouped into classes by their node constraints; zones, spreads,
//! pod slots and the whole-node rounding are relaxed away, so no packing can
//! cost less.

use crate::{PodInfo, Pool};
use karpenter_api::requirements::{Requirement, Requirements};
use karpenter_catalog::CapacityType;
use microlp::{ComparisonOp, OptimizationDirection, Problem};
use std::collections::BTreeMap;

/// Why no bound could be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundError {
    /// More than 64 distinct pod classes (node constraints); the bound keeps
    /// one bit per class.
    #[error("{0} pod classes; the bound handles at most 64")]
    TooManyClasses(usize),
    /// Some class of pods fits no instance type of the pool: no packing
    /// places them, so there is nothing to bound.
    #[error("some pods fit no instance type of the pool")]
    Infeasible,
    /// The LP solver stopped without a solution.
    #[error("the LP solver gave up")]
    SolverGaveUp,
}

const GPU: &str = "nvidia.com/gpu";

/// Something to buy: one instance type at one capacity type's cheapest price.
struct Offer {
    price: f64,
    /// CPU cores, memory GiB, GPUs.
    capacity: [f64; 3],
    /// Bit `c` set when class `c` may use it.
    classes: u64,
}

fn demand(pod: &PodInfo) -> [f64; 3] {
    [
        pod.requests.cpu_milli as f64 / 1000.0,
        pod.requests.memory as f64 / f64::from(1u32 << 30),
        pod.requests.extended.get(GPU).copied().unwrap_or(0) as f64,
    ]
}

/// The LP lower bound, in USD per hour, for placing `pods` on new nodes of
/// `pool`: no packing of them onto new nodes of the pool costs less.
pub fn lower_bound(pods: &[PodInfo], pool: &Pool) -> Result<f64, BoundError> {
    let mut classes: BTreeMap<String, (Vec<Requirements>, [f64; 3])> = BTreeMap::new();
    for pod in pods {
        let entry = classes
            .entry(format!(
                "{:?}{}",
                pod.terms,
                pod.requests.extended.contains_key(GPU)
            ))
            .or_insert_with(|| (pod.terms.clone(), [0.0; 3]));
        for (total, add) in entry.1.iter_mut().zip(demand(pod)) {
            *total += add;
        }
    }
    let classes: Vec<_> = classes.into_values().collect();
    if classes.len() > 64 {
        return Err(BoundError::TooManyClasses(classes.len()));
    }

    let mut offers = Vec::new();
    for candidate in &pool.candidates {
        for capacity_type in [
            CapacityType::Spot,
            CapacityType::OnDemand,
            CapacityType::Reserved,
        ] {
            let Some(price) = candidate
                .offerings
                .iter()
                .filter(|o| o.capacity_type == capacity_type)
                .map(|o| o.price)
                .reduce(f64::min)
            else {
                continue;
            };
            let only = Requirement::new(
                karpenter_api::labels::CAPACITY_TYPE,
                "In",
                &[capacity_type.label()],
            )
            .expect("In with one value is valid");
            let gpus = candidate
                .allocatable
                .extended
                .get(GPU)
                .copied()
                .unwrap_or(0) as f64;
            let mut bits = 0u64;
            for (c, (terms, need)) in classes.iter().enumerate() {
                let allowed = terms.iter().any(|term| {
                    let mut term = term.clone();
                    term.add(only.clone());
                    candidate.satisfies(&term)
                });
                if allowed && (need[2] == 0.0 || gpus > 0.0) {
                    bits |= 1 << c;
                }
            }
            if bits != 0 {
                offers.push(Offer {
                    price,
                    capacity: [
                        candidate.allocatable.cpu_milli as f64 / 1000.0,
                        candidate.allocatable.memory as f64 / f64::from(1u32 << 30),
                        gpus,
                    ],
                    classes: bits,
                });
            }
        }
    }
    // An offer another beats on price, every capacity and every class adds nothing.
    let dominated = |i: usize| {
        let a = &offers[i];
        offers.iter().enumerate().any(|(j, b)| {
            j != i
                && b.classes & a.classes == a.classes
                && b.price <= a.price
                && (0..3).all(|r| b.capacity[r] >= a.capacity[r])
                && (b.price < a.price || (0..3).any(|r| b.capacity[r] > a.capacity[r]) || j < i)
        })
    };
    let kept: Vec<usize> = (0..offers.len()).filter(|&i| !dominated(i)).collect();

    let mut lp = Problem::new(OptimizationDirection::Minimize);
    let bought: Vec<_> = kept
        .iter()
        .map(|&o| lp.add_var(offers[o].price, (0.0, f64::INFINITY)))
        .collect();
    // supply[c][r]: (offer, variable) pairs carrying class c's resource r.
    let mut supply: Vec<[Vec<(usize, microlp::Variable)>; 3]> =
        (0..classes.len()).map(|_| Default::default()).collect();
    for (k, &o) in kept.iter().enumerate() {
        for (c, class_supply) in supply.iter_mut().enumerate() {
            if offers[o].classes & (1 << c) != 0 {
                for (r, list) in class_supply.iter_mut().enumerate() {
                    if classes[c].1[r] > 0.0 {
                        list.push((k, lp.add_var(0.0, (0.0, f64::INFINITY))));
                    }
                }
            }
        }
    }
    for (c, class_supply) in supply.iter().enumerate() {
        for (r, list) in class_supply.iter().enumerate() {
            if classes[c].1[r] > 0.0 {
                let terms: Vec<_> = list.iter().map(|&(_, v)| (v, 1.0)).collect();
                lp.add_constraint(terms.as_slice(), ComparisonOp::Ge, classes[c].1[r]);
            }
        }
    }
    for (k, &o) in kept.iter().enumerate() {
        for r in 0..3 {
            let mut terms: Vec<_> = supply
                .iter()
                .flat_map(|s| s[r].iter())
                .filter(|&&(offer, _)| offer == k)
                .map(|&(_, v)| (v, 1.0))
                .collect();
            if terms.is_empty() {
                continue;
            }
            terms.push((bought[k], -offers[o].capacity[r]));
            lp.add_constraint(terms.as_slice(), ComparisonOp::Le, 0.0);
        }
    }
    match lp.solve() {
        Ok(microlp::SolveOutcome::Solution(solution)) => Ok(solution.objective()),
        Ok(microlp::SolveOutcome::Interrupted(_)) => Err(BoundError::SolverGaveUp),
        Err(_) => Err(BoundError::Infeasible),
    }
}

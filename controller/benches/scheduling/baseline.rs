//! The baseline the solver must beat: plain first-fit-decreasing, as a simple
//! autoscaler would do it. Pods largest first; each goes on the first open node
//! it fits (resources and node constraints); otherwise a new node of the
//! cheapest instance type and offering that holds it. Topology rules are
//! ignored, which can only make the baseline cheaper than it should be.

use karpenter_controller::scheduling::{PodInfo, Pool, Resources};
use std::collections::BTreeMap;

struct Node {
    labels: BTreeMap<String, String>,
    free: Resources,
    price: f64,
}

/// Hourly cost and node count of first-fit-decreasing on `pool`.
pub fn first_fit_decreasing(pods: &[PodInfo], pool: &Pool) -> (f64, usize) {
    let mut order: Vec<&PodInfo> = pods.iter().collect();
    order.sort_by_key(|p| {
        let r = &p.requests;
        std::cmp::Reverse((r.extended.values().sum::<i64>(), r.cpu_milli, r.memory))
    });
    // Every type and offering as a concrete node, cheapest first.
    let template = pool.requirements.single_valued_labels();
    let mut offers: Vec<(f64, BTreeMap<String, String>, &Resources)> = pool
        .candidates
        .iter()
        .flat_map(|c| c.offerings.iter().map(move |o| (c, o)))
        .map(|(c, o)| {
            let mut labels = template.clone();
            labels.extend(c.labels.clone());
            labels.insert(karpenter_api::labels::ZONE.into(), o.zone.clone());
            labels.insert(
                karpenter_api::labels::CAPACITY_TYPE.into(),
                o.capacity_type.label().into(),
            );
            (o.price, labels, &c.allocatable)
        })
        .collect();
    offers.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut nodes: Vec<Node> = Vec::new();
    for pod in order {
        let fits = |labels: &BTreeMap<String, String>, free: &Resources| {
            pod.requests.fits_in(free) && pod.terms.iter().any(|t| t.matches(labels))
        };
        if let Some(node) = nodes.iter_mut().find(|n| fits(&n.labels, &n.free)) {
            node.free.subtract(&pod.requests);
            continue;
        }
        if let Some((price, labels, allocatable)) =
            offers.iter().find(|(_, labels, free)| fits(labels, free))
        {
            let mut free = (*allocatable).clone();
            free.subtract(&pod.requests);
            nodes.push(Node {
                labels: labels.clone(),
                free,
                price: *price,
            });
        }
    }
    (nodes.iter().map(|n| n.price).sum(), nodes.len())
}

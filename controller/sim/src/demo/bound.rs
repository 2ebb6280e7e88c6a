//! The cost to beat: the LP lower bound (`karpenter_scheduling::lower_bound`)
//! for the scenario's peak workload on the demo's NodePool, so the summary
//! says how close the fleet at its peak came to the cheapest possible one.

use super::Scenario;
use karpenter_api::v1::NodePool;
use karpenter_controller::catalog::{Catalog, KubeletSettings};
use karpenter_controller::scheduling::{Pool, Resources, lower_bound, pod_info};
use karpenter_controller::state::CachedPod;
use serde_json::{Value, json};

/// The bound for the peak workload.
#[derive(Debug, Clone, PartialEq)]
pub struct PeakBound {
    /// Pods at the peak.
    pub pods: usize,
    /// No fleet of new nodes holding them costs less, in USD per hour.
    pub hourly: f64,
}

/// Why there is no bound to print (the summary says so instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no LP bound for the peak: {0}")]
pub struct NoBound(String);

/// The peak workload's pods as the controller would see them pending.
pub fn peak_pods(scenario: &Scenario) -> Vec<CachedPod> {
    let peak = scenario.peak();
    let mut pods = Vec::new();
    for workload in &scenario.workloads {
        for i in 0..peak.get(&workload.name).copied().unwrap_or(0) {
            let pod = json!({
                "metadata": {"name": format!("{}-{i}", workload.name), "namespace": scenario.namespace,
                    "labels": {"app": workload.name}},
                "spec": workload.pod_spec(),
            });
            pods.push(serde_json::from_value(pod).expect("a pod spec the scenario wrote"));
        }
    }
    pods
}

/// The LP bound of the scenario's peak workload on the first NodePool in
/// `manifests`, priced from `catalog`.
pub fn peak_bound(
    scenario: &Scenario,
    manifests: &str,
    catalog: &Catalog,
) -> Result<PeakBound, NoBound> {
    let pool: NodePool = manifests
        .split("\n---")
        .filter_map(|doc| serde_norway::from_str::<Value>(doc).ok())
        .find(|doc| doc["kind"] == "NodePool")
        .ok_or_else(|| NoBound("the manifests hold no NodePool".into()))
        .and_then(|doc| serde_json::from_value(doc).map_err(|e| NoBound(e.to_string())))?;
    let pool = Pool::new(
        &pool,
        catalog,
        &KubeletSettings::default(),
        &Resources::default(),
        &Resources::default(),
    )
    .map_err(|e| NoBound(e.to_string()))?;
    let pods = peak_pods(scenario)
        .iter()
        .map(pod_info)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| NoBound(e.to_string()))?;
    let hourly = lower_bound(&pods, &pool).map_err(|e| NoBound(e.to_string()))?;
    Ok(PeakBound {
        pods: pods.len(),
        hourly,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{DEFAULT_MANIFESTS, DEFAULT_SCENARIO};

    #[test]
    fn the_default_scenario_peaks_at_200_pods_with_a_bound_below_its_cost() {
        let scenario = Scenario::parse(DEFAULT_SCENARIO).unwrap();
        let bound = peak_bound(&scenario, DEFAULT_MANIFESTS, Catalog::us_east_1()).unwrap();
        assert_eq!(bound.pods, 200);
        // 200 pods asking 152.5 vCPU and 405 GiB: dollars an hour, not cents.
        assert!(bound.hourly > 1.0 && bound.hourly < 6.0, "{bound:?}");
    }

    #[test]
    fn manifests_without_a_nodepool_have_no_bound() {
        let scenario = Scenario::parse(DEFAULT_SCENARIO).unwrap();
        let err = peak_bound(&scenario, "kind: ConfigMap", Catalog::us_east_1()).unwrap_err();
        assert!(err.to_string().contains("no NodePool"), "{err}");
    }
}

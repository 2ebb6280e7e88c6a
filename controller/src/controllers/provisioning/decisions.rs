//! When this replica first saw each pending pod, and when a scheduling round
//! decided where it goes: the times behind upstream's
//! `karpenter_pods_scheduling_decision_duration_seconds` (observed by the
//! provisioner), `karpenter_pods_provisioning_{bound,startup}_duration_seconds`
//! (by `pod_metrics`) and the `karpenter_pods_provisioning_*_time_seconds`
//! gauges (by `state_metrics`). Pods are keyed `namespace/name`; entries of
//! pods that are gone are dropped by `state_metrics`' pass.

use k8s_openapi::jiff::Timestamp;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// What is known of one pod's scheduling.
#[derive(Debug, Clone, PartialEq)]
pub struct PodDecision {
    /// When a provisioning round first saw it pending.
    pub seen: Timestamp,
    /// When a round decided it (a node or NodeClaim for it, or none).
    pub decided: Option<Timestamp>,
    /// Whether that decision gave it a place (Karpenter "thinks it can schedule").
    pub placed: bool,
    /// Whether its binding was observed already.
    pub bound_observed: bool,
}

/// The pods' decisions, shared by the controllers.
#[derive(Clone, Default)]
pub struct PodDecisions {
    pods: Arc<Mutex<HashMap<String, PodDecision>>>,
}

impl PodDecisions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PodDecision>> {
        self.pods.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes the pods a round sees pending (the first sighting counts).
    pub fn seen(&self, keys: impl IntoIterator<Item = String>, now: Timestamp) {
        let mut pods = self.lock();
        for key in keys {
            pods.entry(key).or_insert(PodDecision {
                seen: now,
                decided: None,
                placed: false,
                bound_observed: false,
            });
        }
    }

    /// Records a round's decisions (`placed`: pods it gave a place; the
    /// rest of `decided` it could not place); returns, for each pod decided
    /// for the first time, the seconds since it was first seen. A pod
    /// placed later after being unplaceable counts as decided again.
    pub fn decided(
        &self,
        decided: impl IntoIterator<Item = String>,
        placed: &HashSet<String>,
        now: Timestamp,
    ) -> Vec<f64> {
        let mut pods = self.lock();
        let mut first = Vec::new();
        for key in decided {
            let Some(pod) = pods.get_mut(&key) else {
                continue;
            };
            let is_placed = placed.contains(&key);
            if pod.decided.is_none() {
                first.push(now.duration_since(pod.seen).as_secs_f64().max(0.0));
            }
            if pod.decided.is_none() || (is_placed && !pod.placed) {
                pod.decided = Some(now);
            }
            pod.placed |= is_placed;
        }
        first
    }

    /// Every pod's decision now.
    pub fn snapshot(&self) -> Vec<(String, PodDecision)> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Notes that the pod's binding was observed.
    pub fn bound_observed(&self, key: &str) {
        if let Some(pod) = self.lock().get_mut(key) {
            pod.bound_observed = true;
        }
    }

    /// Forgets a pod (it runs: nothing more to observe).
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Keeps only the pods in `live`.
    pub fn retain(&self, live: &HashSet<String>) {
        let mut pods = self.lock();
        pods.retain(|k, _| live.contains(k));
        pods.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_decision_is_timed_from_the_first_sighting() {
        let d = PodDecisions::default();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t = |s: i64| t0 + std::time::Duration::from_secs(s as u64);
        d.seen(["a/p".to_string(), "a/q".to_string()], t0);
        d.seen(["a/p".to_string()], t(5));
        let placed: HashSet<String> = ["a/p".to_string()].into();
        assert_eq!(
            d.decided(["a/p".into(), "a/q".into()], &placed, t(2)),
            vec![2.0, 2.0]
        );
        // q is placed a round later: not a first decision, but now placed.
        let placed: HashSet<String> = ["a/q".to_string()].into();
        assert!(d.decided(["a/q".into()], &placed, t(9)).is_empty());
        let snapshot: HashMap<_, _> = d.snapshot().into_iter().collect();
        assert_eq!(snapshot["a/p"].decided, Some(t(2)));
        assert_eq!(snapshot["a/q"].decided, Some(t(9)));
        assert!(snapshot["a/q"].placed);
        d.retain(&["a/q".to_string()].into());
        assert_eq!(d.snapshot().len(), 1);
    }
}

//! Pod metrics: `karpenter_pods_startup_duration_seconds` (pod creation
//! until Ready) and `karpenter_pods_bound_duration_seconds` (creation until
//! bound to a node). Each is observed once per pod that this replica saw
//! before it got there or that was created after the replica started; pods
//! already there before it started are not counted (as upstream), so a
//! restart never observes the same pod twice and a pod that gets there
//! between two passes is not missed.

use crate::controllers::Context;
use crate::metrics::summary::Summaries;
use crate::state::{CachedPod, Interest};
use k8s_openapi::jiff::Timestamp;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// One point in a pod's life (running, bound): which pods were seen before
/// it and which were already observed at it, by UID.
#[derive(Debug)]
pub struct Milestone {
    since: Timestamp,
    waiting: HashSet<String>,
    reached: HashSet<String>,
}

fn is_running(pod: &CachedPod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// When the condition `type_` of the pod turned True, else `now`.
fn condition_since(pod: &CachedPod, type_: &str, now: Timestamp) -> Timestamp {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_ && c.status == "True"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map_or(now, |t| t.0)
}

/// When the pod became Ready, if it runs.
pub fn running_at(pod: &CachedPod, now: Timestamp) -> Option<Timestamp> {
    is_running(pod).then(|| condition_since(pod, "Ready", now))
}

/// When the pod was bound (its `PodScheduled` condition), if it is.
pub fn bound_at(pod: &CachedPod, now: Timestamp) -> Option<Timestamp> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_ref())
        .map(|_| condition_since(pod, "PodScheduled", now))
}

impl Milestone {
    /// Counts pods created from `since` (when this replica started) on.
    /// Creation timestamps have whole seconds, so `since` is rounded down
    /// to its second: a pod created later in that second (and there before
    /// the next pass) still counts.
    pub fn new(since: Timestamp) -> Self {
        let since = Timestamp::from_second(since.as_second()).unwrap_or(since);
        Milestone {
            since,
            waiting: HashSet::new(),
            reached: HashSet::new(),
        }
    }

    /// Records, for every pod that `at` says got there since the last pass,
    /// the seconds from its creation; returns how many were recorded.
    pub fn observe<'a>(
        &mut self,
        pods: impl IntoIterator<Item = &'a CachedPod>,
        at: impl Fn(&CachedPod, Timestamp) -> Option<Timestamp>,
        mut record: impl FnMut(f64),
    ) -> usize {
        let now = Timestamp::now();
        let (mut waiting, mut reached) = (HashSet::new(), HashSet::new());
        let mut observed = 0;
        for pod in pods {
            let (Some(uid), Some(created)) = (
                pod.metadata.uid.as_ref(),
                pod.metadata.creation_timestamp.as_ref(),
            ) else {
                continue;
            };
            let terminal = matches!(
                pod.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            );
            if let Some(when) = at(pod, now) {
                let new = !self.reached.contains(uid)
                    && (self.waiting.contains(uid) || created.0 >= self.since);
                if new {
                    record(when.duration_since(created.0).as_secs_f64().max(0.0));
                    observed += 1;
                }
                reached.insert(uid.clone());
            } else if !terminal && pod.metadata.deletion_timestamp.is_none() {
                waiting.insert(uid.clone());
            }
        }
        self.waiting = waiting;
        self.reached = reached;
        observed
    }
}

/// Observes pod start-ups and bindings on every pod change, at most once a
/// second (and once a minute without one).
pub async fn run<C: Send + Sync + 'static>(ctx: Arc<Context<C>>) {
    let started = Timestamp::now();
    let (mut running, mut bound) = (Milestone::new(started), Milestone::new(started));
    let metrics = &ctx.metrics.lifecycle;
    let startup: &Summaries = &metrics.pods_startup_duration;
    let binding = metrics
        .pods_bound_duration
        .get_or_create(&Vec::new())
        .clone();
    let mut changes = ctx.state.waiter(Interest::Everything);
    loop {
        let pods = ctx.state.pods.state();
        running.observe(pods.iter().map(|p| p.as_ref()), running_at, |s| {
            startup.observe(&Vec::new(), s)
        });
        bound.observe(pods.iter().map(|p| p.as_ref()), bound_at, |s| {
            binding.observe(s)
        });
        provisioned(&ctx, &pods);
        tokio::time::sleep(Duration::from_secs(1)).await;
        if !changes.wait(Duration::from_secs(60)).await {
            return;
        }
    }
}

/// `karpenter_pods_provisioning_{bound,startup}_duration_seconds`: for
/// each pod a scheduling round placed, the seconds from that decision to
/// its binding and to its start (observed once each; then it is forgotten).
fn provisioned<C>(ctx: &Context<C>, pods: &[Arc<CachedPod>]) {
    let by_key: std::collections::HashMap<String, &CachedPod> = pods
        .iter()
        .map(|p| (crate::state::key(p.as_ref()), p.as_ref()))
        .collect();
    let metrics = &ctx.metrics.lifecycle;
    let now = Timestamp::now();
    for (key, decision) in ctx.decisions.snapshot() {
        let (Some(decided), true, Some(pod)) =
            (decision.decided, decision.placed, by_key.get(&key))
        else {
            continue;
        };
        let since = |at: Timestamp| at.duration_since(decided).as_secs_f64().max(0.0);
        if !decision.bound_observed
            && let Some(at) = bound_at(pod, now)
        {
            metrics
                .pods_provisioning_bound_duration
                .get_or_create(&Vec::new())
                .observe(since(at));
            ctx.decisions.bound_observed(&key);
        }
        if let Some(at) = running_at(pod, now) {
            metrics
                .pods_provisioning_startup_duration
                .get_or_create(&Vec::new())
                .observe(since(at));
            ctx.decisions.forget(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, phase: &str, created: &str, ready_at: Option<&str>) -> CachedPod {
        let conditions: Vec<_> = ready_at
            .map(|t| json!({"type": "Ready", "status": "True", "lastTransitionTime": t}))
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": uid, "uid": uid, "creationTimestamp": created},
            "status": {"phase": phase, "conditions": conditions},
        }))
        .unwrap()
    }

    fn sum_and_count(summary: &Summaries) -> (f64, u64) {
        let mut text = String::new();
        summary.encode("h", "h", &mut text);
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap()
        };
        (value("h_sum"), value("h_count") as u64)
    }

    #[test]
    fn observes_each_waiting_pod_once_when_it_runs() {
        let histogram = Summaries::default();
        let mut startup = Milestone::new("2026-11-23T10:00:01Z".parse().unwrap());
        let t0 = "2026-11-23T10:00:00Z";
        // a ran before this replica started: never counted.
        let first = [
            pod("a", "Running", t0, Some("2026-11-23T10:00:05Z")),
            pod("b", "Pending", t0, None),
            pod("c", "Pending", t0, None),
        ];
        assert_eq!(
            startup.observe(&first, running_at, |s| histogram.observe(&Vec::new(), s)),
            0
        );
        // b was seen waiting; d was created after the start and ran before a pass.
        let second = [
            pod("a", "Running", t0, Some("2026-11-23T10:00:05Z")),
            pod("b", "Running", t0, Some("2026-11-23T10:00:12Z")),
            pod("c", "Pending", t0, None),
            pod(
                "d",
                "Running",
                "2026-11-23T10:00:02Z",
                Some("2026-11-23T10:00:04Z"),
            ),
        ];
        assert_eq!(
            startup.observe(&second, running_at, |s| histogram.observe(&Vec::new(), s)),
            2
        );
        // Both again: already observed.
        assert_eq!(
            startup.observe(&second, running_at, |s| histogram.observe(&Vec::new(), s)),
            0
        );
        assert_eq!(sum_and_count(&histogram), (14.0, 2));
    }

    #[test]
    fn a_pod_created_in_the_second_this_replica_started_counts() {
        let histogram = Summaries::default();
        // Started at .7 s; the pod, created at .9 s, carries the second only.
        let mut startup = Milestone::new("2026-11-23T10:00:00.7Z".parse().unwrap());
        assert_eq!(
            startup.observe(&[], running_at, |s| histogram.observe(&Vec::new(), s)),
            0
        );
        let pods = [pod(
            "e",
            "Running",
            "2026-11-23T10:00:00Z",
            Some("2026-11-23T10:00:01Z"),
        )];
        assert_eq!(
            startup.observe(&pods, running_at, |s| histogram.observe(&Vec::new(), s)),
            1
        );
    }

    #[test]
    fn a_binding_is_observed_once_from_the_scheduled_condition() {
        let histogram = Summaries::default();
        let mut bound = Milestone::new("2026-11-23T10:00:00Z".parse().unwrap());
        let pod = |node: Option<&str>| -> CachedPod {
            serde_json::from_value(json!({
                "metadata": {"name": "p", "uid": "p", "creationTimestamp": "2026-11-23T10:00:01Z"},
                "spec": {"nodeName": node},
                "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled",
                    "status": if node.is_some() { "True" } else { "False" },
                    "lastTransitionTime": "2026-11-23T10:00:04Z"}]},
            }))
            .unwrap()
        };
        let record = |s| histogram.observe(&Vec::new(), s);
        assert_eq!(bound.observe(&[pod(None)], bound_at, record), 0);
        assert_eq!(bound.observe(&[pod(Some("n1"))], bound_at, record), 1);
        assert_eq!(bound.observe(&[pod(Some("n1"))], bound_at, record), 0);
        assert_eq!(sum_and_count(&histogram), (3.0, 1));
    }
}

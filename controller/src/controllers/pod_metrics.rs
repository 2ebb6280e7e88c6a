//! Pod metrics: `karpenter_pods_startup_duration_seconds`, the time from a
//! pod's creation until it became Ready. Observed once per pod that this
//! replica saw waiting or that was created after it started; pods already
//! running before it started are not counted (as upstream), so a restart
//! never observes the same pod twice and a pod that starts between two
//! passes is not missed.

use crate::controllers::Context;
use crate::metrics::summary::Summaries;
use crate::state::{CachedPod, Interest};
use k8s_openapi::jiff::Timestamp;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Which pods were seen waiting and which were already observed, by UID.
#[derive(Debug)]
pub struct PodStartup {
    since: Timestamp,
    waiting: HashSet<String>,
    running: HashSet<String>,
}

fn is_running(pod: &CachedPod) -> bool {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// When the pod became Ready (its condition's transition), else `now`.
fn running_since(pod: &CachedPod, now: Timestamp) -> Timestamp {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
        .and_then(|c| c.last_transition_time.as_ref())
        .map_or(now, |t| t.0)
}

impl PodStartup {
    /// Counts pods created from `since` (when this replica started) on.
    /// Creation timestamps have whole seconds, so `since` is rounded down
    /// to its second: a pod created later in that second (and running
    /// before the next pass) still counts.
    pub fn new(since: Timestamp) -> Self {
        let since = Timestamp::from_second(since.as_second()).unwrap_or(since);
        PodStartup {
            since,
            waiting: HashSet::new(),
            running: HashSet::new(),
        }
    }

    /// Observes every pod that runs now and was not running on the last
    /// pass; returns how many were observed.
    pub fn observe<'a>(
        &mut self,
        pods: impl IntoIterator<Item = &'a CachedPod>,
        summary: &Summaries,
    ) -> usize {
        let now = Timestamp::now();
        let (mut waiting, mut running) = (HashSet::new(), HashSet::new());
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
            if is_running(pod) {
                let new = !self.running.contains(uid)
                    && (self.waiting.contains(uid) || created.0 >= self.since);
                if new {
                    let seconds = running_since(pod, now).duration_since(created.0);
                    summary.observe(&Vec::new(), seconds.as_secs_f64().max(0.0));
                    observed += 1;
                }
                running.insert(uid.clone());
            } else if !terminal && pod.metadata.deletion_timestamp.is_none() {
                waiting.insert(uid.clone());
            }
        }
        self.waiting = waiting;
        self.running = running;
        observed
    }
}

/// Observes pod start-ups on every pod change, at most once a second (and
/// once a minute without one).
pub async fn run<C: Send + Sync + 'static>(ctx: Arc<Context<C>>) {
    let mut startup = PodStartup::new(Timestamp::now());
    let mut changes = ctx.state.waiter(Interest::Everything);
    loop {
        let pods = ctx.state.pods.state();
        startup.observe(
            pods.iter().map(|p| p.as_ref()),
            &ctx.metrics.lifecycle.pods_startup_duration,
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        if !changes.wait(Duration::from_secs(60)).await {
            return;
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
        let mut startup = PodStartup::new("2026-11-23T10:00:01Z".parse().unwrap());
        let t0 = "2026-11-23T10:00:00Z";
        // a ran before this replica started: never counted.
        let first = [
            pod("a", "Running", t0, Some("2026-11-23T10:00:05Z")),
            pod("b", "Pending", t0, None),
            pod("c", "Pending", t0, None),
        ];
        assert_eq!(startup.observe(&first, &histogram), 0);
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
        assert_eq!(startup.observe(&second, &histogram), 2);
        // Both again: already observed.
        assert_eq!(startup.observe(&second, &histogram), 0);
        assert_eq!(sum_and_count(&histogram), (14.0, 2));
    }

    #[test]
    fn a_pod_created_in_the_second_this_replica_started_counts() {
        let histogram = Summaries::default();
        // Started at .7 s; the pod, created at .9 s, carries the second only.
        let mut startup = PodStartup::new("2026-11-23T10:00:00.7Z".parse().unwrap());
        assert_eq!(startup.observe(&[], &histogram), 0);
        let pods = [pod(
            "e",
            "Running",
            "2026-11-23T10:00:00Z",
            Some("2026-11-23T10:00:01Z"),
        )];
        assert_eq!(startup.observe(&pods, &histogram), 1);
    }
}

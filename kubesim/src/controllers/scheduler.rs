//! The scheduler: binds pending pods to nodes where they fit, least-allocated
//! first; otherwise records `PodScheduled=False`, reason `Unschedulable`, with
//! kube-scheduler's summary message — the condition Karpenter provisions for.
//!
//! Like kube-scheduler it stops looking once it has found enough feasible nodes
//! in a large cluster (`percentageOfNodesToScore`), and it retries an
//! unschedulable pod only after the cluster changed (a node or a bound pod came
//! or went), at most once a second, and every ten seconds regardless.

use super::Ctx;
use super::fit::{NodeInfo, PodInfo, Snapshot, unfit_reason};
use crate::store::{Part, now};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const BACKOFF: Duration = Duration::from_secs(1);
const RETRY_ANYWAY: Duration = Duration::from_secs(10);

/// What the scheduler remembers between passes.
#[derive(Default)]
pub(crate) struct SchedulerState {
    /// Unschedulable pods (by uid): when they were tried, and the cluster then.
    attempts: HashMap<String, (Instant, u64)>,
    /// Where the next node scan starts (spreads load like kube-scheduler).
    next_start: usize,
}

/// How many feasible nodes to find before choosing (kube-scheduler's default).
fn feasible_nodes_to_find(nodes: usize) -> usize {
    if nodes < 100 {
        return nodes;
    }
    let percentage = (50 - nodes as i64 / 125).max(5) as usize;
    (nodes * percentage / 100).max(100)
}

/// A fingerprint of what can make an unschedulable pod fit.
fn cluster_version(nodes: &[std::sync::Arc<Value>], pods: &[std::sync::Arc<Value>]) -> u64 {
    let node_rv: u64 = nodes
        .iter()
        .filter_map(|n| {
            n["metadata"]["resourceVersion"]
                .as_str()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    let bound = pods
        .iter()
        .filter(|p| p["spec"]["nodeName"].is_string())
        .count() as u64;
    node_rv.wrapping_mul(1_000_003)
        ^ (nodes.len() as u64).wrapping_mul(7919)
        ^ bound.wrapping_mul(31)
        ^ pods.len() as u64
}

/// One scheduling pass over the pending pods due for an attempt.
pub(crate) fn pass(ctx: &Ctx) {
    let pods_rt = ctx.rt("", "pods");
    let nodes = ctx.list(&ctx.rt("", "nodes"));
    let pods = ctx.list(&pods_rt);
    let version = cluster_version(&nodes, &pods);
    let mut state = ctx.scheduler.lock().expect("scheduler state");
    let now_instant = Instant::now();
    let due = |pod: &Value, state: &SchedulerState| {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        state.attempts.get(uid).is_none_or(|(at, seen)| {
            let waited = now_instant.duration_since(*at);
            waited >= RETRY_ANYWAY || (*seen != version && waited >= BACKOFF)
        })
    };
    let mut pending: Vec<&Value> = pods
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| is_pending(p) && due(p, &state))
        .collect();
    if pending.is_empty() {
        return;
    }
    pending.sort_by_key(|p| {
        (
            -p["spec"]["priority"].as_i64().unwrap_or(0),
            p["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    });
    let mut snapshot = Snapshot::new(&nodes, &pods);
    let want = feasible_nodes_to_find(snapshot.nodes.len());
    for pod in pending {
        let info = PodInfo::new(pod);
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut best: Option<(usize, f64)> = None;
        let mut feasible = 0;
        let count = snapshot.nodes.len();
        for offset in 0..count {
            let index = (state.next_start + offset) % count;
            let node: &NodeInfo = &snapshot.nodes[index];
            match unfit_reason(&info, node, &snapshot) {
                Some(reason) => *reasons.entry(reason).or_default() += 1,
                None => {
                    feasible += 1;
                    let load = snapshot.cpu_load(node);
                    if best.is_none_or(|(_, l)| load < l) {
                        best = Some((index, load));
                    }
                    if feasible >= want {
                        break;
                    }
                }
            }
        }
        let uid = pod["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match best {
            Some((index, _)) => {
                state.next_start = (index + 1) % count.max(1);
                let node = snapshot.nodes[index].name.to_string();
                if bind(ctx, &pods_rt, pod, &node) {
                    snapshot.place(pod, info.requests(), &node);
                    state.attempts.remove(&uid);
                }
            }
            None => {
                mark_unschedulable(ctx, &pods_rt, pod, count, &reasons);
                state.attempts.insert(uid, (now_instant, version));
            }
        }
    }
    // Forget pods that are gone or placed.
    let pending_uids: std::collections::HashSet<&str> = pods
        .iter()
        .filter(|p| is_pending(p))
        .filter_map(|p| p["metadata"]["uid"].as_str())
        .collect();
    state
        .attempts
        .retain(|uid, _| pending_uids.contains(uid.as_str()));
}

fn is_pending(pod: &Value) -> bool {
    pod["spec"]["nodeName"].as_str().is_none_or(str::is_empty)
        && pod["metadata"]["deletionTimestamp"].is_null()
        && pod["spec"]["schedulerName"]
            .as_str()
            .is_none_or(|s| s == "default-scheduler")
        && pod["status"]["phase"]
            .as_str()
            .is_none_or(|p| p == "Pending")
}

fn bind(ctx: &Ctx, rt: &crate::resources::ResourceType, pod: &Value, node: &str) -> bool {
    let mut bound = pod.clone();
    bound["spec"]["nodeName"] = json!(node);
    let Some(stored) = ctx.write(rt, bound, Part::Main) else {
        return false;
    };
    let mut status = (*stored).clone();
    set_condition(
        &mut status,
        json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}),
    );
    ctx.write(rt, status, Part::Status);
    true
}

fn mark_unschedulable(
    ctx: &Ctx,
    rt: &crate::resources::ResourceType,
    pod: &Value,
    total: usize,
    reasons: &BTreeMap<String, usize>,
) {
    let summary: Vec<String> = reasons
        .iter()
        .map(|(reason, count)| format!("{count} {reason}"))
        .collect();
    let message = if summary.is_empty() {
        format!("0/{total} nodes are available.")
    } else {
        format!("0/{total} nodes are available: {}.", summary.join(", "))
    };
    let current = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "PodScheduled");
    if current.is_some_and(|c| {
        c["status"] == "False" && c["reason"] == "Unschedulable" && c["message"] == message.as_str()
    }) {
        return;
    }
    let mut status = pod.clone();
    set_condition(
        &mut status,
        json!({"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message, "lastTransitionTime": now()}),
    );
    ctx.write(rt, status, Part::Status);
}

/// Replaces (or adds) the condition of the same type in `status.conditions`.
pub(crate) fn set_condition(obj: &mut Value, condition: Value) {
    let mut conditions: Vec<Value> = obj["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    conditions.retain(|c| c["type"] != condition["type"]);
    conditions.push(condition);
    obj["status"]["conditions"] = json!(conditions);
}

#[cfg(test)]
mod tests {
    #[test]
    fn feasible_node_sampling_matches_kube_scheduler() {
        assert_eq!(super::feasible_nodes_to_find(50), 50);
        assert_eq!(super::feasible_nodes_to_find(1000), 420);
        assert_eq!(super::feasible_nodes_to_find(2000), 680);
        assert_eq!(super::feasible_nodes_to_find(10_000), 500);
    }
}

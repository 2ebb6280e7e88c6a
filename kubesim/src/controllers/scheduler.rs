//! The scheduler: binds pending pods to nodes where they fit, least-allocated
//! first; otherwise records `PodScheduled=False`, reason `Unschedulable`, with
//! kube-scheduler's summary message — the condition Karpenter provisions for.

use super::Ctx;
use super::fit::{Snapshot, unfit_reason};
use crate::store::{Part, now};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One scheduling pass over every pending pod.
pub(crate) fn pass(ctx: &Ctx) {
    let pods_rt = ctx.rt("", "pods");
    let nodes = ctx.list(&ctx.rt("", "nodes"));
    let pods = ctx.list(&pods_rt);
    let mut pending: Vec<&Value> = pods
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| is_pending(p))
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
    for pod in pending {
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut best: Option<(&str, f64)> = None;
        for node in &snapshot.nodes {
            match unfit_reason(pod, node, &snapshot) {
                Some(reason) => *reasons.entry(reason).or_default() += 1,
                None => {
                    let name = node["metadata"]["name"].as_str().unwrap_or_default();
                    let load = cpu_load(node, &snapshot, name);
                    if best.is_none_or(|(_, l)| load < l) {
                        best = Some((name, load));
                    }
                }
            }
        }
        match best {
            Some((node, _)) => {
                let node = node.to_string();
                if bind(ctx, &pods_rt, pod, &node) {
                    snapshot.place(pod, &node);
                }
            }
            None => mark_unschedulable(ctx, &pods_rt, pod, nodes.len(), &reasons),
        }
    }
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

fn cpu_load(node: &Value, snapshot: &Snapshot, name: &str) -> f64 {
    let capacity = super::fit::allocatable(node)
        .get("cpu")
        .map(|q| q.as_f64())
        .unwrap_or(0.0)
        .max(0.001);
    let used: f64 = snapshot
        .pods_by_node
        .get(name)
        .into_iter()
        .flatten()
        .filter_map(|p| super::fit::pod_requests(p).get("cpu").map(|q| q.as_f64()))
        .sum();
    used / capacity
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

//! The kubelet stand-in: nodes without a Ready condition become Ready after a
//! delay; bound pods start Running and Ready; pods being deleted on a node are
//! removed; pods on nodes that no longer exist are garbage-collected.

use super::Ctx;
use super::scheduler::set_condition;
use crate::store::{DeleteOptions, Part, now};
use serde_json::{Value, json};
use std::collections::HashSet;

/// One kubelet pass over every node and bound pod.
pub(crate) fn pass(ctx: &Ctx) {
    let nodes_rt = ctx.rt("", "nodes");
    let pods_rt = ctx.rt("", "pods");
    let nodes = ctx.list(&nodes_rt);
    let mut ready_nodes = HashSet::new();
    let mut all_nodes = HashSet::new();
    for node in &nodes {
        let name = node["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        all_nodes.insert(name.clone());
        let has_ready = node["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready");
        if super::fit::is_ready(node) {
            ready_nodes.insert(name);
        } else if !has_ready && age(node) >= ctx.options.node_ready_delay {
            let mut status = (**node).clone();
            set_condition(
                &mut status,
                json!({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastTransitionTime": now(), "lastHeartbeatTime": now()}),
            );
            if ctx.write(&nodes_rt, status, Part::Status).is_some() {
                ready_nodes.insert(name);
            }
        }
    }
    let pods = ctx.list(&pods_rt);
    // Forget shutdowns of pods that are gone by other means.
    let live: HashSet<&str> = pods
        .iter()
        .filter_map(|p| p["metadata"]["uid"].as_str())
        .collect();
    ctx.stopping
        .lock()
        .expect("kubelet state")
        .retain(|uid, _| live.contains(uid.as_str()));
    for (index, pod) in pods.iter().enumerate() {
        let Some(node) = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) else {
            continue;
        };
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        if !all_nodes.contains(node) {
            // Pod garbage collection: the node is gone.
            let _ = ctx
                .sim
                .inner
                .store
                .delete(&pods_rt, ns, name, &DeleteOptions::default());
            continue;
        }
        if pod["metadata"]["deletionTimestamp"].is_string() {
            let no_finalizers = pod["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty);
            if no_finalizers && shut_down(ctx, pod) {
                let _ = ctx
                    .sim
                    .inner
                    .store
                    .delete(&pods_rt, ns, name, &DeleteOptions::default());
            }
            continue;
        }
        if pod["status"]["phase"] == "Pending"
            && ready_nodes.contains(node)
            && age(pod) >= ctx.options.pod_start_delay
        {
            start(ctx, &pods_rt, pod, index);
        }
    }
}

/// Whether a deleted pod's containers have stopped: `shutdown` after the kubelet
/// first saw the deletion (timestamps have one-second precision), or sooner when
/// the grace period is shorter.
fn shut_down(ctx: &Ctx, pod: &Value) -> bool {
    let grace = pod["metadata"]["deletionGracePeriodSeconds"]
        .as_u64()
        .map(std::time::Duration::from_secs);
    let needed = grace.map_or(ctx.options.pod_shutdown, |g| {
        g.min(ctx.options.pod_shutdown)
    });
    let uid = pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut stopping = ctx.stopping.lock().expect("kubelet state");
    let seen = *stopping
        .entry(uid.clone())
        .or_insert_with(std::time::Instant::now);
    let done = seen.elapsed() >= needed;
    if done {
        stopping.remove(&uid);
    }
    done
}

/// Time since the object was created.
fn age(obj: &Value) -> std::time::Duration {
    let created = obj["metadata"]["creationTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    created
        .and_then(|t| jiff::Timestamp::now().duration_since(t).try_into().ok())
        .unwrap_or_default()
}

fn start(ctx: &Ctx, rt: &crate::resources::ResourceType, pod: &Value, index: usize) {
    let mut status = pod.clone();
    let started = now();
    let containers: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            json!({
                "name": c["name"], "image": c["image"], "imageID": "", "ready": true, "started": true,
                "restartCount": 0, "state": {"running": {"startedAt": started}}
            })
        })
        .collect();
    status["status"]["phase"] = json!("Running");
    status["status"]["startTime"] = json!(started);
    status["status"]["hostIP"] = json!("10.0.0.1");
    status["status"]["podIP"] = json!(format!(
        "10.244.{}.{}",
        (index / 250) % 250,
        index % 250 + 1
    ));
    status["status"]["containerStatuses"] = json!(containers);
    for condition in ["Initialized", "ContainersReady", "Ready"] {
        set_condition(
            &mut status,
            json!({"type": condition, "status": "True", "lastTransitionTime": started}),
        );
    }
    ctx.write(rt, status, Part::Status);
}

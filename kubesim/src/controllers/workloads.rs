//! Workload controllers: Deployments keep one ReplicaSet per pod template and
//! roll replicas over to the newest; ReplicaSets keep their pod count; DaemonSets
//! keep one pod on every node that matches and tolerates them.

use super::Ctx;
use super::fit::{is_ready, matches_node_affinity, tolerates};
use crate::resources::ResourceType;
use crate::store::{DeleteOptions, Part};
use serde_json::{Value, json};
use std::sync::Arc;

/// A short stable hash of a pod template (the `pod-template-hash` label).
fn template_hash(template: &Value) -> String {
    // FNV-1a over the canonical JSON text: stable across runs and platforms.
    let mut hash: u64 = 0xcbf29ce484222325;
    for byte in template.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x100000001b3);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHABET[((hash >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

fn owned_by(obj: &Value, owner: &Value) -> bool {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|r| r["uid"] == owner["metadata"]["uid"] && r["controller"] == true)
}

fn owner_reference(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "controller": true, "blockOwnerDeletion": true
    })
}

fn pod_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn live(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null() && !super::fit::is_finished(pod)
}

/// Writes `status` when it differs from the stored one.
fn set_status(ctx: &Ctx, rt: &ResourceType, obj: &Value, status: Value) {
    let mut merged = obj["status"].clone();
    if !merged.is_object() {
        merged = json!({});
    }
    json_patch::merge(&mut merged, &status);
    if merged != obj["status"] {
        let mut updated = obj.clone();
        updated["status"] = merged;
        ctx.write(rt, updated, Part::Status);
    }
}

/// Deployments -> ReplicaSets.
pub(crate) fn deployments(ctx: &Ctx) {
    let deploy_rt = ctx.rt("apps", "deployments");
    let rs_rt = ctx.rt("apps", "replicasets");
    let all_rs = ctx.list(&rs_rt);
    for deploy in ctx.list(&deploy_rt) {
        if deploy["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let ns = deploy["metadata"]["namespace"].as_str().unwrap_or_default();
        let desired = deploy["spec"]["replicas"].as_i64().unwrap_or(1);
        let template = &deploy["spec"]["template"];
        let hash = template_hash(template);
        let owned: Vec<&Arc<Value>> = all_rs.iter().filter(|rs| owned_by(rs, &deploy)).collect();
        let current = owned
            .iter()
            .find(|rs| rs["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
        let new_rs = match current {
            Some(rs) => (*rs).clone(),
            None => {
                let mut labels = template["metadata"]["labels"].clone();
                labels["pod-template-hash"] = json!(hash);
                let mut rs_template = template.clone();
                rs_template["metadata"]["labels"] = labels.clone();
                let mut selector = deploy["spec"]["selector"].clone();
                selector["matchLabels"]["pod-template-hash"] = json!(hash);
                let rs = json!({
                    "metadata": {
                        "name": format!("{}-{hash}", deploy["metadata"]["name"].as_str().unwrap_or_default()),
                        "namespace": ns, "labels": labels, "ownerReferences": [owner_reference(&deploy)],
                        "annotations": {"deployment.kubernetes.io/revision": (owned.len() + 1).to_string()}
                    },
                    "spec": {"replicas": desired, "selector": selector, "template": rs_template}
                });
                match ctx.create(&rs_rt, ns, rs) {
                    Ok(rs) => rs,
                    Err(_) => continue,
                }
            }
        };
        scale(ctx, &rs_rt, &new_rs, desired);
        let new_available = new_rs["status"]["availableReplicas"].as_i64().unwrap_or(0);
        for old in owned
            .iter()
            .filter(|rs| rs["metadata"]["uid"] != new_rs["metadata"]["uid"])
        {
            // Rolling over: old pods go as new ones become available.
            let keep = (desired - new_available)
                .max(0)
                .min(old["spec"]["replicas"].as_i64().unwrap_or(0));
            scale(ctx, &rs_rt, old, keep);
        }
        let sum = |field: &str| -> i64 {
            owned
                .iter()
                .map(|rs| rs["status"][field].as_i64().unwrap_or(0))
                .sum()
        };
        let updated = new_rs["status"]["replicas"].as_i64().unwrap_or(0);
        let available = sum("availableReplicas");
        let complete = updated == desired && sum("replicas") == desired && available >= desired;
        let condition = |type_: &str, ok: bool, reason: &str| json!({"type": type_, "status": if ok { "True" } else { "False" }, "reason": reason});
        set_status(
            ctx,
            &deploy_rt,
            &deploy,
            json!({
                "observedGeneration": deploy["metadata"]["generation"],
                "replicas": sum("replicas"),
                "updatedReplicas": updated,
                "readyReplicas": sum("readyReplicas"),
                "availableReplicas": available,
                "unavailableReplicas": (desired - available).max(0),
                "conditions": [
                    condition("Available", available >= desired, if available >= desired { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }),
                    condition("Progressing", true, if complete { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" }),
                ],
            }),
        );
    }
}

fn scale(ctx: &Ctx, rt: &ResourceType, rs: &Value, replicas: i64) {
    if rs["spec"]["replicas"].as_i64() != Some(replicas) {
        let mut scaled = rs.clone();
        scaled["spec"]["replicas"] = json!(replicas);
        ctx.write(rt, scaled, Part::Main);
    }
}

/// ReplicaSets -> Pods.
pub(crate) fn replica_sets(ctx: &Ctx) {
    let rs_rt = ctx.rt("apps", "replicasets");
    let pods_rt = ctx.rt("", "pods");
    let pods = ctx.list(&pods_rt);
    for rs in ctx.list(&rs_rt) {
        if rs["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let ns = rs["metadata"]["namespace"].as_str().unwrap_or_default();
        let desired = rs["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
        let mut mine: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| owned_by(p, &rs) && live(p))
            .collect();
        if mine.len() < desired {
            for _ in mine.len()..desired {
                let mut pod = json!({"metadata": rs["spec"]["template"]["metadata"].clone(), "spec": rs["spec"]["template"]["spec"].clone()});
                pod["metadata"]["generateName"] = json!(format!(
                    "{}-",
                    rs["metadata"]["name"].as_str().unwrap_or_default()
                ));
                pod["metadata"]["namespace"] = json!(ns);
                pod["metadata"]["ownerReferences"] = json!([owner_reference(&rs)]);
                let _ = ctx.create(&pods_rt, ns, pod);
            }
        } else if mine.len() > desired {
            // Remove unscheduled, then not-ready, then the newest pods first.
            mine.sort_by_key(|p| {
                (
                    p["spec"]["nodeName"].is_string(),
                    pod_ready(p),
                    std::cmp::Reverse(
                        p["metadata"]["creationTimestamp"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    ),
                )
            });
            for pod in &mine[..mine.len() - desired] {
                let name = pod["metadata"]["name"].as_str().unwrap_or_default();
                let graceful = ctx.sim.graceful_pod_delete(pod);
                let _ = ctx.sim.inner.store.delete(
                    &pods_rt,
                    ns,
                    name,
                    &DeleteOptions {
                        graceful,
                        ..Default::default()
                    },
                );
            }
        }
        let ready = mine.iter().filter(|p| pod_ready(p)).count();
        set_status(
            ctx,
            &rs_rt,
            &rs,
            json!({
                "replicas": mine.len(),
                "fullyLabeledReplicas": mine.len(),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "observedGeneration": rs["metadata"]["generation"],
            }),
        );
    }
}

/// Tolerations every DaemonSet pod gets (as the DaemonSet controller adds them).
fn daemon_tolerations() -> Vec<Value> {
    [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
        "node.kubernetes.io/disk-pressure",
        "node.kubernetes.io/memory-pressure",
        "node.kubernetes.io/pid-pressure",
        "node.kubernetes.io/unschedulable",
    ]
    .iter()
    .map(|key| json!({"key": key, "operator": "Exists"}))
    .collect()
}

/// DaemonSets -> one pod per eligible node.
pub(crate) fn daemon_sets(ctx: &Ctx) {
    let ds_rt = ctx.rt("apps", "daemonsets");
    let pods_rt = ctx.rt("", "pods");
    let nodes = ctx.list(&ctx.rt("", "nodes"));
    let pods = ctx.list(&pods_rt);
    for ds in ctx.list(&ds_rt) {
        if ds["metadata"]["deletionTimestamp"].is_string() {
            continue;
        }
        let ns = ds["metadata"]["namespace"].as_str().unwrap_or_default();
        let mut template = json!({"metadata": ds["spec"]["template"]["metadata"].clone(), "spec": ds["spec"]["template"]["spec"].clone()});
        let mut tolerations = template["spec"]["tolerations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        tolerations.extend(daemon_tolerations());
        template["spec"]["tolerations"] = json!(tolerations);
        let mine: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| owned_by(p, &ds) && live(p))
            .collect();
        let (mut desired, mut ready) = (0, 0);
        for node in &nodes {
            let node_name = node["metadata"]["name"].as_str().unwrap_or_default();
            let eligible = matches_node_affinity(&template, node)
                && node["spec"]["taints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|taint| {
                        !matches!(taint["effect"].as_str(), Some("NoSchedule" | "NoExecute"))
                            || template["spec"]["tolerations"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .any(|t| tolerates(t, taint))
                    });
            let existing = mine.iter().find(|p| p["spec"]["nodeName"] == node_name);
            match (eligible, existing) {
                (true, None) => {
                    let mut pod = template.clone();
                    pod["metadata"]["generateName"] = json!(format!(
                        "{}-",
                        ds["metadata"]["name"].as_str().unwrap_or_default()
                    ));
                    pod["metadata"]["namespace"] = json!(ns);
                    pod["metadata"]["ownerReferences"] = json!([owner_reference(&ds)]);
                    pod["spec"]["nodeName"] = json!(node_name);
                    let _ = ctx.create(&pods_rt, ns, pod);
                    desired += 1;
                }
                (true, Some(pod)) => {
                    desired += 1;
                    if pod_ready(pod) && is_ready(node) {
                        ready += 1;
                    }
                }
                (false, Some(pod)) => {
                    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
                    let _ =
                        ctx.sim
                            .inner
                            .store
                            .delete(&pods_rt, ns, name, &DeleteOptions::default());
                }
                (false, None) => {}
            }
        }
        let scheduled = mine
            .iter()
            .filter(|p| {
                nodes
                    .iter()
                    .any(|n| n["metadata"]["name"] == p["spec"]["nodeName"])
            })
            .count();
        set_status(
            ctx,
            &ds_rt,
            &ds,
            json!({
                "desiredNumberScheduled": desired,
                "currentNumberScheduled": scheduled,
                "updatedNumberScheduled": scheduled,
                "numberReady": ready,
                "numberAvailable": ready,
                "numberMisscheduled": 0,
                "observedGeneration": ds["metadata"]["generation"],
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn template_hash_is_stable_and_sensitive() {
        let a = serde_json::json!({"spec": {"containers": [{"name": "c", "image": "x:1"}]}});
        let b = serde_json::json!({"spec": {"containers": [{"name": "c", "image": "x:2"}]}});
        assert_eq!(super::template_hash(&a), super::template_hash(&a.clone()));
        assert_ne!(super::template_hash(&a), super::template_hash(&b));
        assert_eq!(super::template_hash(&a).len(), 10);
    }
}

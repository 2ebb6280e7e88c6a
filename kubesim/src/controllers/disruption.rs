//! PodDisruptionBudgets: status kept current from the pods they select, and the
//! eviction decision the Eviction API makes (429 when the budget has no room).

use super::Ctx;
use super::fit::selector_matches;
use crate::Kubesim;
use crate::status::ApiError;
use crate::store::Part;
use serde_json::{Value, json};

/// An int-or-percent budget value against a pod count (percentages round up).
fn scaled(value: &Value, total: i64) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => match s.strip_suffix('%') {
            Some(p) => p.parse::<i64>().ok().map(|p| (p * total + 99) / 100),
            None => s.parse().ok(),
        },
        _ => None,
    }
}

fn healthy(pod: &Value) -> bool {
    pod["metadata"]["deletionTimestamp"].is_null()
        && pod["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Pods the budget expects: for pods a workload controller owns, that
/// controller's `spec.replicas` (so a pod just evicted and not yet replaced still
/// counts, as the real disruption controller does); other pods count themselves.
fn expected_pods(selected: &[&Value], scale_of: &dyn Fn(&str, &str, &str) -> Option<i64>) -> i64 {
    let mut owners = std::collections::HashSet::new();
    let mut expected = 0;
    for pod in selected {
        let controller = pod["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["controller"] == true);
        let scaled = controller.and_then(|r| {
            let kind = r["kind"].as_str()?;
            let replicas = scale_of(
                kind,
                pod["metadata"]["namespace"].as_str()?,
                r["name"].as_str()?,
            )?;
            Some((r["uid"].as_str()?.to_string(), replicas))
        });
        match scaled {
            Some((uid, replicas)) => {
                if owners.insert(uid) {
                    expected += replicas;
                }
            }
            None => expected += 1,
        }
    }
    expected
}

/// `spec.replicas` of a scalable workload, looked up in the store.
fn scale_lookup(sim: &Kubesim) -> impl Fn(&str, &str, &str) -> Option<i64> + '_ {
    move |kind, ns, name| {
        let plural = match kind {
            "ReplicaSet" => "replicasets",
            "StatefulSet" => "statefulsets",
            _ => return None,
        };
        let rt = sim.inner.registry.get("apps", "v1", plural)?;
        sim.inner.store.get(&rt, ns, name).ok()?["spec"]["replicas"].as_i64()
    }
}

/// The status a PDB should have given the pods in its namespace.
fn budget_status(
    pdb: &Value,
    pods: &[std::sync::Arc<Value>],
    scale_of: &dyn Fn(&str, &str, &str) -> Option<i64>,
) -> Value {
    let ns = &pdb["metadata"]["namespace"];
    let selected: Vec<&Value> = pods
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| {
            p["metadata"]["namespace"] == *ns
                && selector_matches(&pdb["spec"]["selector"], &p["metadata"]["labels"])
        })
        .filter(|p| !super::fit::is_finished(p))
        .collect();
    let expected = expected_pods(&selected, scale_of);
    let current = selected.iter().filter(|p| healthy(p)).count() as i64;
    let desired = if let Some(min) = scaled(&pdb["spec"]["minAvailable"], expected) {
        min
    } else if let Some(max) = scaled(&pdb["spec"]["maxUnavailable"], expected) {
        (expected - max).max(0)
    } else {
        0
    };
    let allowed = (current - desired).max(0);
    json!({
        "observedGeneration": pdb["metadata"]["generation"],
        "expectedPods": expected,
        "currentHealthy": current,
        "desiredHealthy": desired,
        "disruptionsAllowed": allowed,
        "conditions": [{
            "type": "DisruptionAllowed",
            "status": if allowed > 0 { "True" } else { "False" },
            "reason": if allowed > 0 { "SufficientPods" } else { "InsufficientPods" },
            "message": "",
            "lastTransitionTime": "1970-01-01T00:00:00Z",
        }],
    })
}

/// Keeps every PDB's status current.
pub(crate) fn pass(ctx: &Ctx) {
    let pdb_rt = ctx.rt("policy", "poddisruptionbudgets");
    let pods = ctx.list(&ctx.rt("", "pods"));
    let scale_of = scale_lookup(&ctx.sim);
    for pdb in ctx.list(&pdb_rt) {
        let status = budget_status(&pdb, &pods, &scale_of);
        let same = [
            "expectedPods",
            "currentHealthy",
            "desiredHealthy",
            "disruptionsAllowed",
            "observedGeneration",
        ]
        .iter()
        .all(|k| pdb["status"][k] == status[k]);
        if !same {
            let mut updated = (*pdb).clone();
            updated["status"] = status;
            ctx.write(&pdb_rt, updated, Part::Status);
        }
    }
}

/// The Eviction API's decision for a pod: allowed (the budget is charged), or
/// 429 when a PodDisruptionBudget has no room. Unhealthy pods may always go.
pub(crate) fn admit_eviction(sim: &Kubesim, pod: &Value) -> Result<(), ApiError> {
    let pdb_rt = sim
        .inner
        .registry
        .get("policy", "v1", "poddisruptionbudgets")
        .expect("built-in");
    let pods_rt = sim.inner.registry.get("", "v1", "pods").expect("built-in");
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let (budgets, _) = sim.inner.store.list(&pdb_rt, Some(ns));
    let matching: Vec<_> = budgets
        .iter()
        .filter(|b| selector_matches(&b["spec"]["selector"], &pod["metadata"]["labels"]))
        .collect();
    if matching.len() > 1 {
        return Err(ApiError {
            code: 500,
            reason: "InternalError",
            message: "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.".into(),
            details: None,
        });
    }
    let Some(pdb) = matching.first() else {
        return Ok(());
    };
    if !healthy(pod) {
        return Ok(());
    }
    let (pods, _) = sim.inner.store.list(&pods_rt, Some(ns));
    let mut status = budget_status(pdb, &pods, &scale_lookup(sim));
    let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
    if allowed <= 0 {
        return Err(ApiError::too_many_requests(format!(
            "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget {} needs {} healthy pods and has {} currently",
            pdb["metadata"]["name"].as_str().unwrap_or_default(),
            status["desiredHealthy"],
            status["currentHealthy"],
        )));
    }
    status["disruptionsAllowed"] = json!(allowed - 1);
    status["disruptedPods"] =
        json!({pod["metadata"]["name"].as_str().unwrap_or_default(): crate::store::now()});
    let mut updated = (***pdb).clone();
    updated["status"] = status;
    sim.inner.store.update(
        &pdb_rt,
        ns,
        pdb["metadata"]["name"].as_str().unwrap_or_default(),
        updated,
        Part::Status,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn pod(name: &str, ready: bool) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
    }

    #[test]
    fn budgets_from_min_available_and_max_unavailable() {
        let pods = vec![pod("a", true), pod("b", true), pod("c", false)];
        let min = json!({"metadata": {"namespace": "default", "generation": 1}, "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}});
        let no_owners = |_: &str, _: &str, _: &str| None;
        let s = budget_status(&min, &pods, &no_owners);
        assert_eq!(
            (
                s["expectedPods"].as_i64(),
                s["currentHealthy"].as_i64(),
                s["disruptionsAllowed"].as_i64()
            ),
            (Some(3), Some(2), Some(0))
        );
        let pct = json!({"metadata": {"namespace": "default"}, "spec": {"maxUnavailable": "34%", "selector": {"matchLabels": {"app": "web"}}}});
        // 34% of 3 rounds up to 2 unavailable: desired 1, healthy 2 -> 1 allowed.
        assert_eq!(
            budget_status(&pct, &pods, &no_owners)["disruptionsAllowed"],
            1
        );
        // Owned pods count their controller's scale: one of three missing still counts.
        let owned: Vec<Arc<Value>> = ["a", "b"]
            .iter()
            .map(|n| {
                let mut p = (*pod(n, true)).clone();
                p["metadata"]["ownerReferences"] =
                    json!([{"kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true}]);
                Arc::new(p)
            })
            .collect();
        let scale = |_: &str, _: &str, _: &str| Some(3);
        let max1 = json!({"metadata": {"namespace": "default"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
        let s = budget_status(&max1, &owned, &scale);
        assert_eq!(
            (s["expectedPods"].as_i64(), s["disruptionsAllowed"].as_i64()),
            (Some(3), Some(0))
        );
    }
}

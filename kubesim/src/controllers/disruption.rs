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

/// The status a PDB should have given the pods in its namespace.
fn budget_status(pdb: &Value, pods: &[std::sync::Arc<Value>]) -> Value {
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
    let expected = selected.len() as i64;
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
    for pdb in ctx.list(&pdb_rt) {
        let status = budget_status(&pdb, &pods);
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
    let mut status = budget_status(pdb, &pods);
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
        let s = budget_status(&min, &pods);
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
        assert_eq!(budget_status(&pct, &pods)["disruptionsAllowed"], 1);
    }
}

//! The `scale` subresource of Deployments, ReplicaSets and StatefulSets, as an
//! `autoscaling/v1` Scale (what `kubectl scale` and autoscalers use).

use super::Target;
use crate::Kubesim;
use crate::patch::{self, PatchType};
use crate::status::ApiError;
use crate::store::Part;
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};

fn to_scale(obj: &Value) -> Value {
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {
            "name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
            "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

/// `GET .../{name}/scale`.
pub(crate) fn get(sim: &Kubesim, t: &Target, ns: &str, name: &str) -> Result<Value, ApiError> {
    let obj = sim.inner.store.get(&t.rt, ns, name)?;
    Ok(to_scale(&obj))
}

/// `PUT` or `PATCH .../{name}/scale`: sets `spec.replicas`.
pub(crate) fn set(
    sim: &Kubesim,
    t: &Target,
    ns: &str,
    name: &str,
    method: &Method,
    content_type: &str,
    body: &Bytes,
) -> Result<Value, ApiError> {
    let current = sim.inner.store.get(&t.rt, ns, name)?;
    let scale = to_scale(&current);
    let desired = if *method == Method::PUT {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid Scale: {e}")))?
    } else {
        match PatchType::from_content_type(content_type)? {
            PatchType::Strategic => patch::strategic(&scale, body)?,
            kind @ (PatchType::Json | PatchType::Merge) => {
                patch::json_or_merge(&scale, body, kind)?
            }
            PatchType::Apply => return Err(ApiError::unsupported_media_type(content_type)),
        }
    };
    let replicas = desired["spec"]["replicas"]
        .as_i64()
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::invalid(
                "Scale",
                name,
                vec![(
                    "spec.replicas".into(),
                    "must be a non-negative integer".into(),
                )],
            )
        })?;
    let mut updated = (*current).clone();
    updated["spec"]["replicas"] = json!(replicas);
    if let Some(rv) = desired["metadata"]["resourceVersion"].as_str() {
        updated["metadata"]["resourceVersion"] = json!(rv);
    }
    let stored = sim
        .inner
        .store
        .update(&t.rt, ns, name, updated, Part::Main)?;
    Ok(to_scale(&stored))
}

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
    // A request that names a resourceVersion is conditional on it; any
    // other is retried on a conflict, as the API server does.
    let precondition = String::from_utf8_lossy(body).contains("resourceVersion");
    for _ in 0..super::objects::PATCH_RETRIES {
        let current = sim.inner.store.get(&t.rt, ns, name)?;
        let updated = scaled(&current, name, method, content_type, body, precondition)?;
        match sim.inner.store.update(&t.rt, ns, name, updated, Part::Main) {
            Err(e) if e.code == 409 && !precondition => continue,
            other => return other.map(|stored| to_scale(&stored)),
        }
    }
    Err(ApiError::conflict(&t.rt.group_resource(), name))
}

/// The object with the replicas the request asks for, conditional on the
/// request's resourceVersion when `precondition`.
fn scaled(
    current: &Value,
    name: &str,
    method: &Method,
    content_type: &str,
    body: &Bytes,
    precondition: bool,
) -> Result<Value, ApiError> {
    let scale = to_scale(current);
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
    let mut updated = current.clone();
    updated["spec"]["replicas"] = json!(replicas);
    if precondition && let Some(rv) = desired["metadata"]["resourceVersion"].as_str() {
        updated["metadata"]["resourceVersion"] = json!(rv);
    }
    Ok(updated)
}

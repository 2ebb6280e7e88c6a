//! OpenAPI v3 documents, to the extent kubectl 1.27–1.33 reads them: the index
//! at `/openapi/v3`, and per group-version documents whose PATCH operations
//! declare `fieldValidation` (so kubectl validates server-side instead of
//! downloading schemas) and whose components carry CRD schemas tagged with
//! `x-kubernetes-group-version-kind` (so `kubectl apply` finds patch metadata).

use super::Reply;
use crate::Kubesim;
use crate::resources::ResourceType;
use crate::status::ApiError;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// The URL path of a group-version's document (`api/v1`, `apis/apps/v1`).
fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: where each group-version's document is.
pub(crate) fn index(sim: &Kubesim) -> Reply {
    let gvs: BTreeSet<(String, String)> = sim
        .inner
        .registry
        .all()
        .into_iter()
        .map(|rt| (rt.group, rt.version))
        .collect();
    let generation = sim.inner.store.resource_version();
    let mut paths = Map::new();
    for (group, version) in gvs {
        let path = gv_path(&group, &version);
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={generation:016X}")}),
        );
    }
    Reply::ok(json!({"paths": paths}))
}

/// `/openapi/v2` for kubectl < 1.28, which loads it (as protobuf) before `apply`:
/// an empty `openapi_v2.Document`. Zero bytes are a valid empty protobuf message;
/// kubectl then patches built-in kinds with its compiled-in metadata and CRs with
/// JSON merge patches, and validates server-side where OpenAPI v3 says it can.
pub(crate) fn v2_empty() -> http::Response<crate::ResponseBody> {
    use http_body_util::{BodyExt, Full};
    http::Response::builder()
        .status(200)
        .header(
            http::header::CONTENT_TYPE,
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
        )
        .body(Full::new(bytes::Bytes::new()).boxed_unsync())
        .expect("valid response")
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}`.
pub(crate) fn document(sim: &Kubesim, group: &str, version: &str) -> Result<Reply, ApiError> {
    let kinds: Vec<ResourceType> = sim
        .inner
        .registry
        .all()
        .into_iter()
        .filter(|rt| rt.group == group && rt.version == version)
        .collect();
    if kinds.is_empty() {
        return Err(ApiError::not_found("openapi", &gv_path(group, version)));
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    for rt in &kinds {
        let gvk = json!([{"group": rt.group, "version": rt.version, "kind": rt.kind}]);
        let base = if rt.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}",
                gv_path(group, version),
                rt.plural
            )
        } else {
            format!("/{}/{}", gv_path(group, version), rt.plural)
        };
        let operation = |verb: &str, params: &[&str]| {
            let parameters: Vec<Value> = params
                .iter()
                .map(|name| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}}))
                .collect();
            json!({
                "operationId": format!("{verb}{}", rt.kind),
                "parameters": parameters,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": verb,
                "x-kubernetes-group-version-kind": gvk[0],
            })
        };
        let write_params = ["dryRun", "fieldManager", "fieldValidation"];
        paths.insert(base.clone(), json!({
            "get": operation("list", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"]),
            "post": operation("post", &write_params),
        }));
        paths.insert(format!("{base}/{{name}}"), json!({
            "get": operation("get", &[]),
            "put": operation("put", &write_params),
            "patch": operation("patch", &["dryRun", "fieldManager", "fieldValidation", "force"]),
            "delete": operation("delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
        }));
        if let Some(schema) = &rt.schema {
            let mut schema = serde_json::to_value(schema.as_ref()).unwrap_or_default();
            schema["x-kubernetes-group-version-kind"] = gvk;
            let group_prefix: Vec<&str> = rt.group.split('.').rev().collect();
            schemas.insert(
                format!("{}.{}.{}", group_prefix.join("."), rt.version, rt.kind),
                schema,
            );
        }
    }
    Ok(Reply::ok(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.31.0-kubesim"},
        "paths": paths,
        "components": {"schemas": schemas},
    })))
}

//! Verbs on resources: get, list (selectors, paging), create, update, patch,
//! delete, deletecollection, and the pod binding subresource.

use super::{Query, Reply, Target, scale, watch};
use crate::admission;
use crate::patch::{self, PatchType};
use crate::selectors::Selector;
use crate::status::ApiError;
use crate::store::{DeleteOptions, Part, Propagation};
use crate::{Kubesim, store};
use base64::Engine;
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use std::sync::Arc;

/// Patches are retried this often when a concurrent write wins the race.
pub(crate) const PATCH_RETRIES: usize = 5;

/// Serves one request on a resource.
pub(crate) async fn serve(
    sim: &Kubesim,
    t: Target,
    method: &Method,
    query: &Query,
    content_type: &str,
    body: &Bytes,
) -> Result<Reply, ApiError> {
    let ns = t.namespace.clone().unwrap_or_default();
    if t.rt.namespaced && t.namespace.is_none() && !matches!(*method, Method::GET) {
        return Err(ApiError::bad_request(format!(
            "{} is namespaced: use /namespaces/{{namespace}}/{}",
            t.rt.plural, t.rt.plural
        )));
    }
    let dry_run = query.get("dryRun") == Some("All");
    match (method.clone(), t.name.as_deref(), t.subresource.as_deref()) {
        (Method::GET, None, _) if query.flag("watch") => watch::serve(sim, &t, query),
        (Method::GET, None, _) => list(sim, &t, query),
        (Method::GET, Some(name), Some("scale")) => scale::get(sim, &t, &ns, name).map(Reply::ok),
        (Method::GET, Some(name), _) => {
            let obj = sim.inner.store.get(&t.rt, &ns, name)?;
            if query.as_table && t.subresource.is_none() {
                let rv = obj["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                return Ok(Reply::ok(super::table::table(&t.rt, &[obj.as_ref()], &rv)));
            }
            Ok(Reply::ok((*obj).clone()))
        }
        (Method::POST, None, None) => {
            let obj = parse_body(body, content_type)?;
            create(sim, &t, &ns, obj, dry_run).map(|o| Reply::Json(201, o))
        }
        (Method::POST, Some(name), Some("binding")) => bind(sim, &t, &ns, name, body),
        (Method::POST, Some(name), Some("eviction")) => evict(sim, &t, &ns, name, query),
        (Method::PUT | Method::PATCH, Some(name), Some("scale")) => {
            scale::set(sim, &t, &ns, name, method, content_type, body).map(Reply::ok)
        }
        (Method::PUT, Some(name), sub) => {
            let obj = parse_body(body, content_type)?;
            update(sim, &t, &ns, name, obj, part(sub), dry_run).map(Reply::ok)
        }
        (Method::PATCH, Some(name), sub) => {
            let kind = PatchType::from_content_type(content_type)?;
            patch(sim, &t, &ns, name, kind, body, part(sub), query, dry_run)
        }
        (Method::DELETE, Some(name), None) => {
            let mut opts = delete_options(query, content_type, body)?;
            if t.rt.group.is_empty()
                && t.rt.plural == "pods"
                && opts.grace_period_seconds != Some(0)
            {
                let pod = sim.inner.store.get(&t.rt, &ns, name)?;
                opts.graceful = sim.graceful_pod_delete(&pod);
                let spec_grace = pod["spec"]["terminationGracePeriodSeconds"].as_i64();
                opts.grace_period_seconds = opts.grace_period_seconds.or(spec_grace).or(Some(30));
            }
            delete(sim, &t, &ns, name, &opts).map(Reply::ok)
        }
        (Method::DELETE, None, None) => delete_collection(sim, &t, query, content_type, body),
        (method, _, sub) => Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on {}{}",
            t.rt.group_resource(),
            sub.map(|s| format!("/{s}")).unwrap_or_default()
        ))),
    }
}

fn part(subresource: Option<&str>) -> Part {
    if subresource == Some("status") {
        Part::Status
    } else {
        Part::Main
    }
}

/// JSON, YAML for server-side apply bodies, or protobuf for the kinds
/// [`super::protobuf`] reads.
fn parse_body(body: &Bytes, content_type: &str) -> Result<Value, ApiError> {
    if content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    let value: Value = if content_type.contains("protobuf") {
        super::protobuf::decode(body, content_type)?
    } else if content_type.contains("yaml") {
        serde_norway::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid YAML body: {e}")))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    Ok(value)
}

fn check_kind(t: &Target, obj: &Value) -> Result<(), ApiError> {
    if let Some(kind) = obj["kind"].as_str()
        && kind != t.rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the body is a {kind}, the URL is for {}",
            t.rt.kind
        )));
    }
    if let Some(api_version) = obj["apiVersion"].as_str()
        && api_version != t.rt.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "apiVersion {api_version} does not match {}",
            t.rt.api_version()
        )));
    }
    if let Some(body_ns) = obj["metadata"]["namespace"].as_str()
        && t.rt.namespaced
        && !body_ns.is_empty()
        && Some(body_ns) != t.namespace.as_deref()
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn list(sim: &Kubesim, t: &Target, query: &Query) -> Result<Reply, ApiError> {
    let labels = Selector::labels(query.get("labelSelector").unwrap_or_default())?;
    let fields = Selector::fields(query.get("fieldSelector").unwrap_or_default())?;
    let (items, rv) = sim.inner.store.list(&t.rt, t.namespace.as_deref());
    let after = query.get("continue").map(decode_continue).transpose()?;
    let mut matching = items
        .into_iter()
        .filter(|o| labels.matches_labels(o) && fields.matches_fields(o))
        .filter(|o| {
            after.as_ref().is_none_or(|(ns, name)| {
                let key = (
                    o["metadata"]["namespace"].as_str().unwrap_or_default(),
                    o["metadata"]["name"].as_str().unwrap_or_default(),
                );
                key > (ns.as_str(), name.as_str())
            })
        });
    let limit = query.number("limit").filter(|l| *l > 0).map(|l| l as usize);
    let page: Vec<Arc<Value>> = match limit {
        Some(limit) => matching.by_ref().take(limit).collect(),
        None => matching.by_ref().collect(),
    };
    let remaining = matching.count();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if remaining > 0
        && let Some(last) = page.last()
    {
        metadata["continue"] = json!(encode_continue(last));
        metadata["remainingItemCount"] = json!(remaining);
    }
    let items: Vec<&Value> = page.iter().map(|o| o.as_ref()).collect();
    if query.as_table {
        let mut table = super::table::table(&t.rt, &items, &rv.to_string());
        table["metadata"] = metadata;
        return Ok(Reply::ok(table));
    }
    Ok(Reply::ok(json!({
        "kind": format!("{}List", t.rt.kind),
        "apiVersion": t.rt.api_version(),
        "metadata": metadata,
        "items": items,
    })))
}

fn encode_continue(last: &Value) -> String {
    let key = json!([
        last["metadata"]["namespace"].as_str().unwrap_or_default(),
        last["metadata"]["name"]
    ]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.to_string())
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let invalid = || ApiError::bad_request(format!("invalid continue token {token:?}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| invalid())?;
    let key: (String, String) = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    Ok(key)
}

pub(crate) fn create(
    sim: &Kubesim,
    t: &Target,
    ns: &str,
    mut obj: Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    check_kind(t, &obj)?;
    admission::admit(&t.rt, &mut obj, None)?;
    if dry_run {
        return Ok(obj);
    }
    let stored = sim.inner.store.create(&t.rt, ns, obj)?;
    admission::after_write(sim, &t.rt, &stored)?;
    Ok((*stored).clone())
}

fn update(
    sim: &Kubesim,
    t: &Target,
    ns: &str,
    name: &str,
    mut obj: Value,
    part: Part,
    dry_run: bool,
) -> Result<Value, ApiError> {
    check_kind(t, &obj)?;
    let current = sim.inner.store.get(&t.rt, ns, name)?;
    if part == Part::Status && current.get("spec").is_some() {
        // A status write keeps the stored spec; validate what will be stored.
        obj["spec"] = current["spec"].clone();
    }
    admission::admit(&t.rt, &mut obj, Some(&current))?;
    if dry_run {
        return Ok(obj);
    }
    let stored = sim.inner.store.update(&t.rt, ns, name, obj, part)?;
    admission::after_write(sim, &t.rt, &stored)?;
    Ok((*stored).clone())
}

#[allow(clippy::too_many_arguments)]
fn patch(
    sim: &Kubesim,
    t: &Target,
    ns: &str,
    name: &str,
    kind: PatchType,
    body: &Bytes,
    part: Part,
    query: &Query,
    dry_run: bool,
) -> Result<Reply, ApiError> {
    let precondition = String::from_utf8_lossy(body).contains("resourceVersion");
    for _ in 0..PATCH_RETRIES {
        let current = match sim.inner.store.get(&t.rt, ns, name) {
            Ok(current) => current,
            Err(e) if e.code == 404 && kind == PatchType::Apply => {
                // Server-side apply creates what does not exist yet.
                let applied = parse_body(body, "application/apply-patch+yaml")?;
                check_kind(t, &applied)?;
                let obj = crate::apply::apply(
                    None,
                    &applied,
                    query.get("fieldManager"),
                    query.flag("force"),
                )?;
                return create(sim, t, ns, obj, dry_run).map(|o| Reply::Json(201, o));
            }
            Err(e) => return Err(e),
        };
        let patched = match kind {
            PatchType::Json | PatchType::Merge => patch::json_or_merge(&current, body, kind)?,
            PatchType::Strategic => patch::strategic(&current, body)?,
            PatchType::Apply => {
                let applied = parse_body(body, "application/apply-patch+yaml")?;
                check_kind(t, &applied)?;
                crate::apply::apply(
                    Some(&current),
                    &applied,
                    query.get("fieldManager"),
                    query.flag("force"),
                )?
            }
        };
        match update(sim, t, ns, name, patched, part, dry_run) {
            Err(e) if e.code == 409 && e.reason == "Conflict" && !precondition => continue,
            other => return other.map(Reply::ok),
        }
    }
    Err(ApiError::conflict(&t.rt.group_resource(), name))
}

/// DeleteOptions from the body and query. A protobuf body (kubectl's typed
/// clients) is not decoded: its options fall back to the query's and defaults.
fn delete_options(
    query: &Query,
    content_type: &str,
    body: &Bytes,
) -> Result<DeleteOptions, ApiError> {
    let body: Value = if body.is_empty() || content_type.contains("protobuf") {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let propagation = body["propagationPolicy"]
        .as_str()
        .or(query.get("propagationPolicy"));
    let propagation = match propagation {
        None | Some("Background") => Propagation::Background,
        Some("Foreground") => Propagation::Foreground,
        Some("Orphan") => Propagation::Orphan,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unknown propagationPolicy {other:?}"
            )));
        }
    };
    let orphan = body["orphanDependents"].as_bool() == Some(true);
    Ok(DeleteOptions {
        uid: body["preconditions"]["uid"].as_str().map(str::to_string),
        resource_version: body["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_string),
        propagation: if orphan {
            Propagation::Orphan
        } else {
            propagation
        },
        grace_period_seconds: body["gracePeriodSeconds"]
            .as_i64()
            .or(query.number("gracePeriodSeconds").map(|n| n as i64)),
        graceful: false,
    })
}

pub(crate) fn delete(
    sim: &Kubesim,
    t: &Target,
    ns: &str,
    name: &str,
    opts: &DeleteOptions,
) -> Result<Value, ApiError> {
    let deleted = sim.inner.store.delete(&t.rt, ns, name, opts)?;
    admission::after_delete(sim, &t.rt, &deleted);
    Ok((*deleted).clone())
}

fn delete_collection(
    sim: &Kubesim,
    t: &Target,
    query: &Query,
    content_type: &str,
    body: &Bytes,
) -> Result<Reply, ApiError> {
    let opts = delete_options(query, content_type, body)?;
    let labels = Selector::labels(query.get("labelSelector").unwrap_or_default())?;
    let fields = Selector::fields(query.get("fieldSelector").unwrap_or_default())?;
    let (items, _) = sim.inner.store.list(&t.rt, t.namespace.as_deref());
    let mut deleted = Vec::new();
    for obj in items
        .iter()
        .filter(|o| labels.matches_labels(o) && fields.matches_fields(o))
    {
        let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        match delete(sim, t, ns, name, &opts) {
            Ok(obj) => deleted.push(obj),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Reply::ok(json!({
        "kind": format!("{}List", t.rt.kind),
        "apiVersion": t.rt.api_version(),
        "metadata": {"resourceVersion": sim.inner.store.resource_version().to_string()},
        "items": deleted,
    })))
}

/// `POST pods/{name}/binding`: sets `spec.nodeName` once.
fn bind(sim: &Kubesim, t: &Target, ns: &str, name: &str, body: &Bytes) -> Result<Reply, ApiError> {
    let binding: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid Binding: {e}")))?;
    let node = binding["target"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "Binding",
                name,
                vec![("target.name".into(), "a node name is required".into())],
            )
        })?;
    let current = sim.inner.store.get(&t.rt, ns, name)?;
    if current["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty())
    {
        return Err(ApiError {
            code: 409,
            reason: "Conflict",
            message: format!(
                "Operation cannot be fulfilled on pods/binding {name:?}: pod {name} is already assigned to node {:?}",
                current["spec"]["nodeName"].as_str().unwrap_or_default()
            ),
            details: None,
        });
    }
    let mut pod = (*current).clone();
    pod["spec"]["nodeName"] = json!(node);
    let conditions = pod["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut conditions: Vec<Value> = conditions
        .into_iter()
        .filter(|c| c["type"] != "PodScheduled")
        .collect();
    conditions.push(
        json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": store::now()}),
    );
    pod["status"]["conditions"] = json!(conditions);
    sim.inner.store.update(&t.rt, ns, name, pod, Part::Main)?;
    let status_pod = {
        let mut p = (*sim.inner.store.get(&t.rt, ns, name)?).clone();
        p["status"]["conditions"] = json!(conditions);
        p
    };
    sim.inner
        .store
        .update(&t.rt, ns, name, status_pod, Part::Status)?;
    Ok(Reply::Json(
        201,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// `POST pods/{name}/eviction`: a delete that PodDisruptionBudgets may refuse with
/// 429. The body (JSON or, from kubectl's typed client, protobuf) only names the
/// pod the URL already names, so it is not decoded; `dryRun` comes from the query.
fn evict(
    sim: &Kubesim,
    t: &Target,
    ns: &str,
    name: &str,
    query: &Query,
) -> Result<Reply, ApiError> {
    let pod = sim.inner.store.get(&t.rt, ns, name)?;
    if pod["metadata"]["deletionTimestamp"].is_string() {
        return Ok(Reply::Json(
            201,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ));
    }
    if query.get("dryRun") != Some("All") {
        let _one_at_a_time = sim.inner.evictions.lock().expect("eviction lock");
        let pod = sim.inner.store.get(&t.rt, ns, name)?;
        crate::controllers::disruption::admit_eviction(sim, &pod)?;
        let opts = DeleteOptions {
            graceful: sim.graceful_pod_delete(&pod),
            grace_period_seconds: pod["spec"]["terminationGracePeriodSeconds"]
                .as_i64()
                .or(Some(30)),
            ..Default::default()
        };
        delete(sim, t, ns, name, &opts)?;
    }
    Ok(Reply::Json(
        201,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

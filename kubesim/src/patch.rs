//! PATCH bodies: JSON patch (RFC 6902) and JSON merge patch (RFC 7386) through
//! the `json-patch` crate, and strategic merge patch for built-in kinds with the
//! list merge keys Kubernetes declares (containers by `name`, conditions by
//! `type`, finalizers as a set, ...) and the `$patch`, `$retainKeys`,
//! `$deleteFromPrimitiveList` and `$setElementOrder` directives.

use crate::status::ApiError;
use serde_json::{Map, Value};

/// The patch formats a PATCH request may carry (by `Content-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json`.
    Json,
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// From the request's content type.
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(PatchType::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Applies a JSON patch or merge patch to a copy of `target`.
pub fn json_or_merge(target: &Value, patch: &[u8], kind: PatchType) -> Result<Value, ApiError> {
    let mut doc = target.clone();
    match kind {
        PatchType::Json => {
            let ops: Vec<Value> = serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            // As the API server's JSON-patch library does, `test` of a missing path
            // against null passes (kube-rs' finalizer helper relies on it).
            let ops: Vec<Value> = ops
                .into_iter()
                .filter(|op| {
                    let missing_null_test = op["op"] == "test"
                        && op["value"].is_null()
                        && op["path"]
                            .as_str()
                            .is_some_and(|p| doc.pointer(p).is_none_or(Value::is_null));
                    !missing_null_test
                })
                .collect();
            let ops: json_patch::Patch = serde_json::from_value(Value::Array(ops))
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            json_patch::patch(&mut doc, &ops).map_err(|e| ApiError {
                code: 422,
                reason: "Invalid",
                message: format!("the JSON patch could not be applied: {e}"),
                details: None,
            })?;
        }
        _ => {
            let merge: Value = parse_json(patch)?;
            json_patch::merge(&mut doc, &merge);
        }
    }
    Ok(doc)
}

/// Applies a strategic merge patch to a copy of `target`.
pub fn strategic(target: &Value, patch: &[u8]) -> Result<Value, ApiError> {
    let patch = parse_json(patch)?;
    let Value::Object(patch) = patch else {
        return Err(ApiError::bad_request(
            "a strategic merge patch must be a JSON object",
        ));
    };
    let mut doc = target.clone();
    merge_map(&mut doc, &patch, "");
    Ok(doc)
}

fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in patch: {e}")))
}

/// How a list field merges: by a key field, as a set of primitives, or replaced whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListMerge {
    /// Items with the same key field are merged.
    Key(&'static str),
    /// A set of primitive values (`finalizers`).
    Set,
    /// The patch's list replaces the old one.
    Atomic,
}

/// The merge strategy of a list field, from the Kubernetes API's patch tags.
/// `path` is the dotted path of the list's parent, `field` the list's name.
pub fn list_merge(path: &str, field: &str) -> ListMerge {
    match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "hostAliases"
        | "readinessGates" => match field {
            "hostAliases" => ListMerge::Key("ip"),
            "readinessGates" => ListMerge::Key("conditionType"),
            _ => ListMerge::Key("name"),
        },
        "conditions" => ListMerge::Key("type"),
        "addresses" if path.ends_with("status") => ListMerge::Key("type"),
        "ports" if path.contains("containers") => ListMerge::Key("containerPort"),
        "ports" => ListMerge::Key("port"),
        "volumeMounts" => ListMerge::Key("mountPath"),
        "volumeDevices" => ListMerge::Key("devicePath"),
        "ownerReferences" => ListMerge::Key("uid"),
        "finalizers" => ListMerge::Set,
        _ => ListMerge::Atomic,
    }
}

fn merge_map(doc: &mut Value, patch: &Map<String, Value>, path: &str) {
    if patch.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch.clone();
        replacement.remove("$patch");
        *doc = Value::Object(replacement);
        return;
    }
    if !doc.is_object() {
        *doc = Value::Object(Map::new());
    }
    if let Some(Value::Array(retain)) = patch.get("$retainKeys") {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        if let Some(map) = doc.as_object_mut() {
            map.retain(|k, _| keep.contains(&k.as_str()));
        }
    }
    for (key, value) in patch {
        if key.starts_with("$setElementOrder/") || key == "$retainKeys" || key == "$patch" {
            continue;
        }
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (doc.get_mut(field), value) {
                list.retain(|item| !remove.contains(item));
            }
            continue;
        }
        let map = doc.as_object_mut().expect("made an object above");
        let child_path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match value {
            Value::Null => {
                map.remove(key);
            }
            Value::Object(child)
                if child.get("$patch").and_then(Value::as_str) == Some("delete") =>
            {
                map.remove(key);
            }
            Value::Object(child) => merge_map(
                map.entry(key.clone()).or_insert(Value::Null),
                child,
                &child_path,
            ),
            Value::Array(items) => {
                let merged = match (map.get(key), list_merge(path, key)) {
                    (Some(Value::Array(old)), ListMerge::Key(merge_key)) => {
                        merge_keyed(old, items, merge_key, &child_path)
                    }
                    (Some(Value::Array(old)), ListMerge::Set) => {
                        let mut out = old.clone();
                        out.extend(items.iter().filter(|v| !old.contains(v)).cloned());
                        out
                    }
                    _ => items
                        .iter()
                        .filter(|v| v.get("$patch").is_none())
                        .cloned()
                        .collect(),
                };
                map.insert(key.clone(), Value::Array(merged));
            }
            other => {
                map.insert(key.clone(), other.clone());
            }
        }
    }
}

fn merge_keyed(old: &[Value], patch: &[Value], merge_key: &str, path: &str) -> Vec<Value> {
    let mut out = old.to_vec();
    for item in patch {
        let Some(key) = item.get(merge_key) else {
            if item.get("$patch").and_then(Value::as_str) == Some("replace") {
                return patch
                    .iter()
                    .filter(|v| v.get("$patch").is_none())
                    .cloned()
                    .collect();
            }
            out.push(item.clone());
            continue;
        };
        let position = out.iter().position(|o| o.get(merge_key) == Some(key));
        match (position, item.get("$patch").and_then(Value::as_str)) {
            (Some(i), Some("delete")) => {
                out.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), _) => {
                if let Value::Object(fields) = item {
                    merge_map(&mut out[i], fields, path);
                }
            }
            (None, _) => out.push(item.clone()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(target: Value, patch: Value) -> Value {
        strategic(&target, patch.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn containers_merge_by_name() {
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]}});
        let out = smp(
            pod,
            json!({"spec": {"containers": [{"name": "b", "image": "y:2"}]}}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:2"}])
        );
    }

    #[test]
    fn conditions_merge_by_type_and_delete_directive() {
        let node = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]}});
        let out = smp(
            node,
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "$patch": "delete"}]}}),
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}])
        );
    }

    #[test]
    fn finalizers_are_a_set_and_can_be_removed() {
        let obj = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out = smp(obj.clone(), json!({"metadata": {"finalizers": ["b", "c"]}}));
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let out = smp(
            obj,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn taints_and_tolerations_are_replaced_whole_as_upstream_declares() {
        let node = json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}], "unschedulable": false}});
        let out = smp(
            node,
            json!({"spec": {"taints": [{"key": "b", "effect": "NoExecute"}], "unschedulable": true}}),
        );
        assert_eq!(
            out["spec"],
            json!({"taints": [{"key": "b", "effect": "NoExecute"}], "unschedulable": true})
        );
    }

    #[test]
    fn null_removes_and_replace_directive_replaces() {
        let obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        assert_eq!(
            smp(obj.clone(), json!({"metadata": {"labels": {"a": null}}}))["metadata"]["labels"],
            json!({"b": "2"})
        );
        let out = smp(
            obj,
            json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"c": "3"}));
    }

    #[test]
    fn json_and_merge_patches() {
        let obj = json!({"spec": {"replicas": 1, "x": {"y": 1}}});
        let out = json_or_merge(
            &obj,
            br#"[{"op":"replace","path":"/spec/replicas","value":3}]"#,
            PatchType::Json,
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 3);
        let out = json_or_merge(
            &obj,
            br#"{"spec":{"x":null,"replicas":2}}"#,
            PatchType::Merge,
        )
        .unwrap();
        assert_eq!(out["spec"], json!({"replicas": 2}));
        let err = json_or_merge(
            &obj,
            br#"[{"op":"test","path":"/spec/replicas","value":9}]"#,
            PatchType::Json,
        )
        .unwrap_err();
        let added = json_or_merge(
            &obj,
            br#"[{"op":"test","path":"/metadata/finalizers","value":null},{"op":"add","path":"/metadata","value":{"finalizers":["f"]}}]"#,
            PatchType::Json,
        )
        .unwrap();
        assert_eq!(added["metadata"]["finalizers"], json!(["f"]));
        assert_eq!(err.code, 422);
        assert_eq!(
            PatchType::from_content_type("text/plain").unwrap_err().code,
            415
        );
    }
}

//! Server-side apply: field ownership per manager in `metadata.managedFields`
//! (`FieldsV1`), conflicts when another applier owns a field with a different
//! value (409 unless `force`, which transfers ownership), and removal of fields
//! a manager applied before and no longer applies (unless someone else owns them).
//!
//! Lists merge by the same keys as strategic merge patches (`containers` by
//! `name`, ...); other lists are atomic. Only `Apply` managers take part in
//! conflicts; writes by other means are not tracked (see the README).

use crate::patch::{self, ListMerge};
use crate::status::ApiError;
use crate::store::now;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// A field path: `f:spec`, `f:containers`, `k:{"name":"c"}`, `f:image`.
type FieldPath = Vec<String>;

/// Applies `applied` for `manager` over `current` (absent on create); returns the object to store.
pub(crate) fn apply(
    current: Option<&Value>,
    applied: &Value,
    manager: Option<&str>,
    force: bool,
) -> Result<Value, ApiError> {
    let manager = manager.ok_or_else(|| {
        ApiError::bad_request("PATCH, application/apply-patch+yaml requires fieldManager parameter")
    })?;
    let mine = field_set(applied);
    let Some(current) = current else {
        let mut created = applied.clone();
        set_managers(
            &mut created,
            &BTreeMap::from([(manager.to_string(), mine)]),
            applied,
        );
        return Ok(created);
    };
    let mut owners = managers(current);
    // Ownership of a field lapses once the field is gone (another writer removed it).
    for fields in owners.values_mut() {
        fields.retain(|path| value_at(current, path).is_some());
    }
    let previous = owners.remove(manager).unwrap_or_default();

    // Conflicts: a field another applier owns, applied with a different value.
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for (other, fields) in &owners {
        for path in fields.intersection(&mine) {
            if value_at(current, path) != value_at(applied, path) {
                conflicts.push((other.clone(), display(path)));
            }
        }
    }
    if !conflicts.is_empty() {
        if !force {
            let count = conflicts.len();
            let list: Vec<String> = conflicts
                .iter()
                .map(|(m, p)| format!("conflict with {m:?}: {p}"))
                .collect();
            return Err(ApiError {
                code: 409,
                reason: "Conflict",
                message: format!(
                    "Apply failed with {count} conflict{}: {}",
                    if count == 1 { "" } else { "s" },
                    list.join("\n")
                ),
                details: Some(
                    json!({"causes": conflicts.iter().map(|(m, p)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m:?}"), "field": p})).collect::<Vec<_>>()}),
                ),
            });
        }
        for fields in owners.values_mut() {
            fields.retain(|p| !mine.contains(p));
        }
    }

    // Merge, then drop what this manager no longer applies and nobody else owns.
    let mut merged = patch::strategic(current, applied.to_string().as_bytes())?;
    let others: BTreeSet<&FieldPath> = owners.values().flatten().collect();
    let mut dropped: Vec<&FieldPath> = previous
        .iter()
        .filter(|p| !mine.contains(*p) && !others.contains(p))
        .collect();
    // Deepest first, so an emptied parent can go after its children.
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in dropped {
        remove_at(&mut merged, path);
    }
    owners.insert(manager.to_string(), mine);
    owners.retain(|_, fields| !fields.is_empty());
    set_managers(&mut merged, &owners, applied);
    Ok(merged)
}

/// The leaf fields an applied configuration sets.
fn field_set(applied: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    collect(applied, "", &mut Vec::new(), &mut out);
    out
}

fn collect(value: &Value, parent: &str, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    let Value::Object(map) = value else {
        out.insert(path.clone());
        return;
    };
    if map.is_empty() && !path.is_empty() {
        out.insert(path.clone());
    }
    for (key, child) in map {
        if path.is_empty() && matches!(key.as_str(), "apiVersion" | "kind") {
            continue;
        }
        if parent == "metadata"
            && path.len() == 1
            && !matches!(
                key.as_str(),
                "labels" | "annotations" | "finalizers" | "ownerReferences"
            )
        {
            continue;
        }
        path.push(format!("f:{key}"));
        match (child, patch::list_merge(parent, key)) {
            (Value::Array(items), ListMerge::Key(merge_key)) => {
                for item in items {
                    path.push(format!("k:{}", json!({ merge_key: item[merge_key] })));
                    out.insert(path.clone());
                    collect(item, key, path, out);
                    path.pop();
                }
            }
            (Value::Array(items), ListMerge::Set) => {
                for item in items {
                    path.push(format!("v:{item}"));
                    out.insert(path.clone());
                    path.pop();
                }
            }
            _ => collect(child, key, path, out),
        }
        path.pop();
    }
}

/// The value at a field path, if present.
fn value_at<'a>(obj: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    let mut node = obj;
    for step in path {
        node = step_into(node, step)?;
    }
    Some(node)
}

fn step_into<'a>(node: &'a Value, step: &str) -> Option<&'a Value> {
    if let Some(field) = step.strip_prefix("f:") {
        return node.get(field);
    }
    let items = node.as_array()?;
    if let Some(key) = step.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(key).ok()?;
        return items
            .iter()
            .find(|item| key.iter().all(|(k, v)| item.get(k) == Some(v)));
    }
    let value: Value = serde_json::from_str(step.strip_prefix("v:")?).ok()?;
    items.iter().find(|item| **item == value)
}

/// Removes the field (or list item) at a path; parents left empty go too.
fn remove_at(obj: &mut Value, path: &FieldPath) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut node = &mut *obj;
    for step in parents {
        let next = if let Some(field) = step.strip_prefix("f:") {
            node.get_mut(field)
        } else {
            let key = step
                .strip_prefix("k:")
                .and_then(|k| serde_json::from_str::<Map<String, Value>>(k).ok());
            node.as_array_mut().and_then(|items| {
                items.iter_mut().find(|item| {
                    key.as_ref()
                        .is_some_and(|key| key.iter().all(|(k, v)| item.get(k) == Some(v)))
                })
            })
        };
        match next {
            Some(next) => node = next,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(map) = node.as_object_mut() {
            map.remove(field);
        }
    } else if let Some(items) = node.as_array_mut() {
        let target = step_into(&Value::Array(items.clone()), last).cloned();
        if let Some(target) = target {
            items.retain(|item| *item != target);
        }
    }
}

/// `.spec.replicas`, `.spec.containers[name="c"].image`.
fn display(path: &FieldPath) -> String {
    path.iter()
        .map(|step| match step.split_once(':') {
            Some(("f", field)) => format!(".{field}"),
            Some(("k", key)) => {
                let key: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
                let parts: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("[{}]", parts.join(","))
            }
            Some((_, value)) => format!("[={value}]"),
            None => step.clone(),
        })
        .collect()
}

/// Apply managers and their fields, from `metadata.managedFields`.
fn managers(obj: &Value) -> BTreeMap<String, BTreeSet<FieldPath>> {
    let mut out = BTreeMap::new();
    for entry in obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if entry["operation"] != "Apply" {
            continue;
        }
        let Some(manager) = entry["manager"].as_str() else {
            continue;
        };
        let mut fields = BTreeSet::new();
        flatten(&entry["fieldsV1"], &mut Vec::new(), &mut fields);
        out.insert(manager.to_string(), fields);
    }
    out
}

fn flatten(tree: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
    let Some(map) = tree.as_object() else { return };
    if map.is_empty() && !path.is_empty() {
        out.insert(path.clone());
    }
    for (step, child) in map {
        if step == "." {
            out.insert(path.clone());
            continue;
        }
        path.push(step.clone());
        flatten(child, path, out);
        path.pop();
    }
}

/// Writes the Apply entries (keeping non-Apply ones) as `FieldsV1` trees.
fn set_managers(obj: &mut Value, owners: &BTreeMap<String, BTreeSet<FieldPath>>, applied: &Value) {
    let mut entries: Vec<Value> = obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["operation"] != "Apply")
        .cloned()
        .collect();
    for (manager, fields) in owners {
        let mut tree = Map::new();
        for path in fields {
            let mut node = &mut tree;
            for (i, step) in path.iter().enumerate() {
                let child = node.entry(step.clone()).or_insert_with(|| json!({}));
                if i + 1 == path.len() && step.starts_with("k:") {
                    child
                        .as_object_mut()
                        .expect("object")
                        .insert(".".into(), json!({}));
                }
                node = child.as_object_mut().expect("object");
            }
        }
        entries.push(json!({
            "manager": manager, "operation": "Apply", "apiVersion": applied["apiVersion"],
            "time": now(), "fieldsType": "FieldsV1", "fieldsV1": tree,
        }));
    }
    obj["metadata"]["managedFields"] = json!(entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deploy(replicas: i64, image: &str, extra_label: Option<&str>) -> Value {
        let mut labels = json!({"app": "web"});
        if let Some(l) = extra_label {
            labels[l] = json!("yes");
        }
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": labels},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    #[test]
    fn create_records_the_manager() {
        let created = apply(None, &deploy(1, "x:1", None), Some("a"), false).unwrap();
        let fields = managers(&created).remove("a").unwrap();
        assert!(fields.contains(&vec!["f:spec".into(), "f:replicas".into()]));
        assert!(
            fields
                .iter()
                .any(|p| p.iter().any(|s| s == r#"k:{"name":"c"}"#))
        );
        assert_eq!(
            display(&vec![
                "f:spec".into(),
                "f:containers".into(),
                r#"k:{"name":"c"}"#.into(),
                "f:image".into()
            ]),
            r#".spec.containers[name="c"].image"#
        );
    }

    #[test]
    fn conflicting_managers_need_force() {
        let current = apply(None, &deploy(1, "x:1", None), Some("a"), false).unwrap();
        let err = apply(Some(&current), &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}}), Some("b"), false).unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas"
        );
        // The same value is no conflict (shared ownership).
        let shared = apply(Some(&current), &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1}}), Some("b"), false).unwrap();
        assert_eq!(managers(&shared).len(), 2);
        // Force takes the field over.
        let forced = apply(Some(&current), &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}}), Some("b"), true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        assert!(
            !managers(&forced)["a"].contains(&vec!["f:spec".to_string(), "f:replicas".to_string()])
        );
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_owned_elsewhere() {
        let current = apply(None, &deploy(1, "x:1", Some("extra")), Some("a"), false).unwrap();
        let next = apply(Some(&current), &deploy(1, "x:1", None), Some("a"), false).unwrap();
        assert!(next["metadata"]["labels"].get("extra").is_none(), "{next}");
        assert_eq!(next["metadata"]["labels"]["app"], "web");

        let current = apply(None, &deploy(1, "x:1", Some("extra")), Some("a"), false).unwrap();
        let also_b = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"extra": "yes"}}});
        let current = apply(Some(&current), &also_b, Some("b"), false).unwrap();
        let next = apply(Some(&current), &deploy(1, "x:1", None), Some("a"), false).unwrap();
        assert_eq!(
            next["metadata"]["labels"]["extra"], "yes",
            "b still owns it"
        );
    }

    #[test]
    fn ownership_of_removed_fields_lapses() {
        let current = apply(None, &deploy(1, "x:1", None), Some("a"), false).unwrap();
        let mut removed = current.clone();
        removed["spec"].as_object_mut().unwrap().remove("replicas");
        let replicas = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 5}});
        let reapplied = apply(Some(&removed), &replicas, Some("b"), false).unwrap();
        assert_eq!(reapplied["spec"]["replicas"], 5);
    }
}

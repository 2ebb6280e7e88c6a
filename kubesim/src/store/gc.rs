//! Garbage collection inside the store: dependents of a removed owner (by owner
//! reference, per propagation policy), foreground deletion, and the namespace
//! controller's teardown of a terminating namespace.

use super::{Inner, Key, Propagation, Store, finalizers, meta_str, now, owned_by};
use crate::resources::ResourceType;
use serde_json::{Value, json};
use std::sync::Arc;

/// (resource, key) of every stored object `select` picks.
fn matching(inner: &Inner, select: impl Fn(&Key, &Value) -> bool) -> Vec<(String, Key)> {
    inner
        .objects
        .iter()
        .flat_map(|(resource, objects)| {
            objects
                .iter()
                .filter(|(k, o)| select(k, o))
                .map(|(k, _)| (resource.clone(), k.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The kind and current version of a stored object.
fn lookup(inner: &Inner, resource: &str, key: &Key) -> Option<(ResourceType, Arc<Value>)> {
    let rt = inner.types.get(resource)?.clone();
    let current = inner.objects.get(resource)?.get(key)?.clone();
    Some((rt, current))
}

impl Store {
    /// Deletes like a background delete request: removed at once, or marked with
    /// a deletionTimestamp while finalizers hold it.
    fn delete_in_background(
        &self,
        inner: &mut Inner,
        rt: &ResourceType,
        key: &Key,
        mut obj: Value,
        current: Arc<Value>,
    ) {
        if finalizers(&obj) == 0 {
            self.remove(inner, rt, key, obj, Propagation::Background);
        } else if !obj["metadata"]["deletionTimestamp"].is_string() {
            obj["metadata"]["deletionTimestamp"] = json!(now());
            self.put(inner, rt, key, obj, Some(current));
        } else if obj != *current {
            self.put(inner, rt, key, obj, Some(current));
        }
    }

    pub(super) fn has_dependents(&self, inner: &Inner, owner: &Value) -> bool {
        let uid = meta_str(owner, "uid").unwrap_or_default();
        inner
            .objects
            .values()
            .flat_map(|o| o.values())
            .any(|o| owned_by(o, uid))
    }

    /// Drops the owner reference from dependents; deletes those left without owners (unless orphaning).
    pub(super) fn collect_dependents(
        &self,
        inner: &mut Inner,
        owner_uid: &str,
        propagation: Propagation,
    ) {
        for (resource, key) in matching(inner, |_, o| owned_by(o, owner_uid)) {
            let Some((rt, current)) = lookup(inner, &resource, &key) else {
                continue;
            };
            let mut obj = (*current).clone();
            if let Some(refs) = obj["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"].as_str() != Some(owner_uid));
            }
            let orphaned = obj["metadata"]["ownerReferences"]
                .as_array()
                .is_none_or(Vec::is_empty);
            if orphaned && propagation != Propagation::Orphan {
                self.delete_in_background(inner, &rt, &key, obj, current);
            } else {
                self.put(inner, &rt, &key, obj, Some(current));
            }
        }
    }

    /// Foreground deletion: delete the dependents of an owner marked with `foregroundDeletion`.
    pub(super) fn cascade_foreground(&self, inner: &mut Inner, owner: &Value) {
        let has_foreground = owner["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion"));
        if has_foreground {
            let uid = meta_str(owner, "uid").unwrap_or_default().to_string();
            self.collect_dependents(inner, &uid, Propagation::Background);
            self.release_foreground_owners(inner, owner);
        }
    }

    /// Removes `foregroundDeletion` from owners of `dependent` that have no dependents left.
    pub(super) fn release_foreground_owners(&self, inner: &mut Inner, dependent: &Value) {
        let owner_uids: Vec<String> = dependent["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["uid"].as_str().map(str::to_string))
            .chain(meta_str(dependent, "uid").map(str::to_string))
            .collect();
        for uid in owner_uids {
            let found = inner.objects.iter().find_map(|(resource, objects)| {
                objects
                    .iter()
                    .find(|(_, o)| meta_str(o, "uid") == Some(uid.as_str()))
                    .map(|(k, o)| (resource.clone(), k.clone(), o.clone()))
            });
            let Some((resource, key, owner)) = found else {
                continue;
            };
            let waiting = owner["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "foregroundDeletion"));
            if !waiting || self.has_dependents(inner, &owner) {
                continue;
            }
            let Some(rt) = inner.types.get(&resource).cloned() else {
                continue;
            };
            let mut obj = (*owner).clone();
            if let Some(f) = obj["metadata"]["finalizers"].as_array_mut() {
                f.retain(|x| x != "foregroundDeletion");
            }
            if finalizers(&obj) == 0 {
                self.remove(inner, &rt, &key, obj, Propagation::Background);
            } else {
                self.put(inner, &rt, &key, obj, Some(owner));
            }
        }
    }

    pub(super) fn namespace_has_content(&self, inner: &Inner, namespace: &str) -> bool {
        inner
            .objects
            .values()
            .flat_map(|o| o.keys())
            .any(|(ns, _)| ns == namespace)
    }

    /// The namespace controller: delete everything in a terminating namespace.
    pub(super) fn delete_namespace_content(&self, inner: &mut Inner, namespace: &str) {
        for (resource, key) in matching(inner, |(ns, _), _| ns == namespace) {
            if let Some((rt, current)) = lookup(inner, &resource, &key) {
                self.delete_in_background(inner, &rt, &key, (*current).clone(), current);
            }
        }
        self.finish_namespace(inner, namespace);
    }

    /// Removes a terminating namespace once it is empty and has no finalizers.
    pub(super) fn finish_namespace(&self, inner: &mut Inner, namespace: &str) {
        let key = (String::new(), namespace.to_string());
        let Some(ns) = inner
            .objects
            .get("namespaces")
            .and_then(|o| o.get(&key))
            .cloned()
        else {
            return;
        };
        if !ns["metadata"]["deletionTimestamp"].is_string()
            || finalizers(&ns) > 0
            || self.namespace_has_content(inner, namespace)
        {
            return;
        }
        let Some(rt) = inner.types.get("namespaces").cloned() else {
            return;
        };
        self.remove(inner, &rt, &key, (*ns).clone(), Propagation::Background);
    }
}

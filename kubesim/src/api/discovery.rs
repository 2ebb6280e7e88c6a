//! Discovery documents: `/version`, `/api`, `/apis`, `/apis/{group}` and the
//! resource lists kubectl and kube-rs read to map kinds to URLs.

use super::Reply;
use crate::Kubesim;
use crate::status::ApiError;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Version reported by `/version` (kubectl 1.27..1.33 accept it without skew warnings).
pub(crate) fn version() -> Reply {
    Reply::ok(json!({
        "major": "1",
        "minor": "31",
        "gitVersion": "v1.31.0-kubesim",
        "gitCommit": "kubesim",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.22",
        "compiler": "rust",
        "platform": "linux/amd64"
    }))
}

/// `/api`: the core group's versions.
pub(crate) fn core_versions() -> Reply {
    Reply::ok(json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]
    }))
}

/// Named groups and their versions (the core group is served at `/api`).
fn group_versions(sim: &Kubesim) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for rt in sim
        .inner
        .registry
        .all()
        .into_iter()
        .filter(|rt| !rt.group.is_empty())
    {
        let versions = groups.entry(rt.group).or_default();
        if !versions.contains(&rt.version) {
            versions.push(rt.version);
        }
    }
    groups
}

fn group_document(group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions, "preferredVersion": versions[0]})
}

/// `/apis`: every named group.
pub(crate) fn groups(sim: &Kubesim) -> Reply {
    let groups: Vec<Value> = group_versions(sim)
        .iter()
        .map(|(g, v)| group_document(g, v))
        .collect();
    Reply::ok(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
}

/// `/apis/{group}`.
pub(crate) fn group(sim: &Kubesim, group: &str) -> Result<Reply, ApiError> {
    let groups = group_versions(sim);
    let versions = groups
        .get(group)
        .ok_or_else(|| ApiError::not_found("groups", group))?;
    Ok(Reply::ok(group_document(group, versions)))
}

/// `/api/v1` or `/apis/{group}/{version}`: the resources and their subresources.
pub(crate) fn resources(sim: &Kubesim, group: &str, version: &str) -> Reply {
    let mut list = Vec::new();
    for rt in sim
        .inner
        .registry
        .all()
        .into_iter()
        .filter(|rt| rt.group == group && rt.version == version)
    {
        list.push(json!({
            "name": rt.plural,
            "singularName": rt.singular,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": rt.short_names,
            "categories": rt.categories,
        }));
        for sub in &rt.subresources {
            // Subresources of another group say so (kubectl drain needs policy/v1 Eviction).
            let (kind, group, version, verbs) = match sub.as_str() {
                "binding" => ("Binding", "", "v1", json!(["create"])),
                "eviction" => ("Eviction", "policy", "v1", json!(["create"])),
                "scale" => (
                    "Scale",
                    "autoscaling",
                    "v1",
                    json!(["get", "patch", "update"]),
                ),
                _ => (
                    rt.kind.as_str(),
                    rt.group.as_str(),
                    rt.version.as_str(),
                    json!(["get", "patch", "update"]),
                ),
            };
            let mut entry = json!({"name": format!("{}/{sub}", rt.plural), "singularName": "", "namespaced": rt.namespaced, "kind": kind, "verbs": verbs});
            if !group.is_empty() {
                entry["group"] = json!(group);
                entry["version"] = json!(version);
            }
            list.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Reply::ok(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list}),
    )
}

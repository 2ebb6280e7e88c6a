//! Server-side printing: `meta.k8s.io/v1` Tables for `kubectl get`, with the
//! columns kube-apiserver prints for common built-in kinds and a CRD's
//! `additionalPrinterColumns` (evaluated with a JSONPath subset: `.a.b`,
//! escaped dots `\.`, `[n]`, and `[?(@.field=="value")]` filters).

use crate::resources::ResourceType;
use serde_json::{Value, json};

/// True when the client asked for a Table (`Accept: application/json;as=Table;...`).
pub(crate) fn wanted(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

struct Column {
    name: String,
    kind: &'static str,
    priority: i64,
    cell: Box<dyn Fn(&Value) -> Value + Send + Sync>,
}

fn column(
    name: impl Into<String>,
    priority: i64,
    cell: impl Fn(&Value) -> Value + Send + Sync + 'static,
) -> Column {
    Column {
        name: name.into(),
        kind: "string",
        priority,
        cell: Box::new(cell),
    }
}

fn age_column() -> Column {
    column("Age", 0, |o| {
        json!(age(o["metadata"]["creationTimestamp"].as_str()))
    })
}

/// kube's `HumanDuration` of the time since a timestamp.
fn age(timestamp: Option<&str>) -> String {
    let Some(then) = timestamp.and_then(|t| t.parse::<jiff::Timestamp>().ok()) else {
        return "<unknown>".into();
    };
    let seconds = jiff::Timestamp::now().duration_since(then).as_secs().max(0);
    let (m, h, d) = (seconds / 60, seconds / 3600, seconds / 86400);
    match seconds {
        s if s < 120 => format!("{s}s"),
        _ if m < 10 && seconds % 60 != 0 => format!("{m}m{}s", seconds % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m % 60 != 0 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 && h % 24 != 0 => format!("{d}d{}h", h % 24),
        _ if d < 730 => format!("{d}d"),
        _ => format!("{}y", d / 365),
    }
}

fn count(v: &Value) -> Value {
    json!(v.as_i64().unwrap_or(0))
}

fn columns(rt: &ResourceType) -> Vec<Column> {
    let name = column("Name", 0, |o| o["metadata"]["name"].clone());
    let mut cols = vec![name];
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") => {
            cols.push(column("Ready", 0, |o| {
                let statuses = o["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
                json!(format!(
                    "{}/{total}",
                    statuses.iter().filter(|s| s["ready"] == true).count()
                ))
            }));
            cols.push(column("Status", 0, |o| {
                if o["metadata"]["deletionTimestamp"].is_string() {
                    json!("Terminating")
                } else {
                    o["status"]["phase"].clone()
                }
            }));
            cols.push(column("Restarts", 0, |_| json!(0)));
            cols.push(age_column());
            cols.push(column("IP", 1, |o| o["status"]["podIP"].clone()));
            cols.push(column("Node", 1, |o| o["spec"]["nodeName"].clone()));
            return cols;
        }
        ("", "nodes") => {
            cols.push(column("Status", 0, |o| {
                let ready = o["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                let mut status = if ready {
                    "Ready".to_string()
                } else {
                    "NotReady".to_string()
                };
                if o["spec"]["unschedulable"] == true {
                    status.push_str(",SchedulingDisabled");
                }
                json!(status)
            }));
            cols.push(column("Roles", 0, |_| json!("<none>")));
            cols.push(age_column());
            cols.push(column("Version", 0, |o| {
                o["status"]["nodeInfo"]["kubeletVersion"].clone()
            }));
            return cols;
        }
        ("", "namespaces") => {
            cols.push(column("Status", 0, |o| o["status"]["phase"].clone()));
        }
        ("apps", "deployments") => {
            cols.push(column("Ready", 0, |o| {
                json!(format!(
                    "{}/{}",
                    o["status"]["readyReplicas"].as_i64().unwrap_or(0),
                    o["spec"]["replicas"].as_i64().unwrap_or(1)
                ))
            }));
            cols.push(column("Up-to-date", 0, |o| {
                count(&o["status"]["updatedReplicas"])
            }));
            cols.push(column("Available", 0, |o| {
                count(&o["status"]["availableReplicas"])
            }));
        }
        ("apps", "replicasets") => {
            cols.push(column("Desired", 0, |o| count(&o["spec"]["replicas"])));
            cols.push(column("Current", 0, |o| count(&o["status"]["replicas"])));
            cols.push(column("Ready", 0, |o| count(&o["status"]["readyReplicas"])));
        }
        ("apps", "daemonsets") => {
            cols.push(column("Desired", 0, |o| {
                count(&o["status"]["desiredNumberScheduled"])
            }));
            cols.push(column("Current", 0, |o| {
                count(&o["status"]["currentNumberScheduled"])
            }));
            cols.push(column("Ready", 0, |o| count(&o["status"]["numberReady"])));
        }
        ("policy", "poddisruptionbudgets") => {
            cols.push(column("Min Available", 0, |o| {
                if o["spec"]["minAvailable"].is_null() {
                    json!("N/A")
                } else {
                    json!(o["spec"]["minAvailable"].to_string().trim_matches('"'))
                }
            }));
            cols.push(column("Max Unavailable", 0, |o| {
                if o["spec"]["maxUnavailable"].is_null() {
                    json!("N/A")
                } else {
                    json!(o["spec"]["maxUnavailable"].to_string().trim_matches('"'))
                }
            }));
            cols.push(column("Allowed Disruptions", 0, |o| {
                count(&o["status"]["disruptionsAllowed"])
            }));
        }
        _ => {
            if let Some(printer) = &rt.printer_columns {
                for c in printer.iter() {
                    let path = c["jsonPath"].as_str().unwrap_or_default().to_string();
                    let date = c["type"] == "date";
                    let name = c["name"].as_str().unwrap_or_default().to_string();
                    let mut col = column(name, c["priority"].as_i64().unwrap_or(0), move |o| {
                        let value = jsonpath(o, &path);
                        if date {
                            json!(age(value.as_str()))
                        } else {
                            value
                        }
                    });
                    if c["type"] == "integer" {
                        col.kind = "integer";
                    }
                    cols.push(col);
                }
                return cols;
            }
        }
    }
    cols.push(age_column());
    cols
}

/// A Table of `objects` for `rt`.
pub(crate) fn table(rt: &ResourceType, objects: &[&Value], resource_version: &str) -> Value {
    let cols = columns(rt);
    let definitions: Vec<Value> = cols
        .iter()
        .map(|c| {
            let format = if c.name == "Name" { "name" } else { "" };
            json!({"name": c.name, "type": c.kind, "format": format, "description": "", "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells: Vec<Value> = cols.iter().map(|c| match (c.cell)(o) {
                Value::Null => json!("<none>"),
                other => other,
            }).collect();
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

/// Evaluates the JSONPath subset printer columns use.
pub(crate) fn jsonpath(obj: &Value, path: &str) -> Value {
    let mut steps = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '.' => {
                if !current.is_empty() {
                    steps.push(std::mem::take(&mut current));
                }
            }
            '[' => {
                if !current.is_empty() {
                    steps.push(std::mem::take(&mut current));
                }
                let mut inner = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    inner.push(c);
                }
                steps.push(format!("[{inner}]"));
            }
            other => current.push(other),
        }
    }
    if !current.is_empty() {
        steps.push(current);
    }
    let mut node = obj.clone();
    for step in steps {
        node = match step.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(filter) if filter.starts_with("?(@.") => {
                let body = filter.trim_start_matches("?(@.").trim_end_matches(')');
                let Some((field, value)) = body.split_once("==") else {
                    return Value::Null;
                };
                let value = value.trim().trim_matches('"').trim_matches('\'');
                node.as_array()
                    .and_then(|items| {
                        items
                            .iter()
                            .find(|i| i[field.trim()].as_str() == Some(value))
                            .cloned()
                    })
                    .unwrap_or(Value::Null)
            }
            Some(index) => index
                .parse::<usize>()
                .ok()
                .and_then(|i| node.get(i).cloned())
                .unwrap_or(Value::Null),
            None => node.get(&step).cloned().unwrap_or(Value::Null),
        };
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_subset() {
        let o = json!({"metadata": {"labels": {"node.kubernetes.io/instance-type": "m5.large"}},
                       "status": {"conditions": [{"type": "Launched", "status": "True"}, {"type": "Ready", "status": "False"}]},
                       "spec": {"list": [1, 2]}});
        assert_eq!(
            jsonpath(&o, r".metadata.labels.node\.kubernetes\.io/instance-type"),
            "m5.large"
        );
        assert_eq!(
            jsonpath(&o, r#".status.conditions[?(@.type=="Ready")].status"#),
            "False"
        );
        assert_eq!(jsonpath(&o, ".spec.list[1]"), 2);
        assert_eq!(jsonpath(&o, ".spec.missing"), Value::Null);
    }

    #[test]
    fn ages_like_kubectl() {
        let ago =
            |s: i64| (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(s)).to_string();
        assert_eq!(age(Some(&ago(30))), "30s");
        assert_eq!(age(Some(&ago(150))), "2m30s");
        assert_eq!(age(Some(&ago(3600 * 5 + 60 * 7))), "5h7m");
        assert_eq!(age(Some(&ago(86400 * 3))), "3d");
        assert_eq!(age(None), "<unknown>");
    }
}

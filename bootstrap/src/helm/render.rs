//! Rendering the chart as Helm does: values merged over the chart's
//! defaults, every template executed with `.Values`, `.Release`, `.Chart`,
//! `.Files` and `.Template`, the output split into documents and ordered
//! by Helm's install order, and the release manifest written in Helm's
//! `---\n# Source: chart/templates/file.yaml` form.

use super::chart::{Chart, ChartFile};
use super::funcs::{self, from_json};
use gtmpl::Context;
use serde_json::{Map, Value, json};

/// The release a chart is rendered for (`.Release` in templates).
#[derive(Debug, Clone, Copy)]
pub struct ReleaseInfo<'a> {
    /// The release's name.
    pub name: &'a str,
    /// The namespace it lives in.
    pub namespace: &'a str,
    /// Its revision, from 1.
    pub revision: u32,
}

/// One object the chart renders.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The template it came from, `karpenter/templates/deployment.yaml`.
    pub source: String,
    /// The object as rendered (YAML text).
    pub text: String,
    /// The object, parsed.
    pub object: Value,
}

/// A rendering failure, naming the template and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("chart template {template}: {message}")]
pub struct RenderError {
    /// The template (`templates/deployment.yaml`).
    pub template: String,
    /// What went wrong.
    pub message: String,
}

/// Helm's install order by kind (`releaseutil.InstallOrder`); kinds not
/// listed go last, by kind name.
const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Helm's value coalescing: maps merge key by key, anything else in
/// `overrides` replaces the default, and a `null` override removes the key.
pub fn merge_values(defaults: &Value, overrides: &Value) -> Value {
    match (defaults, overrides) {
        (Value::Object(base), Value::Object(over)) => {
            let mut merged = base.clone();
            for (key, value) in over {
                if value.is_null() {
                    merged.remove(key);
                } else {
                    let next = match base.get(key) {
                        Some(old) => merge_values(old, value),
                        None => value.clone(),
                    };
                    merged.insert(key.clone(), next);
                }
            }
            Value::Object(merged)
        }
        (_, over) => over.clone(),
    }
}

/// Values that do not keep the chart's shape; the message names the path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValues(pub String);

/// Checks that `given` keeps the shape of the chart's `defaults`: wherever a
/// default is a mapping, the value given is a mapping too (or `null`, which
/// removes it). The error names the value's path (`values.serviceAccount`)
/// and what was given, instead of a template failing, or worse, later.
pub fn check_values_shape(
    defaults: &Value,
    given: &Value,
    path: &str,
) -> Result<(), InvalidValues> {
    shape_mismatch(defaults, given, path).map_err(InvalidValues)
}

fn shape_mismatch(defaults: &Value, given: &Value, path: &str) -> Result<(), String> {
    let (Value::Object(defaults), Value::Object(given)) = (defaults, given) else {
        return match (defaults, given) {
            (Value::Object(_), Value::Null) => Ok(()),
            (Value::Object(_), other) => Err(format!(
                "{path}: must be a mapping, got {}",
                match other {
                    Value::String(_) => "a string",
                    Value::Array(_) => "a list",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    _ => "something else",
                }
            )),
            _ => Ok(()),
        };
    };
    for (key, value) in given {
        if let Some(default) = defaults.get(key) {
            shape_mismatch(default, value, &format!("{path}.{key}"))?;
        }
    }
    Ok(())
}

/// `.Chart` as templates see it: Chart.yaml's keys with Go's field names.
fn chart_object(chart: &Chart) -> Value {
    let mut out = Map::new();
    if let Value::Object(meta) = &chart.metadata {
        for (key, value) in meta {
            let mut field = key.clone();
            if let Some(first) = field.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            out.insert(field, value.clone());
        }
    }
    Value::Object(out)
}

/// Renders `chart` for `release` with the user's `values` (merged over the
/// chart's defaults), returning the objects in install order.
pub fn render(
    chart: &Chart,
    release: ReleaseInfo<'_>,
    values: &Value,
) -> Result<Vec<Document>, RenderError> {
    let merged = merge_values(&chart.values, values);
    let files: Map<String, Value> = chart
        .files
        .iter()
        .map(|f| (f.path.to_string(), Value::String(f.text.to_string())))
        .collect();
    let mut documents = Vec::new();
    let _scope = funcs::scope(&chart.templates);
    for template in chart.templates.iter().filter(|t| is_rendered(t)) {
        let source = format!("{}/{}", chart.name(), template.path);
        let err = |message: String| RenderError {
            template: template.path.to_string(),
            message,
        };
        let root = json!({
            "Values": merged,
            "Release": {
                "Name": release.name,
                "Namespace": release.namespace,
                "Revision": release.revision,
                "IsInstall": release.revision == 1,
                "IsUpgrade": release.revision > 1,
                "Service": "Helm",
            },
            "Chart": chart_object(chart),
            "Files": files,
            "Template": {"Name": source, "BasePath": format!("{}/templates", chart.name())},
        });
        let set = funcs::template(template.path).map_err(err)?;
        let out = set
            .render(&Context::from(from_json(&root)))
            .map_err(|e| err(e.to_string()))?;
        let out = out.replace("<no value>", "");
        for text in split_documents(&out) {
            let object: Value = serde_norway::from_str(&text)
                .map_err(|e| err(format!("renders invalid YAML: {e}")))?;
            if object.is_null() {
                continue;
            }
            if object.get("kind").and_then(Value::as_str).is_none() {
                return Err(err("renders an object without a kind".into()));
            }
            documents.push(Document {
                source: source.clone(),
                text,
                object,
            });
        }
    }
    documents.sort_by_key(|d| install_rank(d.object["kind"].as_str().unwrap_or_default()));
    Ok(documents)
}

/// Partials (`_helpers.tpl`) and non-YAML files render nothing themselves.
fn is_rendered(template: &ChartFile) -> bool {
    let file = template.path.rsplit('/').next().unwrap_or_default();
    !file.starts_with('_') && (file.ends_with(".yaml") || file.ends_with(".yml"))
}

/// The sort key putting `kind` where Helm installs it.
fn install_rank(kind: &str) -> (usize, String) {
    match INSTALL_ORDER.iter().position(|k| *k == kind) {
        Some(i) => (i, String::new()),
        None => (INSTALL_ORDER.len(), kind.to_string()),
    }
}

/// Splits rendered output on `---` lines, dropping documents that are empty.
fn split_documents(out: &str) -> Vec<String> {
    let mut documents = vec![String::new()];
    for line in out.lines() {
        if line.trim_end() == "---" || line.starts_with("--- ") {
            documents.push(String::new());
        } else if let Some(current) = documents.last_mut() {
            current.push_str(line);
            current.push('\n');
        }
    }
    documents
        .into_iter()
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

/// The objects of a stored manifest (comments and empty documents skipped).
pub fn parse_manifest(manifest: &str) -> Vec<Value> {
    split_documents(manifest)
        .iter()
        .filter_map(|text| serde_norway::from_str::<Value>(text).ok())
        .filter(|object| object.get("kind").is_some())
        .collect()
}

/// The release manifest: every document with its source, byte for byte as
/// Helm writes it (a test compares the two).
pub fn manifest(documents: &[Document]) -> String {
    documents
        .iter()
        .map(|d| format!("---\n# Source: {}\n{}\n\n", d.source, d.text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(values: Value) -> Vec<Document> {
        let release = ReleaseInfo {
            name: "karpenter",
            namespace: "kube-system",
            revision: 1,
        };
        render(&Chart::embedded(), release, &values).unwrap()
    }

    fn kinds(documents: &[Document]) -> Vec<&str> {
        documents
            .iter()
            .map(|d| d.object["kind"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn the_default_chart_renders_in_install_order() {
        let docs = rendered(json!({"settings": {"clusterName": "demo"}}));
        assert_eq!(
            kinds(&docs),
            [
                "PodDisruptionBudget",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "Role",
                "RoleBinding",
                "RoleBinding",
                "Service",
                "Deployment"
            ]
        );
        let deployment = &docs.last().unwrap().object;
        assert_eq!(deployment["metadata"]["name"], "karpenter");
        assert_eq!(deployment["spec"]["replicas"], 2);
        let env = &deployment["spec"]["template"]["spec"]["containers"][0]["env"];
        assert_eq!(env[0], json!({"name": "CLUSTER_NAME", "value": "demo"}));
        assert!(
            manifest(&docs)
                .starts_with("---\n# Source: karpenter/templates/poddisruptionbudget.yaml\n")
        );
    }

    #[test]
    fn values_switch_optional_objects_and_settings() {
        let docs = rendered(json!({
            "settings": {"clusterName": "demo", "interruptionQueue": "Karpenter-demo"},
            "serviceMonitor": {"enabled": true},
            "crds": {"asTemplates": true},
            "rbac": {"create": false},
            "replicas": 1,
        }));
        let kinds = kinds(&docs);
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == "CustomResourceDefinition")
                .count(),
            5
        );
        assert!(kinds.contains(&"ServiceMonitor"));
        assert!(!kinds.contains(&"ClusterRole"));
        let deployment = docs
            .iter()
            .find(|d| d.object["kind"] == "Deployment")
            .unwrap();
        assert_eq!(deployment.object["spec"]["replicas"], 1);
        let env = deployment.object["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap();
        assert!(env.contains(&json!({"name": "INTERRUPTION_QUEUE", "value": "Karpenter-demo"})));
    }

    #[test]
    fn a_missing_cluster_name_names_the_value() {
        let release = ReleaseInfo {
            name: "karpenter",
            namespace: "kube-system",
            revision: 1,
        };
        let err = render(&Chart::embedded(), release, &json!({})).unwrap_err();
        assert_eq!(err.template, "templates/deployment.yaml");
        assert!(
            err.message.contains("settings.clusterName is required"),
            "{err}"
        );
    }

    #[test]
    fn merging_keeps_defaults_replaces_leaves_and_drops_nulls() {
        let merged = merge_values(
            &json!({"a": {"b": 1, "c": 2}, "d": [1], "e": 1}),
            &json!({"a": {"b": 3}, "d": [2, 3], "e": null}),
        );
        assert_eq!(merged, json!({"a": {"b": 3, "c": 2}, "d": [2, 3]}));
    }
}

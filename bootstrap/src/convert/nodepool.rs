//! NodePool specs from v1alpha5 `Provisioner`s and v1beta1 `NodePool`s,
//! mapped as upstream's v1beta1 and v1 migration guides map them. The
//! kubelet settings, which v1 keeps in the EC2NodeClass, are handed back
//! for the caller to place.

use super::fields::{Fields, Report};
use serde_json::{Map, Value, json};

/// A NodePool spec, with what belongs to its EC2NodeClass.
pub(super) struct Pool {
    /// The v1 spec.
    pub spec: Map<String, Value>,
    /// The kubelet settings the old object gave (v1: `EC2NodeClass.spec.kubelet`).
    pub kubelet: Option<Value>,
    /// The EC2NodeClass the pool uses.
    pub class: String,
    /// The class the old object carried inline (v1alpha5 `provider`), as
    /// fields still to convert.
    pub inline_class: Option<Fields>,
}

/// Kubelet fields v1 keeps (v1alpha5's `containerRuntime` is gone).
const KUBELET_FIELDS: &[&str] = &[
    "clusterDNS",
    "maxPods",
    "podsPerCore",
    "systemReserved",
    "kubeReserved",
    "evictionHard",
    "evictionSoft",
    "evictionSoftGracePeriod",
    "evictionMaxPodGracePeriod",
    "imageGCHighThresholdPercent",
    "imageGCLowThresholdPercent",
    "cpuCFSQuota",
];

/// Well-known labels renamed since the old APIs (in requirements and labels).
const RENAMED_LABELS: &[(&str, &str)] = &[
    ("karpenter.sh/provisioner-name", "karpenter.sh/nodepool"),
    (
        "failure-domain.beta.kubernetes.io/zone",
        "topology.kubernetes.io/zone",
    ),
    (
        "failure-domain.beta.kubernetes.io/region",
        "topology.kubernetes.io/region",
    ),
    (
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
    ),
    ("beta.kubernetes.io/arch", "kubernetes.io/arch"),
    ("beta.kubernetes.io/os", "kubernetes.io/os"),
];

/// Node annotations renamed in v1beta1.
const RENAMED_ANNOTATIONS: &[(&str, &str)] = &[(
    "karpenter.sh/do-not-consolidate",
    "karpenter.sh/do-not-disrupt",
)];

/// The v1 NodePool spec of a v1alpha5 Provisioner's spec, named `name`.
pub(super) fn from_provisioner(name: &str, mut spec: Fields, report: &mut Report) -> Pool {
    let mut template_spec = Map::new();
    let mut metadata = Map::new();
    if let Some(labels) = spec.take_string_map("labels", report) {
        metadata.insert("labels".into(), Value::Object(labels));
    }
    if let Some(annotations) = spec.take_string_map("annotations", report) {
        let path = spec.path("annotations");
        metadata.insert(
            "annotations".into(),
            Value::Object(rename_keys(annotations, RENAMED_ANNOTATIONS, &path, report)),
        );
    }
    requirements(&mut spec, &mut template_spec, report);
    v1alpha5_defaults(&mut template_spec, &spec.path("requirements"), report);
    spec.move_same(&["taints", "startupTaints"], &mut template_spec);

    // Where the class comes from: a reference, the inline provider, or neither.
    let inline_class = spec.take_fields("provider", report);
    let class = match spec.take_fields("providerRef", report) {
        Some(mut reference) => {
            let class = reference
                .take_str("name", report)
                .unwrap_or_else(|| name.to_string());
            reference.drop(&["apiVersion", "kind"]);
            reference.finish(report);
            class
        }
        None => name.to_string(),
    };
    template_spec.insert("nodeClassRef".into(), node_class_ref(&class));

    let expire_path = spec.path("ttlSecondsUntilExpired");
    match spec.take("ttlSecondsUntilExpired") {
        Some(seconds) => {
            if let Some(d) = seconds_duration(&seconds, &expire_path, report) {
                template_spec.insert("expireAfter".into(), json!(d));
            }
        }
        None => {
            template_spec.insert("expireAfter".into(), json!("Never"));
            report.note(&expire_path, "not set: nodes never expired, so expireAfter: Never keeps that (v1's default is 720h)");
        }
    }

    let mut disruption = Map::new();
    let empty_path = spec.path("ttlSecondsAfterEmpty");
    let consolidation = spec.take_fields("consolidation", report).and_then(|mut c| {
        let enabled = c.take("enabled");
        c.finish(report);
        enabled
    });
    match (
        consolidation.as_ref().and_then(Value::as_bool),
        spec.take("ttlSecondsAfterEmpty"),
    ) {
        (Some(true), _) => {
            disruption.insert(
                "consolidationPolicy".into(),
                json!("WhenEmptyOrUnderutilized"),
            );
            disruption.insert("consolidateAfter".into(), json!("0s"));
        }
        (_, Some(seconds)) => {
            disruption.insert("consolidationPolicy".into(), json!("WhenEmpty"));
            if let Some(d) = seconds_duration(&seconds, &empty_path, report) {
                disruption.insert("consolidateAfter".into(), json!(d));
            }
        }
        (_, None) => {
            disruption.insert("consolidationPolicy".into(), json!("WhenEmpty"));
            disruption.insert("consolidateAfter".into(), json!("Never"));
            report.note(&empty_path, "neither it nor consolidation was set: nodes were never removed for being empty or underused, so consolidateAfter: Never keeps that");
        }
    }

    let mut out = Map::new();
    if let Some(mut limits) = spec.take_fields("limits", report) {
        if let Some(resources) = limits.take_string_map("resources", report) {
            out.insert("limits".into(), Value::Object(resources));
        }
        limits.finish(report);
    }
    spec.move_same(&["weight"], &mut out);
    let kubelet = spec
        .take_fields("kubeletConfiguration", report)
        .map(|k| kubelet_of(k, report))
        .filter(|k| k.as_object().is_some_and(|k| !k.is_empty()));
    spec.finish(report);
    out.insert("disruption".into(), Value::Object(disruption));
    out.insert("template".into(), template(metadata, template_spec));
    Pool {
        spec: out,
        kubelet,
        class,
        inline_class,
    }
}

/// The v1 NodePool spec of a v1beta1 NodePool's spec.
pub(super) fn from_v1beta1(mut spec: Fields, report: &mut Report) -> Pool {
    let mut out = Map::new();
    if let Some(limits) = spec.take_string_map("limits", report) {
        out.insert("limits".into(), Value::Object(limits));
    }
    spec.move_same(&["weight"], &mut out);
    let mut template_spec = Map::new();
    let mut metadata = Map::new();
    let mut class = String::new();
    let mut kubelet = None;
    if let Some(mut template_fields) = spec.take_fields("template", report) {
        if let Some(mut meta) = template_fields.take_fields("metadata", report) {
            meta.move_same(&["labels", "annotations"], &mut metadata);
            meta.finish(report);
        }
        if let Some(mut old) = template_fields.take_fields("spec", report) {
            requirements(&mut old, &mut template_spec, report);
            old.move_same(&["taints", "startupTaints"], &mut template_spec);
            if let Some(mut reference) = old.take_fields("nodeClassRef", report) {
                class = reference.take_str("name", report).unwrap_or_default();
                reference.drop(&["apiVersion", "kind"]);
                reference.finish(report);
            }
            kubelet = old
                .take_fields("kubelet", report)
                .map(|k| kubelet_of(k, report))
                .filter(|k| k.as_object().is_some_and(|k| !k.is_empty()));
            if old.take("resources").is_some() {
                report.note(
                    &old.path("resources"),
                    "v1 NodePools have no resources; left out",
                );
            }
            old.finish(report);
        }
        template_fields.finish(report);
    }
    template_spec
        .entry("requirements")
        .or_insert_with(|| json!([]));
    if class.is_empty() {
        report.action(
            "spec.template.spec.nodeClassRef.name",
            "not in the input; name the EC2NodeClass the pool uses",
        );
    }
    template_spec.insert("nodeClassRef".into(), node_class_ref(&class));
    if let Some(mut old) = spec.take_fields("disruption", report) {
        let mut disruption = Map::new();
        let policy = old.take_str("consolidationPolicy", report);
        let after = old.take("consolidateAfter");
        match policy.as_deref() {
            Some("WhenUnderutilized") | None => {
                disruption.insert(
                    "consolidationPolicy".into(),
                    json!("WhenEmptyOrUnderutilized"),
                );
                disruption.insert("consolidateAfter".into(), after.unwrap_or(json!("0s")));
            }
            Some(other) => {
                disruption.insert("consolidationPolicy".into(), json!(other));
                disruption.insert("consolidateAfter".into(), after.unwrap_or(json!("0s")));
            }
        }
        old.move_to("expireAfter", &mut template_spec, "expireAfter");
        old.move_same(&["budgets"], &mut disruption);
        old.finish(report);
        out.insert("disruption".into(), Value::Object(disruption));
    }
    spec.finish(report);
    out.insert("template".into(), template(metadata, template_spec));
    Pool {
        spec: out,
        kubelet,
        class,
        inline_class: None,
    }
}

/// The requirements v1alpha5's AWS defaulting webhook added to every
/// Provisioner that did not constrain their keys; v1 adds none, so they
/// are written out to launch the same instances as before.
fn v1alpha5_defaults(template_spec: &mut Map<String, Value>, path: &str, report: &mut Report) {
    let requirements = template_spec
        .entry("requirements")
        .or_insert_with(|| json!([]));
    let Some(list) = requirements.as_array_mut() else {
        return;
    };
    let has = |list: &[Value], key: &str| list.iter().any(|r| r["key"] == key);
    let mut defaults = Vec::new();
    for (key, values) in [
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("karpenter.sh/capacity-type", "on-demand"),
    ] {
        if !has(list, key) {
            defaults.push(json!({"key": key, "operator": "In", "values": [values]}));
        }
    }
    let instance_keys = [
        "node.kubernetes.io/instance-type",
        "karpenter.k8s.aws/instance-family",
        "karpenter.k8s.aws/instance-category",
        "karpenter.k8s.aws/instance-generation",
    ];
    if !instance_keys.iter().any(|k| has(list, k)) {
        defaults.push(json!({"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]}));
        defaults.push(json!({"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["2"]}));
    }
    if !defaults.is_empty() {
        let keys: Vec<&str> = defaults.iter().filter_map(|d| d["key"].as_str()).collect();
        report.note(
            path,
            format!(
                "v1alpha5 defaulted {} when not given; written out, as v1 does not",
                keys.join(", ")
            ),
        );
        list.extend(defaults);
    }
}

/// `spec.template` from its parts.
fn template(metadata: Map<String, Value>, spec: Map<String, Value>) -> Value {
    let mut template = Map::new();
    if !metadata.is_empty() {
        template.insert("metadata".into(), Value::Object(metadata));
    }
    template.insert("spec".into(), Value::Object(spec));
    Value::Object(template)
}

/// The v1 reference to an EC2NodeClass.
fn node_class_ref(name: &str) -> Value {
    json!({"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": name})
}

/// `requirements`, with renamed label keys, and a requirement whose
/// operator needs no values left without them.
fn requirements(old: &mut Fields, out: &mut Map<String, Value>, report: &mut Report) {
    let path = old.path("requirements");
    let Some(value) = old.take("requirements") else {
        return;
    };
    let Value::Array(items) = value else {
        report.action(&path, "expected a list; not converted");
        return;
    };
    let mut requirements = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        let mut r = Fields::of(&format!("{path}[{i}]"), item, report);
        let mut new = Map::new();
        if let Some(key) = r.take_str("key", report) {
            let key = match RENAMED_LABELS.iter().find(|(old, _)| *old == key) {
                Some((_, renamed)) => {
                    report.note(&r.path("key"), format!("{key} is {renamed} in v1"));
                    renamed.to_string()
                }
                None => key,
            };
            new.insert("key".into(), json!(key));
        }
        r.move_same(&["operator", "values", "minValues"], &mut new);
        r.finish(report);
        requirements.push(Value::Object(new));
    }
    out.insert("requirements".into(), Value::Array(requirements));
}

/// The v1 kubelet settings of old ones.
fn kubelet_of(mut old: Fields, report: &mut Report) -> Value {
    let mut out = Map::new();
    old.move_same(KUBELET_FIELDS, &mut out);
    if let Some(runtime) = old.take("containerRuntime") {
        let path = old.path("containerRuntime");
        if runtime.as_str() == Some("containerd") {
            report.note(&path, "containerd is the only runtime in v1; left out");
        } else {
            report.action(&path, format!("{runtime} is not available in v1 (containerd only); left out: check that your workloads run on containerd"));
        }
    }
    old.finish(report);
    Value::Object(out)
}

/// Keys renamed per `renames`, each rename noted.
fn rename_keys(
    map: Map<String, Value>,
    renames: &[(&str, &str)],
    path: &str,
    report: &mut Report,
) -> Map<String, Value> {
    map.into_iter()
        .map(
            |(key, value)| match renames.iter().find(|(old, _)| *old == key) {
                Some((_, renamed)) => {
                    report.note(&format!("{path}.{key}"), format!("is {renamed} in v1"));
                    (renamed.to_string(), value)
                }
                None => (key, value),
            },
        )
        .collect()
}

/// A duration for an old `ttlSeconds*` field, in the largest whole unit.
fn seconds_duration(value: &Value, path: &str, report: &mut Report) -> Option<String> {
    let Some(seconds) = value.as_u64() else {
        report.action(
            path,
            format!("expected a whole number of seconds, found {value}; not converted"),
        );
        return None;
    };
    Some(match seconds {
        s if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    })
}

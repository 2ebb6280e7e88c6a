//! `convert`: old Karpenter manifests as v1 NodePools and EC2NodeClasses.
//!
//! Reads any mix of v1alpha5 `Provisioner`s with v1alpha1
//! `AWSNodeTemplate`s, v1beta1 `NodePool`s / `EC2NodeClass`es /
//! `NodeClaim`s (and `List`s of them, as `kubectl get -o yaml` writes), and
//! writes v1 objects as YAML ([`Conversion::to_yaml`]) or Terraform
//! ([`terraform::render`]). Every field of the input is either mapped or
//! reported ([`Finding`]) with its path and what to do; an output that the
//! project's validation refuses is reported the same way, so what is
//! written applies cleanly once the findings marked [`Severity::Action`]
//! are dealt with.
//!
//! Where v1 changed a default, the old behaviour is written out (nodes of
//! a Provisioner without `ttlSecondsUntilExpired` never expired: the
//! NodePool gets `expireAfter: Never`) and noted, so converting changes
//! manifests, not what the cluster does.

mod fields;
mod nodeclass;
mod nodepool;
pub mod terraform;

use fields::{Fields, Report};
use karpenter_api::v1::{EC2NodeClass, NodePool};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::fmt;

/// Choices the input cannot make.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The cluster's name, for the placeholders a stub class needs (the
    /// discovery tag, the bootstrap's node role name); `CLUSTER_NAME` when
    /// not given.
    pub cluster_name: Option<String>,
}

impl Options {
    fn cluster(&self) -> &str {
        self.cluster_name.as_deref().unwrap_or("CLUSTER_NAME")
    }
}

/// How much a finding asks of the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Must be dealt with: a field with no v1 equivalent, a placeholder to
    /// confirm, an output the validation refuses.
    Action,
    /// Worth knowing: how a field was mapped, a default v1 changed.
    Note,
}

/// One thing the conversion has to say about one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The object: `Provisioner default (old.yaml)`.
    pub object: String,
    /// The field's path in that object (`spec.provider.launchTemplate`).
    pub path: String,
    /// What happened and what to do.
    pub message: String,
    /// Whether it must be acted on.
    pub severity: Severity,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.severity {
            Severity::Action => "action",
            Severity::Note => "note",
        };
        write!(f, "{tag}: {}: {}: {}", self.object, self.path, self.message)
    }
}

/// The v1 kinds `convert` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `karpenter.k8s.aws/v1` EC2NodeClass.
    EC2NodeClass,
    /// `karpenter.sh/v1` NodePool.
    NodePool,
}

/// One converted object.
#[derive(Debug, Clone)]
pub struct Object {
    /// Its kind.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// What it was made from: `Provisioner default (old.yaml)`.
    pub from: String,
    /// The whole v1 manifest.
    pub manifest: Value,
}

/// The result of a conversion.
#[derive(Debug, Clone, Default)]
pub struct Conversion {
    /// The v1 objects: EC2NodeClasses first, so applying them in order works.
    pub objects: Vec<Object>,
    /// What the conversion has to say, object by object.
    pub findings: Vec<Finding>,
}

impl Conversion {
    /// Whether some finding must be acted on before the output is applied.
    pub fn needs_action(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Action)
    }

    /// The objects as YAML documents, each headed by a comment naming its
    /// source and what must still be done to it.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        for object in &self.objects {
            out.push_str("---\n");
            out.push_str(&comment(&header(self, object)));
            out.push_str(&serde_norway::to_string(&object.manifest).expect("JSON values are YAML"));
        }
        out
    }

    /// The objects as one JSON `List`.
    pub fn to_json(&self) -> String {
        let items: Vec<&Value> = self.objects.iter().map(|o| &o.manifest).collect();
        serde_json::to_string_pretty(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
            .expect("JSON")
    }
}

/// `lines` as `#` comments wrapped at 78 columns, continuation lines indented.
pub(crate) fn comment(lines: &[String]) -> String {
    let mut out = String::new();
    for line in lines {
        let mut current = String::from("#");
        for word in line.split(' ') {
            if current.len() + 1 + word.len() > 78 && current.len() > 4 {
                out.push_str(&current);
                out.push('\n');
                current = String::from("#  ");
            }
            current.push(' ');
            current.push_str(word);
        }
        out.push_str(&current);
        out.push('\n');
    }
    out
}

/// The comment lines above an object: its source, then each action.
pub(crate) fn header(conversion: &Conversion, object: &Object) -> Vec<String> {
    let mut lines = vec![format!(
        "Converted by karpenter-bootstrap convert from {}.",
        object.from
    )];
    for f in conversion
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Action && f.object == object.from)
    {
        lines.push(format!("TODO {}: {}", f.path, f.message));
    }
    lines
}

/// One YAML document of the input.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it came from: `old.yaml`, or `-` for standard input.
    pub origin: String,
    /// Its content.
    pub value: Value,
}

/// Why the input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// A file is not YAML.
    #[error("{origin}: not YAML: {message}")]
    NotYaml {
        /// The file.
        origin: String,
        /// What the parser said.
        message: String,
    },
}

/// The documents of one file's text (a `List`'s items count as documents).
pub fn read_documents(origin: &str, text: &str) -> Result<Vec<Document>, ConvertError> {
    let mut docs = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| ConvertError::NotYaml {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        match value {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                for item in map
                    .get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    docs.push(Document {
                        origin: origin.to_string(),
                        value: item.clone(),
                    });
                }
            }
            value => docs.push(Document {
                origin: origin.to_string(),
                value,
            }),
        }
    }
    Ok(docs)
}

/// A converted class, until the pools' kubelet settings are placed.
struct Class {
    name: String,
    from: String,
    metadata: Map<String, Value>,
    spec: Map<String, Value>,
}

/// A converted pool, until it knows its class.
struct PoolOut {
    name: String,
    from: String,
    metadata: Map<String, Value>,
    pool: nodepool::Pool,
    /// A v1alpha5 pool, whose missing class becomes a stub.
    old_api: bool,
}

/// Converts `docs`; never fails: what cannot be converted is a finding.
pub fn convert(docs: Vec<Document>, options: &Options) -> Conversion {
    let mut classes = Vec::new();
    let mut pools = Vec::new();
    let mut reports = Vec::new();
    for doc in docs {
        let api_version = doc
            .value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let kind = doc
            .value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let name = doc
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let version = api_version.rsplit('/').next().unwrap_or_default();
        let from = format!("{version} {kind} {name} ({})", doc.origin);
        let mut report = Report::new(from.clone());
        let group = api_version.split('/').next().unwrap_or_default();
        if group != "karpenter.sh" && group != "karpenter.k8s.aws" {
            report.note("kind", "not a Karpenter object; skipped");
            reports.push(report);
            continue;
        }
        let mut object = Fields::of("", doc.value, &mut report);
        object.drop(&["apiVersion", "kind", "status"]);
        let metadata = metadata(object.take_fields("metadata", &mut report), &mut report);
        let spec = Fields::of(
            "spec",
            object.take("spec").unwrap_or(Value::Null),
            &mut report,
        );
        object.finish(&mut report);
        if name.is_empty() {
            report.action("metadata.name", "missing; the object is skipped");
            reports.push(report);
            continue;
        }
        match (api_version.as_str(), kind.as_str()) {
            ("karpenter.sh/v1alpha5", "Provisioner") => {
                let pool = nodepool::from_provisioner(&name, spec, &mut report);
                pools.push(PoolOut { name, from, metadata, pool, old_api: true });
            }
            ("karpenter.k8s.aws/v1alpha1", "AWSNodeTemplate") => {
                let spec = nodeclass::from_v1alpha1(spec, options, &mut report);
                classes.push(Class { name, from, metadata, spec });
            }
            ("karpenter.sh/v1beta1", "NodePool") => {
                let pool = nodepool::from_v1beta1(spec, &mut report);
                pools.push(PoolOut { name, from, metadata, pool, old_api: false });
            }
            ("karpenter.k8s.aws/v1beta1", "EC2NodeClass") => {
                let spec = nodeclass::from_v1beta1(spec, &mut report);
                classes.push(Class { name, from, metadata, spec });
            }
            ("karpenter.sh/v1beta1", "NodeClaim") | ("karpenter.sh/v1alpha5", "Machine") => report.note(
                "kind",
                "the controller's own record of a node; not converted (the controller makes v1 NodeClaims, and the API server serves existing ones as v1 once the v1 CRDs are installed)",
            ),
            ("karpenter.sh/v1", _) | ("karpenter.k8s.aws/v1", _) => {
                report.note("apiVersion", "already v1; not converted (apply it as it is)")
            }
            _ => report.action("apiVersion", format!("{api_version} {kind} is not a version convert reads (v1alpha5 Provisioner, v1alpha1 AWSNodeTemplate, v1beta1 NodePool, EC2NodeClass, NodeClaim); skipped")),
        }
        reports.push(report);
    }
    let mut objects = Vec::new();
    // Inline providers become classes named after their Provisioner.
    for out in &mut pools {
        if let Some(inline) = out.pool.inline_class.take() {
            let mut report = Report::new(out.from.clone());
            let spec = nodeclass::from_v1alpha1(inline, options, &mut report);
            let name = unique_name(&classes, &out.name, "provider");
            report.note("spec.provider", format!("becomes the EC2NodeClass {name}"));
            out.pool.class = name.clone();
            set_class_ref(&mut out.pool, &name);
            classes.push(Class {
                name,
                from: out.from.clone(),
                metadata: Map::new(),
                spec,
            });
            reports.push(report);
        }
    }
    place_kubelets(&mut pools, &mut classes, &mut reports, options);
    let classes = classes
        .into_iter()
        .map(|c| (Kind::EC2NodeClass, c.name, c.from, c.metadata, c.spec));
    let pools = pools
        .into_iter()
        .map(|p| (Kind::NodePool, p.name, p.from, p.metadata, p.pool.spec));
    for (kind, name, from, metadata, spec) in classes.chain(pools) {
        if let Some(first) = objects
            .iter()
            .find(|o: &&Object| o.kind == kind && o.name == name)
        {
            let mut report = Report::new(from);
            report.action(
                "metadata.name",
                format!(
                    "{} comes from {} too; this one is left out: rename one of them",
                    first.manifest["kind"].as_str().unwrap_or_default(),
                    first.from
                ),
            );
            reports.push(report);
            continue;
        }
        let (api_version, kind_name) = match kind {
            Kind::EC2NodeClass => ("karpenter.k8s.aws/v1", "EC2NodeClass"),
            Kind::NodePool => ("karpenter.sh/v1", "NodePool"),
        };
        let manifest = manifest(api_version, kind_name, &name, metadata, spec);
        objects.push(checked(kind, name, from, manifest, &mut reports));
    }
    // Each object's findings together, objects in the order first reported.
    let mut order: Vec<String> = Vec::new();
    for report in &reports {
        if !order.contains(&report.object) {
            order.push(report.object.clone());
        }
    }
    let mut findings: Vec<Finding> = reports.into_iter().flat_map(|r| r.findings).collect();
    findings.sort_by_key(|f| order.iter().position(|o| *o == f.object));
    Conversion { objects, findings }
}

/// Gives each class the kubelet settings of the pools using it (v1 keeps
/// them in the class). Pools of one class that want different settings
/// get a copy of the class each, named `<class>-<pool>`; a v1alpha5 pool
/// whose class is not in the input gets a stub.
fn place_kubelets(
    pools: &mut [PoolOut],
    classes: &mut Vec<Class>,
    reports: &mut Vec<Report>,
    options: &Options,
) {
    let mut placed: Vec<(String, Option<Value>)> = Vec::new();
    for out in pools.iter_mut() {
        let mut report = Report::new(out.from.clone());
        if !classes.iter().any(|c| c.name == out.pool.class) {
            if !out.old_api {
                report.note("spec.template.spec.nodeClassRef", format!("the EC2NodeClass {} is not in the input; convert it too, or check it exists", out.pool.class));
                if let Some(kubelet) = &out.pool.kubelet {
                    report.action("spec.template.spec.kubelet", format!("v1 keeps kubelet settings in the EC2NodeClass: set spec.kubelet of {} to {kubelet}", out.pool.class));
                }
                reports.push(report);
                continue;
            }
            let name = out.pool.class.clone();
            let mut stub_report =
                Report::new(format!("EC2NodeClass {name}, a stub for {}", out.from));
            let spec = nodeclass::stub(options, "spec", &mut stub_report);
            classes.push(Class {
                name,
                from: stub_report.object.clone(),
                metadata: Map::new(),
                spec,
            });
            reports.push(stub_report);
        }
        let kubelet = out.pool.kubelet.clone();
        let class = match placed.iter().find(|(c, _)| *c == out.pool.class) {
            None => out.pool.class.clone(),
            Some((_, k)) if *k == kubelet => {
                reports.push(report);
                continue;
            }
            Some(_) => {
                let original = classes
                    .iter()
                    .find(|c| c.name == out.pool.class)
                    .expect("class exists");
                let name = unique_name(classes, &original.name, &out.name);
                let copy = Class {
                    name: name.clone(),
                    from: original.from.clone(),
                    metadata: original.metadata.clone(),
                    spec: original.spec.clone(),
                };
                let path = if out.old_api {
                    "spec.providerRef"
                } else {
                    "spec.template.spec.nodeClassRef"
                };
                report.note(path, format!("another pool gives {} other kubelet settings; this pool uses the copy {name}", out.pool.class));
                classes.push(copy);
                set_class_ref(&mut out.pool, &name);
                out.pool.class = name.clone();
                name
            }
        };
        let target = classes
            .iter_mut()
            .find(|c| c.name == class)
            .expect("class exists");
        match &kubelet {
            Some(k) => {
                target.spec.insert("kubelet".into(), k.clone());
                let path = if out.old_api {
                    "spec.kubeletConfiguration"
                } else {
                    "spec.template.spec.kubelet"
                };
                report.note(
                    path,
                    format!(
                        "moved to EC2NodeClass {class} (v1 keeps kubelet settings in the class)"
                    ),
                );
            }
            None => {
                target.spec.remove("kubelet");
            }
        }
        placed.push((class, kubelet));
        reports.push(report);
    }
}

/// `base`, or `base-suffix` when a class is named `base` already.
fn unique_name(classes: &[Class], base: &str, suffix: &str) -> String {
    let mut name = base.to_string();
    let mut n = 1;
    while classes.iter().any(|c| c.name == name) {
        name = if n == 1 {
            format!("{base}-{suffix}")
        } else {
            format!("{base}-{suffix}-{n}")
        };
        n += 1;
    }
    name
}

/// Points the pool's template at class `name`.
fn set_class_ref(pool: &mut nodepool::Pool, name: &str) {
    if let Some(reference) = pool
        .spec
        .get_mut("template")
        .and_then(|t| t.get_mut("spec"))
        .and_then(|s| s.get_mut("nodeClassRef"))
    {
        reference["name"] = json!(name);
    }
}

/// Annotations the old controllers wrote, which v1 writes anew.
const CONTROLLER_ANNOTATIONS: &[&str] = &[
    "karpenter.sh/provisioner-hash",
    "karpenter.sh/nodepool-hash",
    "karpenter.sh/nodepool-hash-version",
    "karpenter.k8s.aws/nodetemplate-hash",
    "karpenter.k8s.aws/ec2nodeclass-hash",
    "karpenter.k8s.aws/ec2nodeclass-hash-version",
    "kubectl.kubernetes.io/last-applied-configuration",
];

/// The labels and annotations of old metadata (what the API server wrote
/// is left for it to write again).
fn metadata(old: Option<Fields>, report: &mut Report) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(mut old) = old else {
        return out;
    };
    if let Some(labels) = old.take_string_map("labels", report) {
        out.insert("labels".into(), Value::Object(labels));
    }
    if let Some(mut annotations) = old.take_string_map("annotations", report) {
        annotations.retain(|k, _| !CONTROLLER_ANNOTATIONS.contains(&k.as_str()));
        if !annotations.is_empty() {
            out.insert("annotations".into(), Value::Object(annotations));
        }
    }
    out
}

/// A whole manifest.
fn manifest(
    api_version: &str,
    kind: &str,
    name: &str,
    mut metadata: Map<String, Value>,
    spec: Map<String, Value>,
) -> Value {
    metadata.insert("name".into(), json!(name));
    json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec})
}

/// The object, after the project's validation has had its say: each rule
/// it breaks, and each field the v1 types do not know, is an action on it.
fn checked(
    kind: Kind,
    name: String,
    from: String,
    manifest: Value,
    reports: &mut Vec<Report>,
) -> Object {
    let mut report = Report::new(from.clone());
    let typed = match kind {
        Kind::NodePool => serde_json::from_value::<NodePool>(manifest.clone())
            .map_err(|e| e.to_string())
            .map(|p| {
                (
                    karpenter_api::validation::nodepool(&p).err(),
                    serde_json::to_value(&p),
                )
            }),
        Kind::EC2NodeClass => serde_json::from_value::<EC2NodeClass>(manifest.clone())
            .map_err(|e| e.to_string())
            .map(|c| {
                (
                    karpenter_api::validation::ec2nodeclass(&c).err(),
                    serde_json::to_value(&c),
                )
            }),
    };
    match typed {
        Err(e) => report.action("spec", format!("not a valid v1 object: {e}")),
        Ok((errors, round_trip)) => {
            for error in errors.into_iter().flat_map(|e| e.errors) {
                report.action(&error.path, format!("v1 refuses it: {}", error.rule));
            }
            if let Ok(round_trip) = round_trip {
                for path in unknown_paths(&manifest, &round_trip, "") {
                    report.action(
                        &path,
                        "not a v1 field; left in the output for you to remove or move",
                    );
                }
            }
        }
    }
    reports.push(report);
    Object {
        kind,
        name,
        from,
        manifest,
    }
}

/// Null, or an empty list or mapping (which typed objects leave out).
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Paths present in `given` but not in `known` (what the typed object dropped).
fn unknown_paths(given: &Value, known: &Value, path: &str) -> Vec<String> {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (given, known) {
        (Value::Object(g), Value::Object(k)) => g
            .iter()
            .flat_map(|(key, v)| match k.get(key) {
                Some(kv) => unknown_paths(v, kv, &join(key)),
                None if is_empty(v) => Vec::new(),
                None => vec![join(key)],
            })
            .collect(),
        (Value::Array(g), Value::Array(k)) => g
            .iter()
            .zip(k)
            .enumerate()
            .flat_map(|(i, (gv, kv))| unknown_paths(gv, kv, &format!("{path}[{i}]")))
            .collect(),
        _ => Vec::new(),
    }
}

//! Bottlerocket: the user's TOML with `settings.kubernetes` written as
//! upstream writes it. Karpenter sets the cluster (name, API server, CA), the
//! DNS address, `max-pods`, the kubelet reservations and eviction settings
//! the NodeClass has, merges its labels over the user's, and replaces the
//! taints; other `settings` tables pass through. Keys of `settings.kubernetes`
//! are those upstream's model knows, in its order; others are dropped (as
//! upstream does: Bottlerocket refuses unknown keys, so the node would not boot).

use super::gotoml::{Item, Table};
use super::{ClusterInfo, NodeBootstrap, UserDataError, gofmt};
use toml::Value;

/// The shape of a `settings.kubernetes` key.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Int,
    Bool,
    StrList,
    /// A table of strings.
    StrMap,
    /// A table of string lists (node taints; a single string is accepted).
    TaintMap,
    /// A table of tables whose fields are written in the given order.
    Structs(&'static [&'static str]),
    /// One table whose fields are written in the given order.
    Struct(&'static [&'static str]),
}

use Kind::*;

/// `settings.kubernetes` keys of upstream's model, in its declaration order.
const KUBERNETES: &[(&str, Kind)] = &[
    ("api-server", Str),
    ("cloud-provider", Str),
    ("cluster-certificate", Str),
    ("cluster-name", Str),
    ("cluster-dns-ip", Str),
    (
        "credential-providers",
        Structs(&["enabled", "cache-duration", "image-patterns", "environment"]),
    ),
    ("node-labels", StrMap),
    ("node-taints", TaintMap),
    ("max-pods", Int),
    ("static-pods", Structs(&["enabled", "manifest"])),
    ("eviction-hard", StrMap),
    ("eviction-soft", StrMap),
    ("eviction-soft-grace-period", StrMap),
    ("eviction-max-pod-grace-period", Int),
    ("kube-reserved", StrMap),
    ("system-reserved", StrMap),
    ("allowed-unsafe-sysctls", StrList),
    ("server-tls-bootstrap", Bool),
    ("registry-qps", Int),
    ("registry-burst", Int),
    ("event-qps", Int),
    ("event-burst", Int),
    ("kube-api-qps", Int),
    ("kube-api-burst", Int),
    ("container-log-max-size", Str),
    ("container-log-max-files", Int),
    ("cpu-manager-policy", Str),
    ("cpu-manager-policy-options", StrList),
    ("cpu-manager-reconcile-period", Str),
    ("memory-manager-policy", Str),
    (
        "memory-manager-reserved-memory",
        Structs(&["enabled", "memory", "hugepages-2Mi", "hugepages-1Gi"]),
    ),
    ("topology-manager-scope", Str),
    ("topology-manager-policy", Str),
    (
        "topology-manager-policy-options",
        Struct(&["prefer-closest-numa-nodes", "max-allowable-numa-nodes"]),
    ),
    ("image-gc-high-threshold-percent", Str),
    ("image-gc-low-threshold-percent", Str),
    ("ids-per-pod", Int),
    ("cpu-cfs-quota-enforced", Bool),
    ("shutdown-grace-period", Str),
    ("shutdown-grace-period-for-critical-pods", Str),
    ("cluster-domain", Str),
    ("seccomp-default", Bool),
    ("pod-pids-limit", Int),
    ("device-ownership-from-security-context", Bool),
    ("single-process-oom-kill", Bool),
    ("container-log-max-workers", Int),
    ("container-log-monitor-interval", Str),
    ("hostname-override-source", Str),
    ("log-level", Int),
];

/// Field order of a `settings.bootstrap-commands.<name>` table.
const BOOTSTRAP_COMMAND: &[&str] = &["commands", "mode", "essential"];

/// The bootstrap command that stripes the instance store for ephemeral
/// storage. The explicit `--dirs` form works on every Bottlerocket release
/// with `apiclient ephemeral-storage` (upstream drops `--dirs` from v1.46 on,
/// where it is the default).
const RAID0_COMMAND: &str = "000-mount-instance-storage";

fn kind_error(key: &str, wanted: &str) -> UserDataError {
    UserDataError::Toml(format!(
        "settings.kubernetes.{key} must be {wanted} in Bottlerocket user data"
    ))
}

/// Checks a user value against the model's shape.
fn check(key: &str, kind: Kind, value: &Value) -> Result<(), UserDataError> {
    let strings = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_str));
    let ok = match kind {
        Str => value.is_str(),
        Int => value.is_integer(),
        Bool => value.is_bool(),
        StrList => strings(value),
        StrMap => value
            .as_table()
            .is_some_and(|t| t.values().all(Value::is_str)),
        TaintMap => value
            .as_table()
            .is_some_and(|t| t.values().all(|v| v.is_str() || strings(v))),
        Structs(_) => value
            .as_table()
            .is_some_and(|t| t.values().all(Value::is_table)),
        Struct(_) => value.is_table(),
    };
    if ok {
        return Ok(());
    }
    Err(kind_error(
        key,
        match kind {
            Str => "a string",
            Int => "an integer",
            Bool => "a boolean",
            StrList => "a list of strings",
            StrMap => "a table of strings",
            TaintMap => "a table of \"value:Effect\" strings",
            Structs(_) | Struct(_) => "a table of tables",
        },
    ))
}

/// A table written with its fields in `order` (others dropped).
fn ordered(table: &toml::Table, order: &[&str]) -> Table {
    let mut out = Table::default();
    for key in order {
        if let Some(v) = table.get(*key) {
            out.push(key, Item::from_value(v));
        }
    }
    out
}

fn item(kind: Kind, value: &Value) -> Item {
    match (kind, value) {
        (Structs(order), Value::Table(t)) => {
            let mut keys: Vec<&String> = t.keys().collect();
            keys.sort();
            Item::Table(Table(
                keys.into_iter()
                    .filter_map(|k| {
                        t[k].as_table()
                            .map(|inner| (k.clone(), Item::Table(ordered(inner, order))))
                    })
                    .collect(),
            ))
        }
        (Struct(order), Value::Table(t)) => Item::Table(ordered(t, order)),
        (_, v) => Item::from_value(v),
    }
}

fn strings(map: &std::collections::BTreeMap<String, String>) -> Value {
    Value::Table(
        map.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

pub(super) fn render(
    cluster: &ClusterInfo,
    node: &NodeBootstrap,
    user: Option<&str>,
) -> Result<String, UserDataError> {
    let doc: toml::Table = toml::from_str(user.unwrap_or_default()).map_err(|e| {
        UserDataError::Toml(format!(
            "Bottlerocket user data must be TOML: {}",
            e.message()
        ))
    })?;
    let mut settings = match doc.get("settings") {
        None => toml::Table::new(),
        Some(Value::Table(t)) => t.clone(),
        Some(_) => {
            return Err(UserDataError::Toml(
                "`settings` must be a TOML table".into(),
            ));
        }
    };
    let mut kubernetes = match settings.remove("kubernetes") {
        None => toml::Table::new(),
        Some(Value::Table(t)) => t,
        Some(_) => {
            return Err(UserDataError::Toml(
                "`settings.kubernetes` must be a TOML table".into(),
            ));
        }
    };
    for (key, value) in &kubernetes {
        if let Some((_, kind)) = KUBERNETES.iter().find(|(k, _)| k == key) {
            check(key, *kind, value)?;
        } else {
            tracing::warn!(key = %key, "dropping a settings.kubernetes key Bottlerocket does not know");
        }
    }
    // What Karpenter sets.
    let set = |kubernetes: &mut toml::Table, key: &str, value: Value| {
        kubernetes.insert(key.to_string(), value);
    };
    set(&mut kubernetes, "cluster-name", cluster.name.clone().into());
    set(
        &mut kubernetes,
        "api-server",
        cluster.endpoint.clone().into(),
    );
    if cluster.ca_bundle.is_empty() {
        kubernetes.remove("cluster-certificate");
    } else {
        set(
            &mut kubernetes,
            "cluster-certificate",
            cluster.ca_bundle.clone().into(),
        );
    }
    let mut labels = kubernetes
        .get("node-labels")
        .and_then(Value::as_table)
        .cloned()
        .unwrap_or_default();
    for (k, v) in &node.labels {
        labels.insert(k.clone(), v.clone().into());
    }
    set(&mut kubernetes, "node-labels", Value::Table(labels));
    let kubelet = &node.kubelet;
    if let Some(max_pods) = kubelet.max_pods {
        set(&mut kubernetes, "max-pods", i64::from(max_pods).into());
    }
    // One address as a string (upstream's form); several as the list
    // Bottlerocket also accepts (upstream would drop all but the first).
    match kubelet.cluster_dns.as_deref() {
        Some([one]) => set(&mut kubernetes, "cluster-dns-ip", one.clone().into()),
        Some(many) if many.len() > 1 => set(
            &mut kubernetes,
            "cluster-dns-ip",
            Value::Array(many.iter().cloned().map(Value::from).collect()),
        ),
        _ => {}
    }
    for (key, map) in [
        ("system-reserved", &kubelet.system_reserved),
        ("kube-reserved", &kubelet.kube_reserved),
        ("eviction-hard", &kubelet.eviction_hard),
        ("eviction-soft", &kubelet.eviction_soft),
    ] {
        if let Some(map) = map {
            set(&mut kubernetes, key, strings(map));
        }
    }
    if let Some(periods) = &kubelet.eviction_soft_grace_period {
        let mut out = toml::Table::new();
        for (signal, text) in periods {
            let nanos = gofmt::parse_duration(text).ok_or_else(|| UserDataError::Kubelet {
                field: format!("evictionSoftGracePeriod[{signal}]"),
                reason: format!("{text:?} is not a duration (e.g. 1m30s)"),
            })?;
            out.insert(signal.clone(), gofmt::format_duration(nanos).into());
        }
        set(
            &mut kubernetes,
            "eviction-soft-grace-period",
            Value::Table(out),
        );
    }
    if let Some(v) = kubelet.eviction_max_pod_grace_period {
        set(
            &mut kubernetes,
            "eviction-max-pod-grace-period",
            i64::from(v).into(),
        );
    }
    if let Some(v) = kubelet.image_gc_high_threshold_percent {
        set(
            &mut kubernetes,
            "image-gc-high-threshold-percent",
            v.to_string().into(),
        );
    }
    if let Some(v) = kubelet.image_gc_low_threshold_percent {
        set(
            &mut kubernetes,
            "image-gc-low-threshold-percent",
            v.to_string().into(),
        );
    }
    if let Some(v) = kubelet.cpu_cfs_quota {
        set(&mut kubernetes, "cpu-cfs-quota-enforced", v.into());
    }
    let mut taints = toml::Table::new();
    for t in &node.taints {
        let entry = taints
            .entry(t.key.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(format!("{}:{}", t.value.as_deref().unwrap_or_default(), t.effect).into());
        }
    }
    set(&mut kubernetes, "node-taints", Value::Table(taints));

    // settings.kubernetes in the model's order.
    let mut k8s = Table::default();
    for (key, kind) in KUBERNETES {
        if let Some(value) = kubernetes.get(*key) {
            k8s.push(key, item(*kind, value));
        }
    }
    if node.raid0 {
        let commands = settings
            .entry("bootstrap-commands")
            .or_insert_with(|| Value::Table(toml::Table::new()));
        let Value::Table(commands) = commands else {
            return Err(UserDataError::Toml(
                "`settings.bootstrap-commands` must be a TOML table".into(),
            ));
        };
        let bind = [
            "apiclient",
            "ephemeral-storage",
            "bind",
            "--dirs",
            "/var/lib/containerd",
            "/var/lib/kubelet",
            "/var/log/pods",
        ];
        let command: toml::Table = toml::toml! {
            mode = "always"
            essential = true
        };
        let mut command = command;
        command.insert(
            "commands".into(),
            Value::Array(vec![
                Value::Array(
                    ["apiclient", "ephemeral-storage", "init"]
                        .map(Value::from)
                        .to_vec(),
                ),
                Value::Array(bind.map(Value::from).to_vec()),
            ]),
        );
        commands.insert(RAID0_COMMAND.into(), Value::Table(command));
    }
    let mut settings_out = Table::default();
    let mut keys: Vec<String> = settings.keys().cloned().collect();
    keys.push("kubernetes".into());
    keys.sort();
    for key in keys {
        let entry = if key == "kubernetes" {
            Item::Table(k8s.clone())
        } else if key == "bootstrap-commands" {
            item(Structs(BOOTSTRAP_COMMAND), &settings[&key])
        } else {
            Item::from_value(&settings[&key])
        };
        settings_out.push(&key, entry);
    }
    let mut root = Table::default();
    root.push("settings", Item::Table(settings_out));
    Ok(super::gotoml::write(&root))
}

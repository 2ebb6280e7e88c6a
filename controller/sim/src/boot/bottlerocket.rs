//! Bottlerocket: user data is TOML (gzip detected by its magic bytes) that
//! must be a table with a `settings` table; EKS needs
//! `settings.kubernetes.cluster-name`, `api-server` and `cluster-certificate`.
//! `cluster-dns-ip` falls back to `10.100.0.10` as pluto's does without a VPC in `10/8`.

use super::{AgentConfig, BootError, agent_error, parse_taint};
use std::collections::BTreeMap;
use toml::Value;

const AGENT: &str = "bottlerocket";

pub(super) fn read(user_data: &str) -> Result<AgentConfig, BootError> {
    let text = super::nodeadm::decode(user_data);
    let doc: toml::Table = toml::from_str(&text)
        .map_err(|e| agent_error(AGENT, format!("user data is not TOML: {}", e.message())))?;
    let settings = doc
        .get("settings")
        .and_then(Value::as_table)
        .ok_or_else(|| agent_error(AGENT, "user data has no [settings] table"))?;
    let empty = toml::Table::new();
    let k8s = settings
        .get("kubernetes")
        .and_then(Value::as_table)
        .unwrap_or(&empty);
    let text_of = |key: &str| k8s.get(key).and_then(Value::as_str).map(String::from);
    let required = |key: &str| {
        text_of(key).ok_or_else(|| {
            agent_error(
                AGENT,
                format!("settings.kubernetes.{key} is required on EKS"),
            )
        })
    };
    let strings = |key: &str| -> BTreeMap<String, String> {
        k8s.get(key)
            .and_then(Value::as_table)
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut taints = Vec::new();
    for (key, values) in k8s
        .get("node-taints")
        .and_then(Value::as_table)
        .into_iter()
        .flatten()
    {
        let values: Vec<&str> = match values {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for value_effect in values {
            if let Some(t) = parse_taint(&format!("{key}={value_effect}")) {
                taints.push(t);
            }
        }
    }
    Ok(AgentConfig {
        cluster_name: required("cluster-name")?,
        endpoint: required("api-server")?,
        ca_bundle: required("cluster-certificate")?,
        cluster_dns: match k8s.get("cluster-dns-ip") {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) => many
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect(),
            _ => vec!["10.100.0.10".into()],
        },
        labels: strings("node-labels"),
        taints,
        max_pods: k8s.get("max-pods").and_then(Value::as_integer),
        pods_per_core: None,
        kube_reserved: strings("kube-reserved"),
        system_reserved: strings("system-reserved"),
        eviction_hard: strings("eviction-hard"),
        maps_from_flags: false,
        raid0: settings
            .get("bootstrap-commands")
            .and_then(Value::as_table)
            .is_some_and(|c| {
                c.values().any(|cmd| {
                    cmd.get("commands")
                        .and_then(Value::as_array)
                        .is_some_and(|cmds| {
                            cmds.iter().any(|c| {
                                c.as_array().is_some_and(|words| {
                                    words.iter().filter_map(Value::as_str).collect::<Vec<_>>()
                                        == ["apiclient", "ephemeral-storage", "init"]
                                })
                            })
                        })
                })
            }),
    })
}

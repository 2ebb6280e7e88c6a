//! nodeadm (AL2023): user data is base64-decoded when it all is base64,
//! gunzipped when it starts with gzip's magic bytes; a MIME document's
//! `application/node.eks.aws` parts (or the whole document) are NodeConfigs,
//! merged in order (later values win, kubelet flags append); the cluster's
//! name, endpoint, CA and CIDR are required (`validation.go`).

use super::{AgentConfig, BootError, agent_error, apply_kubelet_flag};
use base64::Engine;
use karpenter_controller::userdata::mime;
use serde_json::Value;
use std::io::Read;

const AGENT: &str = "nodeadm";

/// Base64 and gzip as nodeadm detects them.
pub(super) fn decode(data: &str) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let bytes = match engine.decode(data.trim()) {
        Ok(decoded) if !data.trim().is_empty() => decoded,
        _ => data.as_bytes().to_vec(),
    };
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = String::new();
        if flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut out)
            .is_ok()
        {
            return out;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Deep merge: objects by key, `kubelet.flags` appended, everything else replaced.
fn merge(into: &mut Value, from: &Value, path: &str) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                let child = format!("{path}.{k}");
                match a.get_mut(k) {
                    Some(existing) => merge(existing, v, &child),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if path == ".spec.kubelet.flags" => {
            a.extend(b.iter().cloned())
        }
        (slot, v) if !v.is_null() => *slot = v.clone(),
        _ => {}
    }
}

fn node_config(text: &str) -> Result<Value, BootError> {
    let text = decode(text);
    karpenter_controller::userdata::check_node_config(&text).map_err(|e| agent_error(AGENT, e))
}

pub(super) fn read(user_data: &str) -> Result<AgentConfig, BootError> {
    let text = decode(user_data);
    let documents: Vec<Value> = match mime::parse(&text) {
        Ok(parts) if mime::looks_like_mime(&text) => {
            let configs: Vec<Value> = parts
                .iter()
                .filter(|p| p.media_type() == mime::NODE_CONFIG)
                .map(|p| node_config(&p.body))
                .collect::<Result<_, _>>()?;
            if configs.is_empty() {
                return Err(agent_error(AGENT, "no NodeConfig in the user data"));
            }
            configs
        }
        _ => vec![node_config(&text)?],
    };
    let mut merged = Value::Null;
    for doc in documents {
        if merged.is_null() {
            merged = doc;
        } else {
            merge(&mut merged, &doc, "");
        }
    }
    let cluster = &merged["spec"]["cluster"];
    let field = |name: &str| cluster[name].as_str().unwrap_or_default().to_string();
    let mut config = AgentConfig {
        cluster_name: field("name"),
        endpoint: field("apiServerEndpoint"),
        ca_bundle: field("certificateAuthority"),
        ..Default::default()
    };
    let cidr = field("cidr");
    for (value, message) in [
        (
            &config.cluster_name,
            "Name is missing in cluster configuration",
        ),
        (
            &config.endpoint,
            "Apiserver endpoint is missing in cluster configuration",
        ),
        (
            &config.ca_bundle,
            "Certificate authority is missing in cluster configuration",
        ),
        (&cidr, "CIDR is missing in cluster configuration"),
    ] {
        if value.is_empty() {
            return Err(agent_error(AGENT, message));
        }
    }
    let kubelet = &merged["spec"]["kubelet"]["config"];
    let strings = |v: &Value| -> std::collections::BTreeMap<String, String> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    };
    config.cluster_dns = match kubelet["clusterDNS"].as_array() {
        Some(list) => list
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        None => karpenter_controller::userdata::dns_ip_from_cidr(&cidr)
            .into_iter()
            .collect(),
    };
    config.max_pods = kubelet["maxPods"].as_i64();
    config.pods_per_core = kubelet["podsPerCore"].as_i64();
    config.kube_reserved = strings(&kubelet["kubeReserved"]);
    config.system_reserved = strings(&kubelet["systemReserved"]);
    config.eviction_hard = strings(&kubelet["evictionHard"]);
    if let Some(taints) = kubelet["registerWithTaints"].as_array() {
        config.taints = taints
            .iter()
            .filter_map(|t| serde_json::from_value(t.clone()).ok())
            .collect();
    }
    for flag in merged["spec"]["kubelet"]["flags"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(flag) = flag.as_str() {
            apply_kubelet_flag(&mut config, flag);
        }
    }
    config.raid0 = merged["spec"]["instance"]["localStorage"]["strategy"].as_str() == Some("RAID0");
    Ok(config)
}

//! AL2023: the user's parts, then Karpenter's nodeadm `NodeConfig`, in one
//! MIME document. nodeadm merges `application/node.eks.aws` parts in order,
//! so the cluster details and kubelet settings Karpenter writes come last and
//! win; cloud-init runs the shell parts.

use super::mime::{self, NODE_CONFIG, Part, SHELL_SCRIPT};
use super::{ClusterInfo, NodeBootstrap, UserDataError, gofmt};
use base64::Engine;
use serde_json::{Map, Value, json};

/// `apiVersion` of a nodeadm `NodeConfig`.
pub const API_VERSION: &str = "node.eks.aws/v1alpha1";
/// `kind` of a nodeadm `NodeConfig`.
pub const KIND: &str = "NodeConfig";

pub(super) fn render(
    cluster: &ClusterInfo,
    node: &NodeBootstrap,
    user: Option<&str>,
) -> Result<String, UserDataError> {
    let config = node_config(cluster, node)?;
    let mut parts = user_parts(user.unwrap_or_default())?;
    parts.push(Part::new(NODE_CONFIG, config));
    Ok(mime::serialize(&parts))
}

/// Karpenter's `NodeConfig` as YAML with sorted keys, as upstream writes it.
fn node_config(cluster: &ClusterInfo, node: &NodeBootstrap) -> Result<String, UserDataError> {
    let cidr = cluster
        .cidr
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            UserDataError::Cluster(
                "the cluster's service CIDR is unknown, and nodeadm requires spec.cluster.cidr: \
             allow eks:DescribeCluster to the controller (it reads kubernetesNetworkConfig)"
                    .into(),
            )
        })?;
    let mut spec_cluster = Map::new();
    if !cluster.endpoint.is_empty() {
        spec_cluster.insert("apiServerEndpoint".into(), cluster.endpoint.clone().into());
    }
    if !cluster.ca_bundle.is_empty() {
        // A Go []byte: decoded, then base64 again when marshalled (so it is normalised).
        let engine = base64::engine::general_purpose::STANDARD;
        let bytes = engine.decode(cluster.ca_bundle.trim()).map_err(|e| {
            UserDataError::Cluster(format!(
                "the cluster CA bundle is not base64 ({e}): check CLUSTER_CA_BUNDLE"
            ))
        })?;
        spec_cluster.insert("certificateAuthority".into(), engine.encode(bytes).into());
    }
    spec_cluster.insert("cidr".into(), cidr.into());
    if !cluster.name.is_empty() {
        spec_cluster.insert("name".into(), cluster.name.clone().into());
    }
    let mut kubelet_config = match serde_json::to_value(&node.kubelet) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let taints: Vec<Value> = node
        .taints
        .iter()
        .map(|t| {
            let mut taint = json!({"effect": t.effect, "key": t.key});
            if let Some(v) = t.value.as_deref().filter(|v| !v.is_empty()) {
                taint["value"] = v.into();
            }
            taint
        })
        .collect();
    kubelet_config.insert("registerWithTaints".into(), taints.into());
    let mut kubelet = json!({"config": kubelet_config});
    if !node.labels.is_empty() {
        let labels: Vec<String> = node
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        kubelet["flags"] = json!([format!("--node-labels={}", gofmt::quote(&labels.join(",")))]);
    }
    let mut local_storage = json!({});
    if node.raid0 {
        local_storage["strategy"] = "RAID0".into();
    }
    let config = json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {},
        "spec": {
            "cluster": spec_cluster,
            "containerd": {},
            "instance": {"localStorage": local_storage},
            "kubelet": kubelet,
        }
    });
    let yaml = serde_norway::to_string(&config)
        .map_err(|e| UserDataError::NodeConfig(format!("writing the NodeConfig: {e}")))?;
    Ok(format!("# Karpenter Generated NodeConfig\n{yaml}"))
}

/// The user's user data as parts: a MIME document's parts (only their
/// content type kept, as upstream), a NodeConfig document, or a shell script.
fn user_parts(user: &str) -> Result<Vec<Part>, UserDataError> {
    if user.is_empty() {
        return Ok(Vec::new());
    }
    let parts = if mime::looks_like_mime(user) {
        mime::parse(user)?
            .into_iter()
            .map(Part::with_content_type_only)
            .collect()
    } else if matches!(serde_norway::from_str::<Value>(user), Ok(Value::Object(_))) {
        vec![Part::new(NODE_CONFIG, user)]
    } else {
        vec![Part::new(SHELL_SCRIPT, user)]
    };
    for (i, part) in parts.iter().enumerate() {
        if part.media_type() == NODE_CONFIG {
            check_node_config(&part.body)
                .map_err(|e| UserDataError::NodeConfig(format!("part {}: {e}", i + 1)))?;
        }
    }
    Ok(parts)
}

/// What nodeadm's decoder checks of a `NodeConfig` document: YAML or JSON,
/// `apiVersion: node.eks.aws/v1alpha1`, `kind: NodeConfig`.
pub fn check_node_config(text: &str) -> Result<Value, karpenter_api::Invalid> {
    decode_node_config(text).map_err(karpenter_api::Invalid)
}

fn decode_node_config(text: &str) -> Result<Value, String> {
    let value: Value = serde_norway::from_str(text)
        .map_err(|e| format!("a NodeConfig must be YAML or JSON: {e}"))?;
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    let kind = value.get("kind").and_then(Value::as_str);
    if api_version != Some(API_VERSION) || kind != Some(KIND) {
        return Err(format!(
            "nodeadm reads only apiVersion {API_VERSION} kind {KIND}, this document has apiVersion {} kind {}",
            api_version.unwrap_or("(none)"),
            kind.unwrap_or("(none)")
        ));
    }
    Ok(value)
}

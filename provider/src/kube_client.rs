//! The cluster client from the provider block, built on first use (never at
//! plan time): a kubeconfig file and context, or `host` with `token`
//! and/or an `exec` credential plugin and `cluster_ca_certificate`, which
//! are turned into an in-memory kubeconfig so both go through kube-rs's
//! kubeconfig loader (TLS verified; the token never logged).

use crate::cty::Value;
use crate::error::ResourceError;
use base64::Engine;
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

/// A client for the cluster the provider block names.
pub async fn client(config: &Value) -> Result<kube::Client, ResourceError> {
    let text = |name: &str| config.get(name).as_str().map(str::to_string);
    let (kubeconfig, context) = match text("host") {
        Some(host) => (inline(config, &host)?, None),
        None => {
            let path = text("config_path")
                .or_else(|| std::env::var("KUBECONFIG").ok())
                .or_else(|| {
                    std::env::var("HOME")
                        .ok()
                        .map(|h| format!("{h}/.kube/config"))
                })
                .ok_or("no cluster: set host, or config_path (or KUBECONFIG)")?;
            let file =
                Kubeconfig::read_from(&path).map_err(|e| format!("config_path {path}: {e}"))?;
            (file, text("config_context"))
        }
    };
    let options = KubeConfigOptions {
        context,
        ..KubeConfigOptions::default()
    };
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| format!("kubeconfig: {e}"))?;
    kube::Client::try_from(config).map_err(|e| ResourceError::kube("cluster client", &e))
}

/// A kubeconfig holding `host`, the CA, the token and the exec plugin.
fn inline(config: &Value, host: &str) -> Result<Kubeconfig, String> {
    let mut cluster = json!({"server": host});
    if let Some(ca) = config.get("cluster_ca_certificate").as_str() {
        cluster["certificate-authority-data"] =
            json!(base64::engine::general_purpose::STANDARD.encode(ca));
    }
    let mut user = json!({});
    if let Some(token) = config.get("token").as_str() {
        user["token"] = json!(token);
    }
    let exec = config.get("exec");
    if let Some(command) = exec.get("command").as_str() {
        let args: Vec<&str> = match exec.get("args") {
            Value::List(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let env: Vec<serde_json::Value> = match exec.get("env") {
            Value::Map(map) => map
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| json!({"name": k, "value": v})))
                .collect(),
            _ => Vec::new(),
        };
        user["exec"] = json!({
            "apiVersion": exec.get("api_version").as_str(),
            "command": command,
            "args": args,
            "env": env,
            "interactiveMode": "Never",
        });
    }
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "terraform", "cluster": cluster}],
        "users": [{"name": "terraform", "user": user}],
        "contexts": [{"name": "terraform", "context": {"cluster": "terraform", "user": "terraform"}}],
        "current-context": "terraform",
    }))
    .map_err(|e| format!("provider block: {e}"))
}

//! Bootstrap user data per AMI family, merged with the NodeClass's own:
//! AL2023 (nodeadm `NodeConfig` in a MIME multi-part document), Bottlerocket
//! (TOML settings), AL2 (`/etc/eks/bootstrap.sh`) and Custom (the user's, as is).

use super::ami::AmiFamily;
use crate::cloud::CloudError;
use k8s_openapi::api::core::v1::Taint;
use std::collections::BTreeMap;

/// What a node needs to join the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterInfo {
    /// EKS cluster name.
    pub name: String,
    /// API server URL.
    pub endpoint: String,
    /// Base64 PEM of the cluster CA.
    pub ca_bundle: String,
    /// Service CIDR (nodeadm needs it).
    pub cidr: String,
}

/// Node-specific bootstrap input: labels, taints and kubelet settings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeBootstrap {
    /// Labels the kubelet registers with.
    pub labels: BTreeMap<String, String>,
    /// Taints the kubelet registers with (including start-up and `unregistered`).
    pub taints: Vec<Taint>,
    /// `kubelet.maxPods`, when the NodeClass sets it.
    pub max_pods: Option<i32>,
    /// `kubelet.clusterDNS`, when the NodeClass sets it.
    pub cluster_dns: Vec<String>,
}

const BOUNDARY: &str = "//";

/// The user data for `family`, merged with the NodeClass's `user_data`.
pub fn render(
    family: AmiFamily,
    cluster: &ClusterInfo,
    node: &NodeBootstrap,
    user: Option<&str>,
) -> Result<String, CloudError> {
    match family {
        AmiFamily::Al2023 => Ok(al2023(cluster, node, user)),
        AmiFamily::Bottlerocket => bottlerocket(cluster, node, user),
        AmiFamily::Al2 => Ok(al2(cluster, node, user)),
        AmiFamily::Custom => Ok(user.unwrap_or_default().to_string()),
    }
}

fn taint_flag(taints: &[Taint]) -> String {
    taints
        .iter()
        .map(|t| {
            format!(
                "{}={}:{}",
                t.key,
                t.value.as_deref().unwrap_or_default(),
                t.effect
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn label_flag(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// One part of a MIME multi-part document.
#[derive(Debug, Clone, PartialEq)]
struct Part {
    content_type: String,
    body: String,
}

/// Splits the user's user data into MIME parts. A document that is not
/// multi-part is one part: a shell script when it starts with `#!`, otherwise
/// `default_type`.
fn user_parts(user: &str, default_type: &str) -> Vec<Part> {
    let boundary = user
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-type: multipart/")
        })
        .and_then(|l| l.split("boundary=").nth(1))
        .map(|b| b.trim().trim_matches('"').to_string());
    let Some(boundary) = boundary else {
        if user.trim().is_empty() {
            return Vec::new();
        }
        let content_type = if user.starts_with("#!") {
            "text/x-shellscript"
        } else {
            default_type
        };
        return vec![Part {
            content_type: content_type.to_string(),
            body: user.to_string(),
        }];
    };
    let delimiter = format!("--{boundary}");
    user.split(&delimiter)
        .skip(1)
        .filter(|chunk| !chunk.starts_with("--"))
        .filter_map(|chunk| {
            let chunk = chunk.trim_start_matches(['\r', '\n']);
            let (headers, body) = chunk
                .split_once("\n\n")
                .or_else(|| chunk.split_once("\r\n\r\n"))?;
            let content_type = headers
                .lines()
                .find_map(|h| {
                    h.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                })
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_else(|| "text/x-shellscript".to_string());
            Some(Part {
                content_type,
                body: body.trim_end_matches(['\r', '\n']).to_string() + "\n",
            })
        })
        .collect()
}

fn mime(parts: &[Part]) -> String {
    let mut out =
        format!("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\n\n");
    for part in parts {
        out.push_str(&format!(
            "--{BOUNDARY}\nContent-Type: {}\n\n{}",
            part.content_type, part.body
        ));
        if !part.body.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push_str(&format!("--{BOUNDARY}--\n"));
    out
}

/// AL2023: the user's parts first, then Karpenter's `NodeConfig` (nodeadm
/// merges them in order, so the cluster details Karpenter sets win).
fn al2023(cluster: &ClusterInfo, node: &NodeBootstrap, user: Option<&str>) -> String {
    let mut kubelet_config = serde_json::Map::new();
    if let Some(max_pods) = node.max_pods {
        kubelet_config.insert("maxPods".into(), max_pods.into());
    }
    if !node.cluster_dns.is_empty() {
        kubelet_config.insert("clusterDNS".into(), node.cluster_dns.clone().into());
    }
    let mut flags = vec![format!("--node-labels={}", label_flag(&node.labels))];
    if !node.taints.is_empty() {
        flags.push(format!(
            "--register-with-taints={}",
            taint_flag(&node.taints)
        ));
    }
    let config = serde_json::json!({
        "apiVersion": "node.eks.aws/v1alpha1",
        "kind": "NodeConfig",
        "spec": {
            "cluster": {
                "name": cluster.name,
                "apiServerEndpoint": cluster.endpoint,
                "certificateAuthority": cluster.ca_bundle,
                "cidr": cluster.cidr,
            },
            "kubelet": {"config": kubelet_config, "flags": flags},
        }
    });
    let yaml = serde_norway::to_string(&config).unwrap_or_default();
    let mut parts = user_parts(user.unwrap_or_default(), "application/node.eks.aws");
    parts.push(Part {
        content_type: "application/node.eks.aws".into(),
        body: yaml,
    });
    mime(&parts)
}

/// AL2: the user's parts first, then the bootstrap script.
fn al2(cluster: &ClusterInfo, node: &NodeBootstrap, user: Option<&str>) -> String {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut kubelet_args = vec![format!("--node-labels={}", label_flag(&node.labels))];
    if !node.taints.is_empty() {
        kubelet_args.push(format!(
            "--register-with-taints={}",
            taint_flag(&node.taints)
        ));
    }
    let mut script = format!(
        "#!/bin/bash -xe\nexec > >(tee /var/log/user-data.log|logger -t user-data -s 2>/dev/console) 2>&1\n/etc/eks/bootstrap.sh {} --apiserver-endpoint {} --b64-cluster-ca {}",
        quote(&cluster.name),
        quote(&cluster.endpoint),
        quote(&cluster.ca_bundle)
    );
    if let Some(dns) = node.cluster_dns.first() {
        script.push_str(&format!(" \\\n--dns-cluster-ip {}", quote(dns)));
    }
    if let Some(max_pods) = node.max_pods {
        script.push_str(" \\\n--use-max-pods false");
        kubelet_args.push(format!("--max-pods={max_pods}"));
    }
    script.push_str(&format!(
        " \\\n--kubelet-extra-args {}\n",
        quote(&kubelet_args.join(" "))
    ));
    let mut parts = user_parts(user.unwrap_or_default(), "text/x-shellscript");
    parts.push(Part {
        content_type: "text/x-shellscript; charset=\"us-ascii\"".into(),
        body: script,
    });
    mime(&parts)
}

/// Bottlerocket: the user's TOML with `settings.kubernetes` cluster fields set
/// by Karpenter, labels and taints merged (Karpenter's win on the same key).
fn bottlerocket(
    cluster: &ClusterInfo,
    node: &NodeBootstrap,
    user: Option<&str>,
) -> Result<String, CloudError> {
    let mut doc: toml::Table = toml::from_str(user.unwrap_or_default()).map_err(|e| {
        CloudError::Invalid(format!(
            "spec.userData: Bottlerocket user data must be TOML: {e}"
        ))
    })?;
    let settings = table(&mut doc, "settings")?;
    let kubernetes = table(settings, "kubernetes")?;
    kubernetes.insert("cluster-name".into(), cluster.name.clone().into());
    kubernetes.insert("api-server".into(), cluster.endpoint.clone().into());
    kubernetes.insert(
        "cluster-certificate".into(),
        cluster.ca_bundle.clone().into(),
    );
    if let Some(dns) = node.cluster_dns.first() {
        kubernetes.insert("cluster-dns-ip".into(), dns.clone().into());
    }
    if let Some(max_pods) = node.max_pods {
        kubernetes.insert("max-pods".into(), i64::from(max_pods).into());
    }
    let labels = table(kubernetes, "node-labels")?;
    for (k, v) in &node.labels {
        labels.insert(k.clone(), v.clone().into());
    }
    let taints = table(kubernetes, "node-taints")?;
    for t in &node.taints {
        let value = format!("{}:{}", t.value.as_deref().unwrap_or_default(), t.effect);
        taints.insert(t.key.clone(), toml::Value::Array(vec![value.into()]));
    }
    Ok(toml::to_string(&doc).unwrap_or_default())
}

/// The sub-table `key` of `parent`, created when missing; an error names a key that is not a table.
fn table<'a>(parent: &'a mut toml::Table, key: &str) -> Result<&'a mut toml::Table, CloudError> {
    parent
        .entry(key)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .ok_or_else(|| CloudError::Invalid(format!("spec.userData: `{key}` must be a TOML table")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> ClusterInfo {
        ClusterInfo {
            name: "demo".into(),
            endpoint: "https://demo.eks.example".into(),
            ca_bundle: "Q0EK".into(),
            cidr: "10.100.0.0/16".into(),
        }
    }

    fn node() -> NodeBootstrap {
        NodeBootstrap {
            labels: BTreeMap::from([("karpenter.sh/nodepool".into(), "default".into())]),
            taints: vec![Taint {
                key: "karpenter.sh/unregistered".into(),
                value: None,
                effect: "NoExecute".into(),
                time_added: None,
            }],
            max_pods: Some(58),
            cluster_dns: vec!["10.100.0.10".into()],
        }
    }

    #[test]
    fn al2023_appends_a_node_config_after_the_users_parts() {
        let user = "#!/bin/bash\necho hello\n";
        let out = render(AmiFamily::Al2023, &cluster(), &node(), Some(user)).unwrap();
        let parts = user_parts(&out, "x");
        assert_eq!(parts.len(), 2, "{out}");
        assert_eq!(
            parts[0],
            Part {
                content_type: "text/x-shellscript".into(),
                body: user.into()
            }
        );
        assert_eq!(parts[1].content_type, "application/node.eks.aws");
        let config: serde_json::Value = serde_norway::from_str(&parts[1].body).unwrap();
        assert_eq!(
            config["spec"]["cluster"]["apiServerEndpoint"],
            "https://demo.eks.example"
        );
        assert_eq!(config["spec"]["kubelet"]["config"]["maxPods"], 58);
        assert_eq!(
            config["spec"]["kubelet"]["flags"],
            serde_json::json!([
                "--node-labels=karpenter.sh/nodepool=default",
                "--register-with-taints=karpenter.sh/unregistered=:NoExecute"
            ])
        );
        // A multi-part document from the user keeps every part, in order.
        let again = render(AmiFamily::Al2023, &cluster(), &node(), Some(&out)).unwrap();
        assert_eq!(user_parts(&again, "x").len(), 3);
    }

    #[test]
    fn bottlerocket_merges_toml() {
        let user = "[settings.kubernetes]\ncluster-name = 'wrong'\n[settings.kubernetes.node-labels]\nteam = 'a'\n[settings.host-containers.admin]\nenabled = true\n";
        let out = render(AmiFamily::Bottlerocket, &cluster(), &node(), Some(user)).unwrap();
        let doc: toml::Table = toml::from_str(&out).unwrap();
        let k8s = &doc["settings"]["kubernetes"];
        assert_eq!(k8s["cluster-name"].as_str(), Some("demo"));
        assert_eq!(k8s["max-pods"].as_integer(), Some(58));
        assert_eq!(k8s["node-labels"]["team"].as_str(), Some("a"));
        assert_eq!(
            k8s["node-labels"]["karpenter.sh/nodepool"].as_str(),
            Some("default")
        );
        assert_eq!(
            k8s["node-taints"]["karpenter.sh/unregistered"][0].as_str(),
            Some(":NoExecute")
        );
        assert_eq!(
            doc["settings"]["host-containers"]["admin"]["enabled"].as_bool(),
            Some(true)
        );
        let bad = render(
            AmiFamily::Bottlerocket,
            &cluster(),
            &node(),
            Some("settings = 3"),
        )
        .unwrap_err();
        assert!(
            bad.to_string()
                .contains("spec.userData: `settings` must be a TOML table"),
            "{bad}"
        );
    }

    #[test]
    fn al2_bootstrap_script_and_custom_passthrough() {
        let out = render(AmiFamily::Al2, &cluster(), &node(), None).unwrap();
        assert!(out.contains("/etc/eks/bootstrap.sh 'demo' --apiserver-endpoint 'https://demo.eks.example' --b64-cluster-ca 'Q0EK'"), "{out}");
        assert!(out.contains("--kubelet-extra-args '--node-labels=karpenter.sh/nodepool=default --register-with-taints=karpenter.sh/unregistered=:NoExecute --max-pods=58'"), "{out}");
        assert_eq!(
            render(AmiFamily::Custom, &cluster(), &node(), Some("anything")).unwrap(),
            "anything"
        );
    }
}

//! AL2: the user's parts, then a shell part calling `/etc/eks/bootstrap.sh`
//! with the cluster's endpoint and CA (so the node never calls
//! `eks:DescribeCluster`), the DNS address, and the kubelet settings as
//! `--kubelet-extra-args`, in upstream's order.

use super::mime::{self, Part, SHELL_SCRIPT};
use super::{ClusterInfo, NodeBootstrap, UserDataError, gofmt};
use std::collections::BTreeMap;

pub(super) fn render(
    cluster: &ClusterInfo,
    node: &NodeBootstrap,
    user: Option<&str>,
) -> Result<String, UserDataError> {
    let script = script(cluster, node)?;
    let mut parts = match user.unwrap_or_default() {
        "" => Vec::new(),
        text if mime::looks_like_mime(text) => mime::parse(text)?,
        text => vec![Part::new(SHELL_SCRIPT, text)],
    };
    parts.push(Part::new(SHELL_SCRIPT, script));
    Ok(mime::serialize(&parts).replace('\r', ""))
}

/// `--name="k=v,k2=v2"` with keys sorted (upstream iterates a Go map).
fn joined(name: &str, map: &Option<BTreeMap<String, String>>, separator: &str) -> Option<String> {
    let map = map.as_ref().filter(|m| !m.is_empty())?;
    let items: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}{separator}{v}"))
        .collect();
    Some(format!("{name}={}", gofmt::quote(&items.join(","))))
}

/// The kubelet flags, in upstream's order.
fn kubelet_args(node: &NodeBootstrap) -> Result<Vec<String>, UserDataError> {
    let mut args = Vec::new();
    if !node.labels.is_empty() {
        let labels: Vec<String> = node
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        args.push(format!("--node-labels={}", gofmt::quote(&labels.join(","))));
    }
    let taints: Vec<String> = node.taints.iter().map(gofmt::taint).collect();
    args.push(format!(
        "--register-with-taints={}",
        gofmt::quote(&taints.join(","))
    ));
    let k = &node.kubelet;
    if let Some(v) = k.max_pods {
        args.push(format!("--max-pods={v}"));
    }
    if let Some(v) = k.pods_per_core {
        args.push(format!("--pods-per-core={v}"));
    }
    args.extend(joined("--system-reserved", &k.system_reserved, "="));
    args.extend(joined("--kube-reserved", &k.kube_reserved, "="));
    args.extend(joined("--eviction-hard", &k.eviction_hard, "<"));
    args.extend(joined("--eviction-soft", &k.eviction_soft, "<"));
    if let Some(periods) = &k.eviction_soft_grace_period {
        let mut go = BTreeMap::new();
        for (signal, text) in periods {
            let nanos = gofmt::parse_duration(text).ok_or_else(|| UserDataError::Kubelet {
                field: format!("evictionSoftGracePeriod[{signal}]"),
                reason: format!("{text:?} is not a duration (e.g. 1m30s)"),
            })?;
            go.insert(signal.clone(), gofmt::format_duration(nanos));
        }
        args.extend(joined("--eviction-soft-grace-period", &Some(go), "="));
    }
    if let Some(v) = k.eviction_max_pod_grace_period {
        args.push(format!("--eviction-max-pod-grace-period={v}"));
    }
    if let Some(v) = k.image_gc_high_threshold_percent {
        args.push(format!("--image-gc-high-threshold={v}"));
    }
    if let Some(v) = k.image_gc_low_threshold_percent {
        args.push(format!("--image-gc-low-threshold={v}"));
    }
    if let Some(v) = k.cpu_cfs_quota {
        args.push(format!("--cpu-cfs-quota={v}"));
    }
    Ok(args)
}

fn script(cluster: &ClusterInfo, node: &NodeBootstrap) -> Result<String, UserDataError> {
    let args = kubelet_args(node)?;
    if let Some(bad) = args.iter().find(|a| a.contains('\'')) {
        return Err(UserDataError::Kubelet {
            field: "(labels, taints)".into(),
            reason: format!(
                "{bad} contains a single quote, which bootstrap.sh's systemd drop-in cannot hold"
            ),
        });
    }
    let mut s = String::from("#!/bin/bash -xe\n");
    s.push_str("exec > >(tee /var/log/user-data.log|logger -t user-data -s 2>/dev/console) 2>&1\n");
    s.push_str(&format!(
        "/etc/eks/bootstrap.sh '{}' --apiserver-endpoint '{}' ",
        cluster.name, cluster.endpoint
    ));
    if !cluster.ca_bundle.is_empty() {
        s.push_str(&format!("--b64-cluster-ca '{}'", cluster.ca_bundle));
    }
    let dns = node.kubelet.cluster_dns.as_ref().and_then(|d| d.first());
    let ipv6 = dns.is_some_and(|d| d.contains(':'));
    if ipv6 {
        s.push_str(" \\\n--ip-family ipv6");
        if let Some(cidr) = cluster.cidr.as_deref().filter(|c| c.contains(':')) {
            s.push_str(&format!(" \\\n--service-ipv6-cidr '{cidr}'"));
        }
    }
    if dns.is_some() {
        // bootstrap.sh splits a comma-separated list (upstream writes only the first).
        let all = node
            .kubelet
            .cluster_dns
            .clone()
            .unwrap_or_default()
            .join(",");
        s.push_str(&format!(" \\\n--dns-cluster-ip '{all}'"));
    }
    if node.kubelet.max_pods.is_some() {
        s.push_str(" \\\n--use-max-pods false");
    }
    s.push_str(&format!(" \\\n--kubelet-extra-args '{}'", args.join(" ")));
    if node.raid0 {
        s.push_str(" \\\n--local-disks raid0");
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use karpenter_api::v1::KubeletConfiguration;

    #[test]
    fn ipv6_clusters_get_the_ip_family_and_service_cidr() {
        let cluster = ClusterInfo {
            name: "v6".into(),
            endpoint: "https://v6.example".into(),
            ca_bundle: "Q0EK".into(),
            cidr: Some("fd12:3456:789a::/108".into()),
            dns_ip: Some("fd12:3456:789a::a".into()),
        };
        let node = NodeBootstrap {
            kubelet: KubeletConfiguration {
                max_pods: Some(110),
                cluster_dns: Some(vec!["fd12:3456:789a::a".into()]),
                ..Default::default()
            },
            ..Default::default()
        };
        let out = render(&cluster, &node, None).unwrap();
        assert!(
            out.contains(
                " \\\n--ip-family ipv6 \\\n--service-ipv6-cidr 'fd12:3456:789a::/108' \\\n--dns-cluster-ip 'fd12:3456:789a::a'"
            ),
            "{out}"
        );
    }
}

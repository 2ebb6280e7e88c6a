//! The user data an instance boots with, per AMI family, as upstream Karpenter
//! v1.14 writes it (its golden files are the test: `tests/userdata_golden.rs`):
//!
//! - [`nodeadm`] (AL2023): a nodeadm `NodeConfig` appended to the user's MIME
//!   parts;
//! - [`bottlerocket`]: the user's TOML with `settings.kubernetes` filled in;
//! - [`eks_bootstrap`] (AL2): a `/etc/eks/bootstrap.sh` call after the user's
//!   parts;
//! - Custom: the user's user data, untouched.
//!
//! `karpenter_sim::boot` reads what this writes the way the node agents do.

mod bottlerocket;
mod claim;

pub use claim::{DO_NOT_SYNC_TAINTS, kubelet_may_set};
mod eks_bootstrap;
pub mod gofmt;
mod gotoml;
pub mod mime;
mod nodeadm;

pub use nodeadm::check_node_config;

use k8s_openapi::api::core::v1::Taint;
use karpenter_api::v1::KubeletConfiguration;
use std::collections::BTreeMap;

pub use karpenter_api::v1::AmiFamily;

/// What a node needs to know about its cluster (found by
/// [`crate::cloud::aws::cluster`] on EKS).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ClusterInfo {
    /// EKS cluster name.
    pub name: String,
    /// API server URL (`https://...`).
    pub endpoint: String,
    /// Base64 of the cluster CA's PEM.
    pub ca_bundle: String,
    /// Service CIDR (nodeadm requires it; the other agents derive the DNS IP from it).
    pub cidr: Option<String>,
    /// The cluster DNS address (the `kube-dns` Service's IP), written as
    /// `clusterDNS` when the NodeClass sets none.
    pub dns_ip: Option<String>,
}

impl ClusterInfo {
    /// True when the service CIDR is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.cidr.as_deref().is_some_and(|c| c.contains(':'))
    }
}

/// The cluster DNS address nodeadm and `bootstrap.sh` derive from a service
/// CIDR: IPv4 `a.b.c.10`, IPv6 the prefix followed by `a`.
pub fn dns_ip_from_cidr(cidr: &str) -> Option<String> {
    let (address, _) = cidr.split_once('/')?;
    if address.contains(':') {
        address
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|_| format!("{address}a"))
    } else {
        address.parse::<std::net::Ipv4Addr>().ok()?;
        let (prefix, _) = address.rsplit_once('.')?;
        Some(format!("{prefix}.10"))
    }
}

/// What one node registers with: labels, taints, kubelet settings, storage.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NodeBootstrap {
    /// Labels the kubelet registers with.
    pub labels: BTreeMap<String, String>,
    /// Taints the kubelet registers with: the NodePool's, its start-up taints,
    /// then `karpenter.sh/unregistered`.
    pub taints: Vec<Taint>,
    /// The NodeClass's kubelet block with `maxPods` resolved for the instance
    /// types of the launch (every family needs a number).
    pub kubelet: KubeletConfiguration,
    /// `instanceStorePolicy: RAID0`: instance-store volumes become ephemeral storage.
    pub raid0: bool,
}

/// Why user data could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserDataError {
    /// The user's MIME document cannot be read.
    #[error("spec.userData: not a readable MIME multi-part document: {0}")]
    Mime(String),
    /// The user's Bottlerocket TOML cannot be read or merged.
    #[error("spec.userData: {0}")]
    Toml(String),
    /// The user's NodeConfig is not one nodeadm accepts.
    #[error("spec.userData: {0}")]
    NodeConfig(String),
    /// A cluster fact the family needs is missing or malformed.
    #[error("{0}")]
    Cluster(String),
    /// A kubelet value the family cannot express.
    #[error("spec.kubelet.{field}: {reason}")]
    Kubelet {
        /// The field (`evictionSoftGracePeriod`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The user data (plain text; EC2 wants it base64-encoded) for `family`.
pub fn render(
    family: AmiFamily,
    cluster: &ClusterInfo,
    node: &NodeBootstrap,
    user: Option<&str>,
) -> Result<String, UserDataError> {
    let mut node = node.clone();
    // Upstream's defaultClusterDNS: the kube-dns address when the NodeClass names none.
    if node.kubelet.cluster_dns.as_ref().is_none_or(Vec::is_empty)
        && let Some(dns) = &cluster.dns_ip
    {
        node.kubelet.cluster_dns = Some(vec![dns.clone()]);
    }
    match family {
        AmiFamily::Al2023 => nodeadm::render(cluster, &node, user),
        AmiFamily::Bottlerocket => bottlerocket::render(cluster, &node, user),
        AmiFamily::Al2 => eks_bootstrap::render(cluster, &node, user),
        AmiFamily::Custom => Ok(user.unwrap_or_default().to_string()),
    }
}

/// Checks that user data can be generated for `family` from the user's
/// `user` data and `kubelet` block, with stand-in cluster facts: what the
/// EC2NodeClass controller reports before anything launches.
pub fn check_user_data(
    family: AmiFamily,
    user: Option<&str>,
    kubelet: Option<&KubeletConfiguration>,
) -> Result<(), UserDataError> {
    let cluster = ClusterInfo {
        name: "check".into(),
        endpoint: "https://check".into(),
        ca_bundle: String::new(),
        cidr: Some("10.100.0.0/16".into()),
        dns_ip: None,
    };
    let mut kubelet = kubelet.cloned().unwrap_or_default();
    kubelet.max_pods = Some(kubelet.max_pods.unwrap_or(110));
    let node = NodeBootstrap {
        kubelet,
        ..Default::default()
    };
    render(family, &cluster, &node, user).map(|_| ())
}

/// Why nodes of `class` cannot get user data in `cluster`, as a condition
/// reason and message (upstream's `ValidationSucceeded`): user data the
/// family cannot merge, a kubelet value it cannot write, or an AL2023 class
/// while the service CIDR is unknown.
pub fn validate_class(
    class: &karpenter_api::v1::EC2NodeClass,
    cluster: &ClusterInfo,
) -> Result<(), (String, String)> {
    let family = AmiFamily::of(class);
    check_user_data(
        family,
        class.spec.user_data.as_deref(),
        class.spec.kubelet.as_ref(),
    )
    .map_err(|e| {
        let reason = match e {
            UserDataError::Kubelet { .. } => "KubeletConfigurationInvalid",
            _ => "UserDataInvalid",
        };
        (reason.to_string(), e.to_string())
    })?;
    if family == AmiFamily::Al2023 && cluster.cidr.is_none() {
        return Err((
            "ClusterCIDRResolutionFailed".into(),
            "the cluster's service CIDR is unknown (eks:DescribeCluster), and AL2023's nodeadm needs it".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_ip_is_derived_like_nodeadm() {
        assert_eq!(
            dns_ip_from_cidr("10.100.0.0/16").as_deref(),
            Some("10.100.0.10")
        );
        assert_eq!(
            dns_ip_from_cidr("172.20.0.0/16").as_deref(),
            Some("172.20.0.10")
        );
        assert_eq!(
            dns_ip_from_cidr("fd12:3456:789a::/108").as_deref(),
            Some("fd12:3456:789a::a")
        );
        assert_eq!(dns_ip_from_cidr("not-a-cidr"), None);
    }

    #[test]
    fn bad_user_data_is_reported_per_family() {
        let bad_mime = "MIME-Version: 1.0\nContent-Type: text/plain\n\nx";
        for family in [AmiFamily::Al2023, AmiFamily::Al2] {
            let err = check_user_data(family, Some(bad_mime), None).unwrap_err();
            assert!(err.to_string().contains("not multipart"), "{err}");
        }
        let err = check_user_data(AmiFamily::Bottlerocket, Some("#!/bin/bash\n ./x.sh"), None)
            .unwrap_err();
        assert!(err.to_string().contains("TOML"), "{err}");
        let other_kind = "apiVersion: node.eks.aws/v1alpha1\nkind: Something\n";
        let err = check_user_data(AmiFamily::Al2023, Some(other_kind), None).unwrap_err();
        assert!(err.to_string().contains("kind"), "{err}");
        assert!(check_user_data(AmiFamily::Custom, Some("anything"), None).is_ok());
        let kubelet = KubeletConfiguration {
            eviction_soft_grace_period: Some(BTreeMap::from([(
                "memory.available".to_string(),
                "soon".to_string(),
            )])),
            ..Default::default()
        };
        for family in [AmiFamily::Bottlerocket, AmiFamily::Al2] {
            let err = check_user_data(family, None, Some(&kubelet)).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("spec.kubelet.evictionSoftGracePeriod[memory.available]"),
                "{err}"
            );
        }
    }
}

//! Cluster discovery, as upstream does it: the API endpoint, CA, service
//! CIDR and IP family from `eks:DescribeCluster` (the controller policy
//! allows it), `CLUSTER_ENDPOINT` / `CLUSTER_CA_BUNDLE` overriding, the CA the
//! controller's own Kubernetes configuration trusts (the service account's
//! `ca.crt` in a pod) as the CA's last resort, and the cluster DNS address
//! from the `kube-system/kube-dns` Service, else derived from the CIDR.

use crate::userdata::{ClusterInfo, dns_ip_from_cidr};
use base64::Engine;
use k8s_openapi::api::core::v1::Service;

/// What the operator may set instead of what EKS says.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `CLUSTER_ENDPOINT`.
    pub endpoint: String,
    /// `CLUSTER_CA_BUNDLE` (base64 of the PEM).
    pub ca_bundle: String,
}

/// Why the cluster's facts could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    /// A fact every node needs is missing; the message says how to provide it.
    #[error("{0}")]
    Missing(String),
}

/// Base64 of the PEM of DER certificates (a kube `Config`'s `root_cert`).
pub fn pem_bundle(der_certificates: &[Vec<u8>]) -> String {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut pem = String::new();
    for der in der_certificates {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let body = engine.encode(der);
        for chunk in body.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    engine.encode(pem)
}

/// The cluster `name`'s facts: EKS's, with `overrides` winning, the
/// `trusted_ca` (base64 PEM the controller's client trusts) as the CA of
/// last resort, and the DNS address from `kube` (the `kube-dns` Service).
pub async fn discover(
    eks: &aws_sdk_eks::Client,
    kube: &kube::Client,
    name: &str,
    overrides: &Overrides,
    trusted_ca: Option<String>,
) -> Result<ClusterInfo, DiscoveryError> {
    let described = eks.describe_cluster().name(name).send().await;
    let (cluster, described_error) = match described {
        Ok(out) => (out.cluster, None),
        Err(e) => {
            let reason = super::sdk::cloud_error("DescribeCluster", e).to_string();
            tracing::warn!(cluster = name, error = %reason, "eks:DescribeCluster failed");
            (None, Some(reason))
        }
    };
    let why = || match &described_error {
        Some(e) => format!("eks:DescribeCluster for {name:?} failed ({e})"),
        None => format!("eks:DescribeCluster for {name:?} did not say"),
    };
    let endpoint = Some(overrides.endpoint.clone())
        .filter(|e| !e.is_empty())
        .or_else(|| cluster.as_ref().and_then(|c| c.endpoint.clone()))
        .ok_or_else(|| {
            DiscoveryError::Missing(format!(
                "the cluster's API endpoint is unknown: {}. Allow eks:DescribeCluster to the \
                 controller's role, check CLUSTER_NAME and AWS_REGION, or set CLUSTER_ENDPOINT \
                 (Helm: settings.clusterEndpoint)",
                why()
            ))
        })?;
    let ca_bundle = Some(overrides.ca_bundle.clone())
        .filter(|c| !c.is_empty())
        .or_else(|| {
            cluster
                .as_ref()
                .and_then(|c| c.certificate_authority.as_ref())
                .and_then(|c| c.data.clone())
        })
        .or(trusted_ca)
        .ok_or_else(|| {
            DiscoveryError::Missing(format!(
                "the cluster's CA is unknown: {}, and the controller's Kubernetes configuration \
                 names no CA. Set CLUSTER_CA_BUNDLE (base64 of the PEM)",
                why()
            ))
        })?;
    let network = cluster
        .as_ref()
        .and_then(|c| c.kubernetes_network_config.as_ref());
    let cidr = network
        .and_then(|n| n.service_ipv4_cidr.clone())
        .or_else(|| network.and_then(|n| n.service_ipv6_cidr.clone()));
    if cidr.is_none() {
        tracing::warn!(
            cluster = name,
            "the service CIDR is unknown ({}): AL2023 nodes cannot be launched until eks:DescribeCluster works",
            why()
        );
    }
    let services: kube::Api<Service> = kube::Api::namespaced(kube.clone(), "kube-system");
    let kube_dns = match services.get_opt("kube-dns").await {
        Ok(service) => service
            .and_then(|s| s.spec)
            .and_then(|s| s.cluster_ip)
            .filter(|ip| ip.parse::<std::net::IpAddr>().is_ok()),
        Err(e) => {
            tracing::warn!(error = %e, "reading kube-system/kube-dns");
            None
        }
    };
    let dns_ip = kube_dns.or_else(|| cidr.as_deref().and_then(dns_ip_from_cidr));
    Ok(ClusterInfo {
        name: name.to_string(),
        endpoint,
        ca_bundle,
        cidr,
        dns_ip,
    })
}

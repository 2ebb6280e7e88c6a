//! What a NodeClaim's node registers with, as upstream assembles it for the
//! user data: the claim's labels (less those the kubelet may not set), the
//! NodeClass and capacity type, `karpenter.sh/do-not-sync-taints` (so the
//! taints come from the user data alone), the NodePool's taints, its start-up
//! taints and `karpenter.sh/unregistered`.

use super::{AmiFamily, NodeBootstrap};
use k8s_openapi::api::core::v1::Taint;
use karpenter_api::labels;
use karpenter_api::v1::{EC2NodeClass, NodeClaim};
use std::collections::BTreeMap;

/// Tells Karpenter the node's taints come from its user data (upstream's key).
pub const DO_NOT_SYNC_TAINTS: &str = "karpenter.sh/do-not-sync-taints";

/// Labels of the `kubernetes.io` and `k8s.io` domains a kubelet may set
/// itself (the NodeRestriction admission plugin refuses the others).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "kubernetes.io/arch",
    "kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
];

/// True when a kubelet may register with label `key`.
pub fn kubelet_may_set(key: &str) -> bool {
    let Some((domain, _)) = key.split_once('/') else {
        return true;
    };
    let restricted = ["kubernetes.io", "k8s.io"]
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")));
    if !restricted || KUBELET_LABELS.contains(&key) {
        return true;
    }
    ["kubelet.kubernetes.io", "node.kubernetes.io"]
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
}

impl NodeBootstrap {
    /// The bootstrap of a node for `claim` of `class`, bought as
    /// `capacity_type` (`on-demand`, `spot`), admitting `max_pods` pods.
    pub fn for_claim(
        claim: &NodeClaim,
        class: &EC2NodeClass,
        capacity_type: &str,
        max_pods: i64,
    ) -> NodeBootstrap {
        let mut node_labels: BTreeMap<String, String> = claim
            .metadata
            .labels
            .iter()
            .flatten()
            .filter(|(k, _)| kubelet_may_set(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(name) = &class.metadata.name {
            node_labels.insert(labels::EC2NODECLASS.into(), name.clone());
        }
        node_labels.insert(labels::CAPACITY_TYPE.into(), capacity_type.into());
        let family = AmiFamily::of(class);
        if family != AmiFamily::Custom {
            node_labels.insert(DO_NOT_SYNC_TAINTS.into(), "true".into());
        }
        let template = &claim.spec.template;
        let mut taints: Vec<Taint> = template
            .taints
            .iter()
            .flatten()
            .chain(template.startup_taints.iter().flatten())
            .cloned()
            .collect();
        if !taints
            .iter()
            .any(|t| t.key == labels::UNREGISTERED_TAINT_KEY && t.effect == "NoExecute")
        {
            taints.push(Taint {
                key: labels::UNREGISTERED_TAINT_KEY.into(),
                value: None,
                effect: "NoExecute".into(),
                time_added: None,
            });
        }
        let mut kubelet = class.spec.kubelet.clone().unwrap_or_default();
        kubelet.max_pods = Some(i32::try_from(max_pods).unwrap_or(i32::MAX));
        NodeBootstrap {
            labels: node_labels,
            taints,
            kubelet,
            raid0: class.spec.instance_store_policy.as_deref() == Some("RAID0"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_label_rules() {
        for allowed in [
            "team",
            "example.com/tier",
            "node.kubernetes.io/instance-type",
            "topology.kubernetes.io/zone",
            "node.kubernetes.io/lifecycle",
            "karpenter.sh/nodepool",
        ] {
            assert!(kubelet_may_set(allowed), "{allowed}");
        }
        for refused in [
            "node-role.kubernetes.io/worker",
            "x.k8s.io/y",
            "kubernetes.io/foo",
        ] {
            assert!(!kubelet_may_set(refused), "{refused}");
        }
    }
}

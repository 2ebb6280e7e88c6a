//! Hooks for a cloud simulator: register the Node an instance's kubelet would
//! create, mark it NotReady, or remove it when the instance goes away.

use crate::Kubesim;
use crate::status::ApiError;
use crate::store::{DeleteOptions, Part, now};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The Node a starting instance registers.
#[derive(Debug, Clone, Default)]
pub struct NodeRegistration {
    /// Node name (usually the instance's private DNS name).
    pub name: String,
    /// `spec.providerID` (`aws:///us-east-1a/i-0123...`).
    pub provider_id: String,
    /// Labels (instance type, zone, capacity type, NodePool, ...).
    pub labels: BTreeMap<String, String>,
    /// Taints, as Kubernetes `Taint` objects.
    pub taints: Vec<Value>,
    /// `status.capacity`.
    pub capacity: BTreeMap<String, String>,
    /// `status.allocatable`.
    pub allocatable: BTreeMap<String, String>,
}

impl Kubesim {
    fn nodes_rt(&self) -> crate::resources::ResourceType {
        self.inner
            .registry
            .get("", "v1", "nodes")
            .expect("built-in")
    }

    /// Creates the Node; with controllers running it turns Ready after the
    /// configured delay, like a kubelet posting status.
    pub fn register_node(&self, node: &NodeRegistration) -> Result<(), ApiError> {
        let mut labels = node.labels.clone();
        labels
            .entry("kubernetes.io/hostname".into())
            .or_insert_with(|| node.name.clone());
        let obj = json!({
            "metadata": {"name": node.name, "labels": labels},
            "spec": {"providerID": node.provider_id, "taints": node.taints},
            "status": {
                "capacity": node.capacity,
                "allocatable": node.allocatable,
                "addresses": [{"type": "Hostname", "address": node.name}],
                "nodeInfo": {"kubeletVersion": "v1.31.0-kubesim", "containerRuntimeVersion": "kubesim://1", "architecture": labels.get("kubernetes.io/arch").cloned().unwrap_or_else(|| "amd64".into()), "operatingSystem": "linux"},
            },
        });
        self.inner
            .store
            .create(&self.nodes_rt(), "", obj)
            .map(|_| ())
    }

    /// Marks the Node Ready or NotReady (an instance stopping, a kubelet dying).
    pub fn set_node_ready(&self, name: &str, ready: bool) -> Result<(), ApiError> {
        let rt = self.nodes_rt();
        let mut node = (*self.inner.store.get(&rt, "", name)?).clone();
        let mut conditions: Vec<Value> = node["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions.retain(|c| c["type"] != "Ready");
        conditions.push(json!({
            "type": "Ready",
            "status": if ready { "True" } else { "False" },
            "reason": if ready { "KubeletReady" } else { "KubeletNotReady" },
            "lastTransitionTime": now(),
        }));
        node["status"]["conditions"] = json!(conditions);
        self.inner
            .store
            .update(&rt, "", name, node, Part::Status)
            .map(|_| ())
    }

    /// Removes the Node (its instance is gone); finalizers on it still apply.
    pub fn remove_node(&self, name: &str) -> Result<(), ApiError> {
        self.inner
            .store
            .delete(&self.nodes_rt(), "", name, &DeleteOptions::default())
            .map(|_| ())
    }
}

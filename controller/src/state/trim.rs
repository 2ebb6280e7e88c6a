//! Fields no controller reads, dropped before an object is cached: in real
//! clusters managed fields, `kubectl apply`'s copy of the object and node
//! image lists are a large share of every object. (Pods are cached as
//! [`super::CachedPod`], which never reads most of a pod in the first place.)

use super::CachedPod;
use k8s_openapi::api::core::v1::Node;
use kube::Resource;

/// The annotation `kubectl apply` keeps a full copy of the object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Managed fields and `kubectl apply`'s copy of the object (every kind).
pub(super) fn metadata<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

/// The pod conditions controllers read: `PodScheduled` (is it waiting for
/// capacity) and `Ready` (since when it runs), without their messages.
const POD_CONDITIONS: [&str; 2] = ["PodScheduled", "Ready"];

/// A cached pod with only the conditions controllers read.
pub(super) fn pod(pod: &mut CachedPod) {
    metadata(pod);
    if let Some(conditions) = pod.status.as_mut().and_then(|s| s.conditions.as_mut()) {
        conditions.retain(|c| POD_CONDITIONS.contains(&c.type_.as_str()));
        for condition in conditions {
            condition.message = None;
        }
    }
}

/// A node without what no controller reads: its image list, daemon
/// endpoints, addresses, system info, and condition messages (only `Ready`
/// is read; nothing writes node status back from the cache).
pub(super) fn node(node: &mut Node) {
    metadata(node);
    if let Some(status) = node.status.as_mut() {
        status.images = None;
        status.daemon_endpoints = None;
        status.addresses = None;
        status.node_info = None;
        for condition in status.conditions.iter_mut().flatten() {
            condition.message = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_trimmed_node_keeps_what_registration_reads() {
        let mut node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n", "labels": {"a": "b"}},
            "spec": {"providerID": "aws:///us-east-1a/i-1", "taints": [{"key": "k", "effect": "NoSchedule"}]},
            "status": {"images": [{"names": ["big"], "sizeBytes": 1}],
                "nodeInfo": {"architecture": "amd64", "bootID": "b", "containerRuntimeVersion": "c",
                    "kernelVersion": "k", "kubeProxyVersion": "", "kubeletVersion": "v1.33.0",
                    "machineID": "m", "operatingSystem": "linux", "osImage": "o", "systemUUID": "s"},
                "conditions": [{"type": "Ready", "status": "True", "message": "kubelet is posting ready status"}],
                "allocatable": {"cpu": "4"},
                "volumesAttached": [{"name": "v", "devicePath": "/dev/x"}]},
        }))
        .unwrap();
        self::node(&mut node);
        let status = node.status.as_ref().unwrap();
        assert!(status.images.is_none() && status.node_info.is_none());
        assert!(status.allocatable.is_some() && status.volumes_attached.is_some());
        assert!(node.spec.as_ref().unwrap().provider_id.is_some());
        assert!(crate::state::node_ready(&node));
    }

    #[test]
    fn a_trimmed_pod_keeps_the_conditions_controllers_read() {
        let mut pod: CachedPod = serde_json::from_value(json!({
            "metadata": {"name": "p", "managedFields": [{"manager": "kubectl"}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", "status": "True", "message": "all containers ready",
                    "lastTransitionTime": "2026-01-01T00:00:00Z"},
            ]},
        }))
        .unwrap();
        self::pod(&mut pod);
        let conditions = pod.status.unwrap().conditions.unwrap();
        let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["PodScheduled", "Ready"]);
        assert!(conditions[1].message.is_none() && conditions[1].last_transition_time.is_some());
        assert!(pod.metadata.managed_fields.is_none());
    }
}

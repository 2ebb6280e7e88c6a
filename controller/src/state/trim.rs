//! Fields no controller reads, dropped before an object is cached: in real
//! clusters managed fields, `kubectl apply`'s copy of the object and node
//! image lists are a large share of every object. (Pods are cached as
//! [`super::CachedPod`], which never reads most of a pod in the first place.)

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

/// A node without its image list and daemon endpoints.
pub(super) fn node(node: &mut Node) {
    metadata(node);
    if let Some(status) = node.status.as_mut() {
        status.images = None;
        status.daemon_endpoints = None;
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
                "allocatable": {"cpu": "4"},
                "volumesAttached": [{"name": "v", "devicePath": "/dev/x"}]},
        }))
        .unwrap();
        self::node(&mut node);
        let status = node.status.as_ref().unwrap();
        assert!(status.images.is_none());
        assert!(status.allocatable.is_some() && status.volumes_attached.is_some());
        assert!(node.spec.as_ref().unwrap().provider_id.is_some());
    }
}

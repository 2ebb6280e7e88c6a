//! Fields no controller reads, dropped before an object is cached. At 10k
//! pods the caches are most of the controller's memory; in real clusters
//! managed fields, `kubectl apply`'s copy of the object, container
//! commands and environments, and node image lists are a large share of
//! every object.

use k8s_openapi::api::core::v1::{Container, Node, Pod};
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

/// A container as scheduling and draining see it: name, image, resources,
/// ports and restart policy (sidecars) stay.
fn container(container: &mut Container) {
    container.args = None;
    container.command = None;
    container.env = None;
    container.env_from = None;
    container.lifecycle = None;
    container.liveness_probe = None;
    container.readiness_probe = None;
    container.startup_probe = None;
    container.security_context = None;
    container.volume_devices = None;
    container.volume_mounts = None;
    container.working_dir = None;
}

/// A pod without what neither scheduling, draining nor the start-up metric
/// reads: container commands, environments, probes and mounts, and the
/// per-container statuses.
pub(super) fn pod(pod: &mut Pod) {
    metadata(pod);
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers.iter_mut().for_each(container);
        spec.init_containers
            .iter_mut()
            .flatten()
            .for_each(container);
        spec.ephemeral_containers = None;
    }
    if let Some(status) = pod.status.as_mut() {
        status.container_statuses = None;
        status.init_container_statuses = None;
        status.ephemeral_container_statuses = None;
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
    use crate::scheduling::PodInfo;
    use serde_json::json;

    #[test]
    fn a_trimmed_pod_schedules_the_same() {
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default",
                "annotations": {LAST_APPLIED: "{\"big\": true}", "keep": "me"},
                "managedFields": [{"manager": "kubectl"}]},
            "spec": {
                "containers": [{"name": "app", "image": "app",
                    "command": ["/app"], "env": [{"name": "A", "value": "1"}],
                    "ports": [{"containerPort": 80, "hostPort": 8080}],
                    "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}],
                "initContainers": [{"name": "sidecar", "image": "s", "restartPolicy": "Always",
                    "args": ["--x"], "resources": {"requests": {"cpu": "100m"}}}],
                "nodeSelector": {"kubernetes.io/arch": "arm64"},
                "tolerations": [{"key": "gpu", "operator": "Exists"}],
            },
            "status": {"phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "image": "app", "imageID": "x",
                    "ready": true, "restartCount": 0}]},
        }))
        .unwrap();
        let before = PodInfo::from_pod(&pod).unwrap();
        self::pod(&mut pod);
        let after = PodInfo::from_pod(&pod).unwrap();
        assert_eq!(format!("{before:?}"), format!("{after:?}"));
        let annotations = pod.metadata.annotations.as_ref().unwrap();
        assert!(!annotations.contains_key(LAST_APPLIED));
        assert_eq!(annotations.get("keep").map(String::as_str), Some("me"));
        assert!(pod.metadata.managed_fields.is_none());
        let spec = pod.spec.as_ref().unwrap();
        assert!(spec.containers[0].command.is_none() && spec.containers[0].env.is_none());
        assert!(spec.init_containers.as_ref().unwrap()[0].args.is_none());
        let status = pod.status.as_ref().unwrap();
        assert!(status.container_statuses.is_none());
        assert_eq!(status.conditions.as_ref().unwrap().len(), 1);
    }

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

//! Fields no controller reads, dropped before an object is cached: in real
//! clusters managed fields, `kubectl apply`'s copy of the object and node
//! image lists are a large share of every object. (Pods are cached as
//! [`super::CachedPod`], which never reads most of a pod in the first place.)

use super::CachedPod;
use k8s_openapi::api::core::v1::Node;
use karpenter_api::labels;
use karpenter_api::v1::NodeClaim;
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
    shrink(&mut meta.owner_references);
    shrink(&mut meta.finalizers);
}

/// A list with no spare room. serde grows a list as it reads it, so a
/// one-element list (a pod's owner, its container, a node's finalizer) holds
/// room for four: at 10k pods the spare room was several MB.
fn shrink<T>(list: &mut Option<Vec<T>>) {
    if let Some(list) = list {
        list.shrink_to_fit();
    }
}

/// A NodeClaim whose instance is launched: its instance-type requirement
/// narrowed to the type it launched as (the label the launch set) and its
/// planned requests dropped (the instance's capacity is in its status). Until
/// launch the scheduler and the launch itself read both; afterwards up to 60
/// type names per claim were most of the claim cache. Nothing writes a
/// claim's spec back from the cache (status patches only).
pub(super) fn claim(claim: &mut NodeClaim) {
    metadata(claim);
    shrink_claim_lists(claim);
    if claim
        .status
        .as_ref()
        .and_then(|s| s.provider_id.as_ref())
        .is_none()
    {
        return;
    }
    let Some(launched) = claim
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::INSTANCE_TYPE))
    else {
        return;
    };
    for requirement in &mut claim.spec.template.requirements {
        if requirement.key == labels::INSTANCE_TYPE
            && requirement.operator == "In"
            && requirement.values.iter().flatten().any(|v| v == launched)
        {
            requirement.values = Some(vec![launched.clone()]);
        }
    }
    claim.spec.resources = None;
}

fn shrink_claim_lists(claim: &mut NodeClaim) {
    let template = &mut claim.spec.template;
    template.requirements.shrink_to_fit();
    for requirement in &mut template.requirements {
        shrink(&mut requirement.values);
    }
    shrink(&mut template.taints);
    shrink(&mut template.startup_taints);
    if let Some(status) = claim.status.as_mut() {
        shrink(&mut status.conditions);
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
        for condition in conditions.iter_mut() {
            condition.message = None;
        }
        conditions.shrink_to_fit();
    }
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers.shrink_to_fit();
        for container in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            shrink(&mut container.ports);
        }
        shrink(&mut spec.init_containers);
        shrink(&mut spec.tolerations);
        shrink(&mut spec.topology_spread_constraints);
        shrink(&mut spec.volumes);
    }
}

/// A node without what no controller reads: its image list, daemon
/// endpoints, addresses, system info, capacity (controllers read its
/// allocatable, and a NodeClaim's capacity), and every condition but
/// `Ready`, without its message (nothing writes node status back from the
/// cache).
pub(super) fn node(node: &mut Node) {
    metadata(node);
    if let Some(spec) = node.spec.as_mut() {
        shrink(&mut spec.taints);
    }
    if let Some(status) = node.status.as_mut() {
        status.images = None;
        status.daemon_endpoints = None;
        status.addresses = None;
        status.node_info = None;
        status.capacity = None;
        if let Some(conditions) = status.conditions.as_mut() {
            conditions.retain(|c| c.type_ == "Ready");
            for condition in conditions.iter_mut() {
                condition.message = None;
                condition.reason = None;
            }
            conditions.shrink_to_fit();
        }
        shrink(&mut status.volumes_attached);
        shrink(&mut status.volumes_in_use);
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
                "conditions": [{"type": "MemoryPressure", "status": "False"},
                    {"type": "Ready", "status": "True", "message": "kubelet is posting ready status"}],
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
        assert!(
            status.capacity.is_none(),
            "controllers read allocatable only"
        );
        let conditions = status.conditions.as_ref().unwrap();
        assert_eq!((conditions.len(), conditions.capacity()), (1, 1));
    }

    #[test]
    fn cached_lists_have_no_spare_room() {
        // Read from text, as from the API server (a JSON value would tell
        // serde each list's length up front).
        let text = json!({
            "metadata": {"name": "p", "finalizers": ["f"],
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u"}]},
            "spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}]}],
                "tolerations": [{"key": "k", "operator": "Exists"}]},
        })
        .to_string();
        let mut pod: CachedPod = serde_json::from_str(&text).unwrap();
        let room = |p: &CachedPod| {
            let spec = p.spec.as_ref().unwrap();
            [
                p.metadata.owner_references.as_ref().unwrap().capacity(),
                p.metadata.finalizers.as_ref().unwrap().capacity(),
                spec.containers.capacity(),
                spec.containers[0].ports.as_ref().unwrap().capacity(),
                spec.tolerations.as_ref().unwrap().capacity(),
            ]
        };
        assert!(
            room(&pod).iter().any(|&c| c > 1),
            "serde leaves room: {:?}",
            room(&pod)
        );
        self::pod(&mut pod);
        assert_eq!(room(&pod), [1; 5]);
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

    #[test]
    fn a_launched_claim_keeps_only_its_instance_type() {
        let claim = |launched: bool| -> NodeClaim {
            let mut value = json!({
                "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
                "metadata": {"name": "c", "labels": {"node.kubernetes.io/instance-type": "m5.large"}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                    "requirements": [
                        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["c5.large", "m5.large", "r5.large"]},
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
                    ],
                    "resources": {"requests": {"cpu": "1"}},
                },
            });
            if launched {
                value["status"] = json!({"providerID": "aws:///us-east-1a/i-1"});
            }
            serde_json::from_value(value).unwrap()
        };
        let values =
            |c: &NodeClaim, i: usize| c.spec.template.requirements[i].values.clone().unwrap();

        // Before launch the options and the planned requests are what
        // scheduling and the launch read: untouched.
        let mut pending = claim(false);
        self::claim(&mut pending);
        assert_eq!(values(&pending, 0).len(), 3);
        assert!(pending.spec.resources.is_some());

        let mut launched = claim(true);
        self::claim(&mut launched);
        assert_eq!(values(&launched, 0), ["m5.large"]);
        assert_eq!(values(&launched, 1), ["spot", "on-demand"]);
        assert!(launched.spec.resources.is_none());
    }
}

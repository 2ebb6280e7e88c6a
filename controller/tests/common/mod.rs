//! Helpers shared by the scheduling test files: pools on the real us-east-1
//! catalog, pods and nodes from JSON.
#![allow(dead_code)] // each test file uses its own subset

use karpenter_api::v1::NodePool;
use karpenter_controller::catalog::{Catalog, KubeletSettings};
use karpenter_controller::scheduling::{ExistingNode, PodInfo, Pool, Resources, pod_info};
use karpenter_controller::state::CachedPod;
use serde_json::{Value, json};

/// A NodePool `name` on the us-east-1 catalog, `spec` merged over a minimal one.
pub fn pool_with(name: &str, spec: Value) -> Pool {
    let mut p = json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": name},
        "spec": {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}, "requirements": []}}}
    });
    json_patch::merge(&mut p, &json!({"spec": spec}));
    let pool: NodePool = serde_json::from_value(p).unwrap();
    Pool::new(
        &pool,
        Catalog::us_east_1(),
        &KubeletSettings::default(),
        &Resources::default(),
        &Resources::default(),
    )
    .unwrap()
}

/// A NodePool with no requirements.
pub fn pool(name: &str) -> Pool {
    pool_with(name, json!({}))
}

/// A pod requesting `cpu` and `memory`, `extra` merged over it.
pub fn pod(name: &str, cpu: &str, memory: &str, extra: Value) -> PodInfo {
    let mut p = json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    });
    json_patch::merge(&mut p, &extra);
    pod_info(&serde_json::from_value::<CachedPod>(p).unwrap()).unwrap()
}

/// A node with room for `cpu` and `memory`, its labels and running pods.
pub fn node(
    name: &str,
    labels: &[(&str, &str)],
    cpu_milli: i64,
    memory: i64,
    pods: Vec<PodInfo>,
) -> ExistingNode {
    ExistingNode {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("kubernetes.io/hostname".to_string(), name.to_string())])
            .collect(),
        taints: vec![],
        available: Resources {
            cpu_milli,
            memory,
            storage: 10 << 30,
            pods: 50,
            ..Default::default()
        },
        host_ports: vec![],
        pods,
    }
}

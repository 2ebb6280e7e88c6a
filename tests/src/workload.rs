//! What the application teams bring, as the YAML they `kubectl apply`: a
//! GitOps-managed NodePool beside the Terraform-managed ones, and pods of
//! several shapes for each pool, one Deployment with a PodDisruptionBudget.

use serde_json::{Value, json};

/// One Deployment of the journey.
pub struct Shape {
    /// Its name (and `app` label).
    pub name: &'static str,
    /// Replicas at the start.
    pub replicas: u32,
    /// CPU request.
    pub cpu: &'static str,
    /// Memory request.
    pub memory: &'static str,
    /// The node label it selects.
    pub node_selector: (&'static str, &'static str),
    /// It tolerates the batch pool's taint.
    pub tolerates_batch: bool,
}

/// web on `general` (spot or on-demand), batch on the tainted on-demand
/// `batch` pool, cache (memory-heavy) on the GitOps pool.
pub const SHAPES: &[Shape] = &[
    Shape {
        name: "web",
        replicas: 8,
        cpu: "500m",
        memory: "1Gi",
        node_selector: ("tier", "general"),
        tolerates_batch: false,
    },
    Shape {
        name: "batch",
        replicas: 3,
        cpu: "2",
        memory: "4Gi",
        node_selector: ("tier", "batch"),
        tolerates_batch: true,
    },
    Shape {
        name: "cache",
        replicas: 2,
        cpu: "1",
        memory: "12Gi",
        node_selector: ("team", "gitops"),
        tolerates_batch: false,
    },
];

/// web's PodDisruptionBudget: one pod of it may be down at a time.
pub const WEB_MAX_UNAVAILABLE: u32 = 1;

/// The GitOps NodePool: on-demand, memory-optimised, its own label.
pub fn gitops_nodepool() -> Value {
    json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": "gitops", "labels": {"app.kubernetes.io/managed-by": "argocd"}},
        "spec": {
            "template": {
                "metadata": {"labels": {"team": "gitops"}},
                "spec": {
                    "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                    "requirements": [
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
                        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["r"]},
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
                    ]
                }
            },
            "disruption": {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "5s"}
        }
    })
}

fn deployment(shape: &Shape) -> Value {
    let (key, value) = shape.node_selector;
    let tolerations = if shape.tolerates_batch {
        json!([{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}])
    } else {
        json!([])
    };
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": shape.name, "namespace": "default"},
        "spec": {
            "replicas": shape.replicas,
            "selector": {"matchLabels": {"app": shape.name}},
            "template": {
                "metadata": {"labels": {"app": shape.name}},
                "spec": {
                    "nodeSelector": {key: value},
                    "tolerations": tolerations,
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": shape.name, "image": shape.name,
                        "resources": {"requests": {"cpu": shape.cpu, "memory": shape.memory}}}]
                }
            }
        }
    })
}

/// Everything the application teams apply, as one multi-document YAML.
pub fn manifests() -> String {
    let pdb = json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"maxUnavailable": WEB_MAX_UNAVAILABLE, "selector": {"matchLabels": {"app": "web"}}}
    });
    let mut documents = vec![gitops_nodepool(), pdb];
    documents.extend(SHAPES.iter().map(deployment));
    documents
        .iter()
        .map(|d| serde_norway::to_string(d).expect("YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// All replicas at the start.
pub fn total_replicas() -> u32 {
    SHAPES.iter().map(|s| s.replicas).sum()
}

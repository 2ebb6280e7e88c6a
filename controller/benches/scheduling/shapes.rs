//! Workload shapes for the cost benchmark (issue #29): each a set of pending
//! pods, the NodePool they go to, and the cost / LP-bound ratio to meet. The
//! shapes differ on purpose (memory-heavy, CPU-heavy, many tiny pods, an
//! on-demand tier beside spot, odd CPU:memory ratios, zone spreads, GPU, and
//! the offline demo's peak) so that a solver is not tuned to one.

use karpenter_api::v1::NodePool;
use karpenter_controller::catalog::{Catalog, KubeletSettings};
use karpenter_controller::scheduling::{PodInfo, Pool, Resources, pod_info};
use karpenter_controller::state::CachedPod;
use karpenter_sim::demo::{DEFAULT_MANIFESTS, DEFAULT_SCENARIO, Scenario};
use serde_json::{Value, json};

/// One workload to solve at once.
pub struct Shape {
    /// What it is.
    pub name: &'static str,
    /// The pods, pending together.
    pub pods: Vec<PodInfo>,
    /// The NodePool they go to.
    pub pool: NodePool,
    /// The most cost / LP bound may be (1.10 from 1,000 pods, 1.25 at 200).
    pub target: f64,
}

/// A pod requesting `cpu` and `memory` (and `extra` merged into it).
fn pod(i: usize, cpu: &str, memory: &str, extra: Value) -> PodInfo {
    let mut pod = json!({"metadata": {"name": format!("p{i}"), "namespace": "default"},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}});
    json_patch::merge(&mut pod, &extra);
    pod_info(&serde_json::from_value::<CachedPod>(pod).unwrap()).unwrap()
}

/// A NodePool allowing every instance type and both capacity types.
pub fn open_pool() -> NodePool {
    serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "default"},
        "spec": {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}, "requirements": []}}}
    }))
    .unwrap()
}

/// The demo's NodePool (`examples/gitops/default.yaml`).
fn demo_pool() -> NodePool {
    DEFAULT_MANIFESTS
        .split("\n---")
        .filter_map(|doc| serde_norway::from_str::<Value>(doc).ok())
        .find(|doc| doc["kind"] == "NodePool")
        .map(|doc| serde_json::from_value(doc).unwrap())
        .expect("the demo manifests hold a NodePool")
}

/// The engine's view of `pool` on `catalog`, nothing in use yet.
pub fn prepared(pool: &NodePool, catalog: &Catalog) -> Pool {
    Pool::new(
        pool,
        catalog,
        &KubeletSettings::default(),
        &Resources::default(),
        &Resources::default(),
    )
    .unwrap()
}

fn on_demand() -> Value {
    json!({"spec": {"nodeSelector": {"karpenter.sh/capacity-type": "on-demand"}}})
}

fn zone_spread(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
        "spec": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": app}}}]}})
}

/// The demo scenario's peak workload, as the demo's summary bounds it.
fn demo_peak() -> Vec<PodInfo> {
    let scenario = Scenario::parse(DEFAULT_SCENARIO).unwrap();
    karpenter_sim::demo::bound::peak_pods(&scenario)
        .iter()
        .map(|pod| pod_info(pod).unwrap())
        .collect()
}

/// Every shape, in the order the table prints them.
pub fn shapes() -> Vec<Shape> {
    let at_scale = |name, pods| Shape {
        name,
        pods,
        pool: open_pool(),
        target: 1.10,
    };
    vec![
        at_scale(
            "memory-heavy (0.5 CPU/6Gi, 1 CPU/8Gi)",
            (0..1_000)
                .map(|i| match i % 2 {
                    0 => pod(i, "500m", "6Gi", json!({})),
                    _ => pod(i, "1", "8Gi", json!({})),
                })
                .collect(),
        ),
        at_scale(
            "CPU-heavy (2 CPU/1Gi, 4 CPU/2Gi)",
            (0..1_000)
                .map(|i| match i % 3 {
                    0 => pod(i, "4", "2Gi", json!({})),
                    _ => pod(i, "2", "1Gi", json!({})),
                })
                .collect(),
        ),
        at_scale(
            "many tiny (50m/64Mi .. 100m/128Mi)",
            (0..5_000)
                .map(|i| match i % 2 {
                    0 => pod(i, "50m", "64Mi", json!({})),
                    _ => pod(i, "100m", "128Mi", json!({})),
                })
                .collect(),
        ),
        at_scale(
            "on-demand tier beside spot",
            (0..1_000)
                .map(|i| match i % 4 {
                    0 => pod(i, "500m", "6Gi", on_demand()),
                    1 => pod(i, "1", "2Gi", on_demand()),
                    _ => pod(i, "1", "2Gi", json!({})),
                })
                .collect(),
        ),
        at_scale(
            "odd ratios (3 CPU/1Gi, 250m/12Gi, 1.5 CPU/5Gi)",
            (0..1_200)
                .map(|i| match i % 3 {
                    0 => pod(i, "3", "1Gi", json!({})),
                    1 => pod(i, "250m", "12Gi", json!({})),
                    _ => pod(i, "1500m", "5Gi", json!({})),
                })
                .collect(),
        ),
        at_scale(
            "zone spreads (3 apps, maxSkew 1)",
            (0..1_200)
                .map(|i| {
                    let app = ["a", "b", "c"][i % 3];
                    pod(i, "500m", "1Gi", zone_spread(app))
                })
                .collect(),
        ),
        at_scale(
            "GPU (1 GPU 4 CPU/16Gi) beside plain",
            (0..1_000)
                .map(|i| match i % 10 {
                    0 => pod(
                        i,
                        "4",
                        "16Gi",
                        // (a merge replaces the container list: the requests in full)
                        json!({"spec": {"containers": [{"name": "c", "resources": {"requests":
                            {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}}}]}}),
                    ),
                    _ => pod(i, "500m", "1Gi", json!({})),
                })
                .collect(),
        ),
        Shape {
            name: "the demo's peak (200 pods, its NodePool)",
            pods: demo_peak(),
            pool: demo_pool(),
            target: 1.25,
        },
    ]
}

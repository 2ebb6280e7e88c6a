//! Table-driven tests of the scheduling engine against the real us-east-1 catalog.

mod common;

use common::{pod, pool, pool_with};
use karpenter_api::v1::NodePool;
use karpenter_controller::catalog::{Catalog, KubeletSettings};
use karpenter_controller::scheduling::{ExistingNode, PodInfo, Pool, Resources, Solution, solve};
use serde_json::json;

fn types_of(solution: &Solution, claim: usize) -> Vec<&str> {
    solution.claims[claim]
        .instance_types
        .iter()
        .map(String::as_str)
        .collect()
}

fn label(name: &str, key: &str) -> String {
    Catalog::us_east_1()
        .get(name)
        .unwrap()
        .labels()
        .get(key)
        .cloned()
        .unwrap_or_default()
}

/// The cheapest price of any catalog type whose allocatable holds `cpu_milli` and `memory`.
fn cheapest_holding(cpu_milli: i64, memory: i64) -> f64 {
    let settings = KubeletSettings::default();
    Catalog::us_east_1()
        .iter()
        .filter(|t| {
            let a = t.allocatable(&settings);
            a["cpu"].milli_value() >= cpu_milli && a["memory"].value() >= memory
        })
        .map(|t| t.offerings.iter().map(|o| o.price).fold(f64::MAX, f64::min))
        .fold(f64::MAX, f64::min)
}

#[test]
fn pods_pack_onto_the_cheapest_type_that_holds_them() {
    // Three 1-CPU pods: no dearer than the best of one shared node and a node each.
    let pods: Vec<PodInfo> = (0..3)
        .map(|i| pod(&format!("p{i}"), "1", "1Gi", json!({})))
        .collect();
    let solution = solve(&pods, vec![], vec![pool("default")]);
    assert!(solution.unschedulable.is_empty());
    let shared = cheapest_holding(3000, 3 << 30);
    let separate = 3.0 * cheapest_holding(1000, 1 << 30);
    assert!(
        solution.hourly_cost() <= shared.min(separate) + 1e-9,
        "{} vs shared {shared}, separate {separate}",
        solution.hourly_cost()
    );
    // Each claim is the cheapest type that holds its pods.
    for claim in &solution.claims {
        let n = claim.pods.len() as i64;
        assert!((claim.price - cheapest_holding(1000 * n, n << 30)).abs() < 1e-9);
    }

    // Tiny pods share nodes.
    let small: Vec<PodInfo> = (0..20)
        .map(|i| pod(&format!("s{i}"), "100m", "64Mi", json!({})))
        .collect();
    let solution = solve(&small, vec![], vec![pool("default")]);
    assert!(
        solution.claims.len() < 10,
        "{} nodes for 20 tiny pods",
        solution.claims.len()
    );

    // Options are ranked by price and at most 60 are carried.
    let catalog = Catalog::us_east_1();
    for claim in &solution.claims {
        assert!(claim.instance_types.len() <= 60);
        let prices: Vec<f64> = claim
            .instance_types
            .iter()
            .map(|t| {
                catalog
                    .get(t)
                    .unwrap()
                    .offerings
                    .iter()
                    .map(|o| o.price)
                    .fold(f64::MAX, f64::min)
            })
            .collect();
        assert!(prices.windows(2).all(|w| w[0] <= w[1] + 1e-9), "{prices:?}");
        assert!((claim.price - prices[0]).abs() < 1e-9);
    }
}

#[test]
fn requests_include_init_containers_overhead_and_extended_resources() {
    let p = pod(
        "init",
        "500m",
        "256Mi",
        json!({"spec": {
            "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "2", "memory": "128Mi"}}}],
            "overhead": {"cpu": "100m"}
        }}),
    );
    assert_eq!(
        (p.requests.cpu_milli, p.requests.memory, p.requests.pods),
        (2100, 256 << 20, 1)
    );
    let gpu = pod(
        "gpu",
        "1",
        "1Gi",
        json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "nvidia.com/gpu": "2"}}}]}}),
    );
    let solution = solve(&[gpu], vec![], vec![pool("default")]);
    assert!(
        solution.unschedulable.is_empty(),
        "{:?}",
        solution.unschedulable
    );
    for t in types_of(&solution, 0) {
        assert!(
            label(t, "karpenter.k8s.aws/instance-gpu-count")
                .parse::<i64>()
                .unwrap()
                >= 2,
            "{t}"
        );
    }
}

#[test]
fn node_selectors_and_affinity_terms() {
    let arm = pod(
        "arm",
        "1",
        "1Gi",
        json!({"spec": {"nodeSelector": {"kubernetes.io/arch": "arm64"}}}),
    );
    let solution = solve(&[arm], vec![], vec![pool("default")]);
    assert!(
        types_of(&solution, 0)
            .iter()
            .all(|t| label(t, "kubernetes.io/arch") == "arm64")
    );

    // The first OR-ed term is impossible (no such zone), the second is not.
    let either = pod(
        "either",
        "1",
        "1Gi",
        json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1z"]}]},
            {"matchExpressions": [{"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["c6i"]}]}
        ]}}}}}),
    );
    let solution = solve(&[either], vec![], vec![pool("default")]);
    assert!(
        solution.unschedulable.is_empty(),
        "{:?}",
        solution.unschedulable
    );
    assert!(types_of(&solution, 0).iter().all(|t| t.starts_with("c6i.")));
}

#[test]
fn taints_and_tolerations() {
    let tainted = pool_with(
        "gpu",
        json!({"template": {"spec": {"taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]}}}),
    );
    let plain = pod("plain", "1", "1Gi", json!({}));
    let solution = solve(&[plain], vec![], vec![tainted.clone()]);
    assert_eq!(solution.unschedulable.len(), 1);
    assert!(
        solution.unschedulable[0]
            .1
            .contains("does not tolerate taint nvidia.com/gpu=true:NoSchedule"),
        "{:?}",
        solution.unschedulable
    );
    let tolerant = pod(
        "tolerant",
        "1",
        "1Gi",
        json!({"spec": {"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}]}}),
    );
    assert!(
        solve(&[tolerant], vec![], vec![tainted])
            .unschedulable
            .is_empty()
    );
}

#[test]
fn existing_nodes_are_used_first() {
    let node = ExistingNode {
        name: "node-1".into(),
        labels: [("kubernetes.io/arch".to_string(), "amd64".to_string())].into(),
        taints: vec![],
        available: Resources {
            cpu_milli: 1500,
            memory: 4 << 30,
            storage: 10 << 30,
            pods: 10,
            ..Default::default()
        },
        host_ports: vec![],
        pods: vec![],
    };
    let pods = vec![
        pod("a", "1", "1Gi", json!({})),
        pod("b", "1", "1Gi", json!({})),
    ];
    let solution = solve(&pods, vec![node], vec![pool("default")]);
    assert_eq!(
        solution.nominations.len(),
        1,
        "only one fits the 1.5 CPU left"
    );
    assert_eq!(solution.nominations[0].1, "node-1");
    assert_eq!(solution.claims.len(), 1);
}

#[test]
fn pool_weight_decides_and_limits_hold() {
    let cheap = pool_with(
        "spot",
        json!({"weight": 50, "template": {"spec": {"requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}]}}}),
    );
    let fallback = pool_with(
        "on-demand",
        json!({"weight": 10, "template": {"spec": {"requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]}}}),
    );
    let solution = solve(
        &[pod("p", "1", "1Gi", json!({}))],
        vec![],
        vec![fallback.clone(), cheap],
    );
    assert_eq!(solution.claims[0].pool, "spot");

    let limited = pool_with("limited", json!({"limits": {"cpu": "8"}}));
    let big: Vec<PodInfo> = (0..3).map(|i| pod(&format!("big{i}"), "3", "1Gi", json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}], "resources": {"requests": {"cpu": "3"}}}]}}))).collect();
    let solution = solve(&big, vec![], vec![limited]);
    let launched: i64 = solution
        .claims
        .iter()
        .map(|c| {
            c.instance_types
                .iter()
                .map(|t| {
                    label(t, "karpenter.k8s.aws/instance-cpu")
                        .parse::<i64>()
                        .unwrap()
                })
                .max()
                .unwrap()
        })
        .sum();
    assert!(launched <= 8, "limits never exceeded: {launched} vCPU");
    assert!(
        solution
            .unschedulable
            .iter()
            .any(|(_, why)| why.contains("exceed the pool's limits")),
        "{:?}",
        solution.unschedulable
    );
}

#[test]
fn host_ports_keep_pods_apart() {
    let port = json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 8080, "hostPort": 8080}], "resources": {"requests": {"cpu": "100m"}}}]}});
    let pods = vec![
        pod("a", "100m", "64Mi", port.clone()),
        pod("b", "100m", "64Mi", port),
    ];
    assert_eq!(solve(&pods, vec![], vec![pool("default")]).claims.len(), 2);
}

#[test]
fn min_values_keep_flexibility() {
    let flexible = pool_with(
        "flexible",
        json!({"template": {"spec": {"requirements": [
            {"key": "karpenter.k8s.aws/instance-family", "operator": "Exists", "minValues": 5}
        ]}}}),
    );
    let solution = solve(
        &[pod("p", "1", "1Gi", json!({}))],
        vec![],
        vec![flexible.clone()],
    );
    let families: std::collections::BTreeSet<String> = types_of(&solution, 0)
        .iter()
        .map(|t| label(t, "karpenter.k8s.aws/instance-family"))
        .collect();
    assert!(families.len() >= 5, "{families:?}");
    let one_family = pod(
        "one",
        "1",
        "1Gi",
        json!({"spec": {"nodeSelector": {"karpenter.k8s.aws/instance-family": "m5"}}}),
    );
    let solution = solve(&[one_family], vec![], vec![flexible]);
    assert!(
        solution.unschedulable[0].1.contains("minValues"),
        "{:?}",
        solution.unschedulable
    );
}

#[test]
fn capacity_types_follow_the_pool() {
    let both = pool("both");
    let on_demand = pool_with(
        "od",
        json!({"template": {"spec": {"requirements": [{"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]}}}),
    );
    let p = pod("p", "1", "1Gi", json!({}));
    let spot_cost = solve(std::slice::from_ref(&p), vec![], vec![both]).hourly_cost();
    let od_cost = solve(&[p], vec![], vec![on_demand]).hourly_cost();
    assert!(
        spot_cost < od_cost,
        "spot {spot_cost} should undercut on-demand {od_cost}"
    );
}

#[test]
fn unschedulable_pods_are_explained() {
    let gpu_pool = pool_with(
        "gpu",
        json!({"template": {"spec": {"requirements": [
            {"key": "karpenter.k8s.aws/instance-gpu-name", "operator": "In", "values": ["a100"]},
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a", "us-east-1b"]}
        ]}}}),
    );
    let greedy = pod(
        "greedy",
        "1",
        "1Gi",
        json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"nvidia.com/gpu": "16"}}}]}}),
    );
    let solution = solve(&[greedy], vec![], vec![gpu_pool]);
    assert_eq!(
        solution.unschedulable[0].1,
        "NodePool gpu: no instance type offers 16 nvidia.com/gpu in zones us-east-1a,us-east-1b"
    );
    let arm = pod(
        "x86-only-pool",
        "1",
        "1Gi",
        json!({"spec": {"nodeSelector": {"kubernetes.io/arch": "arm64"}}}),
    );
    let amd = pool_with(
        "amd",
        json!({"template": {"spec": {"requirements": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}}}),
    );
    let solution = solve(&[arm], vec![], vec![amd]);
    assert!(
        solution.unschedulable[0].1.starts_with(
            "NodePool amd: kubernetes.io/arch: In [arm64] does not intersect In [amd64]"
        ),
        "{:?}",
        solution.unschedulable
    );
}

#[test]
fn daemonset_overhead_reduces_room() {
    let pool_spec: NodePool = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [{"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m5.large", "m5.xlarge"]}]}}}
    }))
    .unwrap();
    let overhead = Resources {
        cpu_milli: 500,
        memory: 512 << 20,
        pods: 1,
        ..Default::default()
    };
    let with = Pool::new(
        &pool_spec,
        Catalog::us_east_1(),
        &KubeletSettings::default(),
        &overhead,
        &Resources::default(),
    )
    .unwrap();
    let without = Pool::new(
        &pool_spec,
        Catalog::us_east_1(),
        &KubeletSettings::default(),
        &Resources::default(),
        &Resources::default(),
    )
    .unwrap();
    // m5.large has 1930m allocatable: 1.5 CPU fits without the DaemonSet, not with it.
    let p = pod("p", "1500m", "1Gi", json!({}));
    assert_eq!(
        types_of(&solve(std::slice::from_ref(&p), vec![], vec![without]), 0)[0],
        "m5.large"
    );
    assert_eq!(types_of(&solve(&[p], vec![], vec![with]), 0), ["m5.xlarge"]);
}

#[test]
fn constrained_pods_do_not_make_shared_nodes_dearer() {
    // An on-demand-only pod must not turn a spot node full of flexible pods on-demand.
    let mut pods: Vec<PodInfo> = (0..8)
        .map(|i| pod(&format!("flex{i}"), "1", "2Gi", json!({})))
        .collect();
    pods.push(pod(
        "od",
        "500m",
        "1Gi",
        json!({"spec": {"nodeSelector": {"karpenter.sh/capacity-type": "on-demand"}}}),
    ));
    let solution = solve(&pods, vec![], vec![pool("default")]);
    let od_claim = solution
        .claims
        .iter()
        .find(|c| c.pods.contains(&"default/od".to_string()))
        .unwrap();
    assert!(
        od_claim.pods.iter().all(|p| p == "default/od"),
        "flexible pods stay off the on-demand node: {:?}",
        od_claim.pods
    );
    for claim in solution
        .claims
        .iter()
        .filter(|c| !c.pods.contains(&"default/od".to_string()))
    {
        let capacity = claim.requirements.get("karpenter.sh/capacity-type");
        assert!(
            capacity.is_none_or(|r| r.has("spot")),
            "flexible pods run on spot"
        );
    }
}

#[test]
fn plain_pods_use_spare_room_on_gpu_nodes_but_never_grow_them() {
    let gpu = pod(
        "gpu",
        "1",
        "4Gi",
        json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "4Gi", "nvidia.com/gpu": "1"}}}]}}),
    );
    let mut pods = vec![gpu];
    pods.extend((0..40).map(|i| pod(&format!("web{i}"), "1", "2Gi", json!({}))));
    let solution = solve(&pods, vec![], vec![pool("default")]);
    let gpu_claim = solution
        .claims
        .iter()
        .find(|c| c.pods.contains(&"default/gpu".to_string()))
        .unwrap();
    let alone = solve(&pods[..1], vec![], vec![pool("default")]);
    assert!(
        (gpu_claim.price - alone.claims[0].price).abs() < 1e-9,
        "the GPU node costs what it would alone: {} vs {}",
        gpu_claim.price,
        alone.claims[0].price
    );
    assert_eq!(
        solution.claims.iter().map(|c| c.pods.len()).sum::<usize>(),
        41
    );
}

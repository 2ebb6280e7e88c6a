//! Scheduling benchmark (a program that prints tables; not a test).
//!
//! 1. Upstream's synthetic catalog (DESIGN.md §6): 400 instance types, type i with
//!    i+1 vCPU, 2(i+1) GiB and room for 10(i+1) pods; pods with CPU from
//!    {100m, 250m, 500m, 1, 1500m} and memory from 100Mi to 4Gi, seeded; five
//!    pod kinds in equal shares (plain, zonal spread, hostname spread, zonal
//!    affinity, hostname anti-affinity).
//! 2. The real us-east-1 catalog with a mixed workload: hourly cost against a
//!    lower bound (every pod's CPU and memory at the cheapest price per vCPU and
//!    per GiB any offering has).
//!
//! 3. Cost against the LP bound on every workload shape ([`shapes`]), each
//!    with its target (issue #29: 1.10 from 1,000 pods, 1.25 at the demo's 200).
//!
//! Run: `cargo bench -p karpenter-controller --bench scheduling`

use karpenter_api::v1::NodePool;
use karpenter_controller::catalog::{Catalog, InstanceType, KubeletSettings};
use karpenter_controller::scheduling::{PodInfo, Pool, Resources, lower_bound, pod_info, solve};
use karpenter_controller::state::CachedPod;
use serde_json::json;
use std::time::Instant;

mod baseline;
#[path = "../support/rng.rs"]
mod rng;
mod shapes;

use rng::Rng;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn synthetic_catalog() -> Catalog {
    let types = (0..400u32).map(|i| {
        let vcpu = i + 1;
        let t = json!({
            "name": format!("fake-it-{i}.large"), "architecture": "amd64", "vcpu": vcpu, "memory_mib": 2048 * u64::from(vcpu),
            "cpu_manufacturer": "intel", "local_nvme_gb": 0, "network_bandwidth_mbps": 1000, "ebs_bandwidth_mbps": 1000,
            "hypervisor": "nitro", "enis": 1, "ipv4_per_eni": 10 * vcpu - 1, "encryption_in_transit": false, "bare_metal": false,
            "on_demand_price": 0.05 * f64::from(vcpu) + 0.001 * f64::from(i), "zones": ["test-zone-a", "test-zone-b", "test-zone-c"], "spot": true
        });
        serde_json::from_value::<InstanceType>(t).unwrap().with_offerings()
    });
    Catalog::new(types)
}

fn pool(catalog: &Catalog) -> Pool {
    let pool: NodePool = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "default"},
        "spec": {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}, "requirements": []}}}
    }))
    .unwrap();
    Pool::new(
        &pool,
        catalog,
        &KubeletSettings::default(),
        &Resources::default(),
        &Resources::default(),
    )
    .unwrap()
}

fn pods(
    count: usize,
    seed: u64,
    extra: impl Fn(usize, &mut Rng) -> serde_json::Value,
) -> Vec<PodInfo> {
    let mut rng = Rng(seed);
    let cpus = ["100m", "250m", "500m", "1", "1500m"];
    let memories = ["100Mi", "256Mi", "512Mi", "1Gi", "2Gi", "4Gi"];
    (0..count)
        .map(|i| {
            let (cpu, memory) = (*rng.pick(&cpus), *rng.pick(&memories));
            let mut pod = json!({"metadata": {"name": format!("p{i}"), "namespace": "default"},
                "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}});
            json_patch::merge(&mut pod, &extra(i, &mut rng));
            pod_info(&serde_json::from_value::<CachedPod>(pod).unwrap()).unwrap()
        })
        .collect()
}

/// Upstream's five pod kinds (DESIGN.md §6) in equal shares, labelled as upstream
/// labels them: random `my-label` values (a..g) on plain and spread pods,
/// random `my-affinity` values on affinity pods, `app: nginx` on the
/// anti-affinity ones.
fn upstream_kind(i: usize, rng: &mut Rng) -> serde_json::Value {
    let values = ["a", "b", "c", "d", "e", "f", "g"];
    let spread = |key: &str, rng: &mut Rng| {
        json!({"metadata": {"labels": {"my-label": rng.pick(&values)}},
            "spec": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": {"my-label": rng.pick(&values)}}}]}})
    };
    match i % 5 {
        0 => json!({"metadata": {"labels": {"my-label": rng.pick(&values)}}}),
        1 => spread("topology.kubernetes.io/zone", rng),
        2 => spread("kubernetes.io/hostname", rng),
        3 => json!({"metadata": {"labels": {"my-affinity": rng.pick(&values)}},
            "spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": {"matchLabels": {"my-affinity": rng.pick(&values)}}}]}}}}),
        _ => json!({"metadata": {"labels": {"app": "nginx"}},
            "spec": {"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "nginx"}}}]}}}}),
    }
}

/// A pod of Deployment `app`, spread over `key` with maxSkew 1.
fn spread_by(app: &str, key: &str) -> serde_json::Value {
    json!({"metadata": {"labels": {"app": app}},
        "spec": {"topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": key,
            "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": app}}}]}})
}

fn main() {
    println!(
        "\nscheduling benchmark ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("1. upstream's workload: 400 synthetic types, five pod kinds in equal shares");
    println!("   (upstream, published: 1k 0.89 s, 5k 5.1 s, 10k 12.1 s, 20k 35.7 s -> 4k nodes)");
    println!("| pods   | wall s | pods/s  | nodes | min nodes | unschedulable | peak RSS MiB |");
    println!("|--------|--------|---------|-------|-----------|---------------|--------------|");
    let catalog = synthetic_catalog();
    let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 5_000, 10_000, 20_000]);
    for count in sizes {
        let input = pods(count, 42, upstream_kind);
        let pool = pool(&catalog);
        let start = Instant::now();
        let solution = solve(&input, vec![], vec![pool]);
        let wall = start.elapsed().as_secs_f64();
        // Hostname anti-affinity pods need a node each.
        let min_nodes = input
            .iter()
            .filter(|p| p.labels.contains_key("app"))
            .count();
        println!(
            "| {count:>6} | {wall:>6.3} | {:>7.0} | {:>5} | {min_nodes:>9} | {:>13} | {:>12.0} |",
            count as f64 / wall,
            solution.claims.len(),
            solution.unschedulable.len(),
            peak_rss_mib()
        );
    }

    if std::env::var_os("BENCH_SIZES").is_some() {
        return; // only the sizes asked for
    }
    println!(
        "\n2. real us-east-1 catalog, mixed workload (plain, memory-heavy, GPU, arm64-only, on-demand-only,\n   zone-spread web, hostname-spread cache); the LP bound and FFD ignore spreads"
    );
    let real = Catalog::us_east_1();
    let mixed = pods(2_000, 7, |i, _| match i % 10 {
        0 => {
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "16Gi"}}}]}})
        }
        1 => json!({"spec": {"nodeSelector": {"kubernetes.io/arch": "arm64"}}}),
        2 => json!({"spec": {"nodeSelector": {"karpenter.sh/capacity-type": "on-demand"}}}),
        3 if i % 100 == 3 => {
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}}}]}})
        }
        4 | 5 => spread_by("web", "topology.kubernetes.io/zone"),
        6 => spread_by("cache", "kubernetes.io/hostname"),
        _ => json!({}),
    });
    let bound = lower_bound(&mixed, &pool(real)).expect("the mixed workload has a bound");
    let (ffd_cost, ffd_nodes) = baseline::first_fit_decreasing(&mixed, &pool(real));
    // The same pods without their spreads, for a like-for-like comparison with FFD.
    let unspread: Vec<PodInfo> = mixed
        .iter()
        .cloned()
        .map(|mut p| {
            p.constraints.clear();
            p
        })
        .collect();
    println!(
        "| pods | solver                | wall s | nodes | unschedulable | cost/h | LP bound/h | cost / bound |"
    );
    println!(
        "|------|-----------------------|--------|-------|---------------|--------|------------|--------------|"
    );
    for (name, input) in [("ours", &mixed), ("ours, spreads ignored", &unspread)] {
        let start = Instant::now();
        let solution = solve(input, vec![], vec![pool(real)]);
        let wall = start.elapsed().as_secs_f64();
        let cost = solution.hourly_cost();
        println!(
            "| {:>4} | {name:<21} | {wall:>6.3} | {:>5} | {:>13} | {cost:>6.2} | {bound:>10.2} | {:>12.3} |",
            input.len(),
            solution.claims.len(),
            solution.unschedulable.len(),
            cost / bound
        );
    }
    println!(
        "| {:>4} | FFD, spreads ignored  |      - | {ffd_nodes:>5} |             - | {ffd_cost:>6.2} | {bound:>10.2} | {:>12.3} |",
        mixed.len(),
        ffd_cost / bound
    );

    cost_table(&mixed);
}

/// Section 3: every shape solved at once, its cost against its LP bound.
fn cost_table(mixed: &[PodInfo]) {
    println!(
        "\n3. cost against the LP bound, per workload shape (real us-east-1 catalog, pods solved at once)"
    );
    println!(
        "| shape                                          |  pods | wall s | nodes | unsched | cost/h | bound/h | cost/bound | target | met |"
    );
    println!(
        "|------------------------------------------------|-------|--------|-------|---------|--------|---------|------------|--------|-----|"
    );
    let real = Catalog::us_east_1();
    let mut rows = vec![shapes::Shape {
        name: "mixed (section 2)",
        pods: mixed.to_vec(),
        pool: shapes::open_pool(),
        target: 1.10,
    }];
    rows.extend(shapes::shapes());
    let mut worst: f64 = 0.0;
    for shape in rows {
        let pool = shapes::prepared(&shape.pool, real);
        let bound = lower_bound(&shape.pods, &pool).expect("every shape has a bound");
        let start = Instant::now();
        let solution = solve(&shape.pods, vec![], vec![pool]);
        let wall = start.elapsed().as_secs_f64();
        let cost = solution.hourly_cost();
        let ratio = cost / bound;
        worst = worst.max(ratio / shape.target);
        println!(
            "| {:<46} | {:>5} | {wall:>6.3} | {:>5} | {:>7} | {cost:>6.2} | {bound:>7.2} | {ratio:>10.3} | {:>6.2} | {:>3} |",
            shape.name,
            shape.pods.len(),
            solution.claims.len(),
            solution.unschedulable.len(),
            shape.target,
            if ratio <= shape.target { "yes" } else { "no" }
        );
    }
    println!("worst cost/bound relative to its target: {worst:.3} (<= 1 meets every target)");
}

//! Consolidation benchmark (a program that prints tables; not a test).
//!
//! A cluster after a scale-down: 1,000 m5.2xlarge on-demand nodes holding
//! 10,000 pods unevenly (2 to 18 each, CPU from 100m to 1, memory from
//! 256Mi to 2Gi), the real us-east-1 catalog behind the NodePool.
//! Consolidation decides as the controller does every pass (multi-node over
//! the 100 candidates cheapest to disrupt per dollar, else single-node over
//! a rotating window of 16), and each decision is applied at once (pods
//! moved as planned, the replacement added, empty nodes dropped as
//! emptiness would) until no decision is left. Budgets, validation delays
//! and launch times are left out: this measures the decisions.
//!
//! Printed: the time each decision took, and the cluster's hourly cost at
//! the end against the LP lower bound on any packing of the same pods, and
//! against the provisioner packing them from scratch.
//!
//! Run: `cargo bench -p karpenter-controller --bench consolidation`

use karpenter_api::labels;
use karpenter_api::requirements::{Requirement, Requirements};
use karpenter_controller::catalog::CapacityType;
use karpenter_controller::controllers::disruption::command::{
    self, Action, Command, MULTI_NODE_MAX, Movable, Rules,
};
use karpenter_controller::controllers::disruption::world::World;
use karpenter_controller::scheduling::{ExistingNode, PodInfo, Pool, pod_info, solve};
use karpenter_controller::state::CachedPod;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/rng.rs"]
mod rng;

use rng::Rng;

const NODES: usize = 1_000;
const PODS: usize = 10_000;
const START_TYPE: &str = "m5.2xlarge";
/// Candidates a single-node look covers (the controller's number).
const SINGLE_WINDOW: usize = 16;

/// A node of the simulated cluster.
struct SimNode {
    node: ExistingNode,
    price: f64,
    spot: bool,
}

fn pool(capacity_types: &[&str]) -> Pool {
    common::pool_with(
        "default",
        json!({"template": {"spec": {"requirements": [
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity_types}]}}}),
    )
}

fn pod(i: usize, rng: &mut Rng) -> PodInfo {
    let cpu = *rng.pick(&["100m", "250m", "500m", "1"]);
    let memory = *rng.pick(&["256Mi", "512Mi", "1Gi", "2Gi"]);
    let pod = json!({"metadata": {"name": format!("p{i}"), "namespace": "default"},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}});
    pod_info(&serde_json::from_value::<CachedPod>(pod).expect("pod")).expect("pod info")
}

/// A node named `name` of the pool's instance type `type_name`, at its
/// cheapest offering `requirements` allow, holding `pods`.
fn sim_node(
    pool: &Pool,
    name: String,
    type_name: &str,
    requirements: &Requirements,
    pods: Vec<PodInfo>,
) -> SimNode {
    let candidate = pool
        .candidates
        .iter()
        .find(|c| c.name == type_name)
        .expect("instance type in the pool");
    let offering = candidate.cheapest(requirements).expect("an offering");
    let mut available = candidate.allocatable.clone();
    for pod in &pods {
        available.subtract(&pod.requests);
    }
    let mut labels: BTreeMap<String, String> = candidate.labels.clone();
    labels.insert("kubernetes.io/hostname".into(), name.clone());
    labels.insert("topology.kubernetes.io/zone".into(), offering.zone.clone());
    SimNode {
        node: ExistingNode {
            name,
            labels,
            taints: Vec::new(),
            available,
            host_ports: Vec::new(),
            pods,
        },
        price: offering.price,
        spot: offering.capacity_type == CapacityType::Spot,
    }
}

/// 1,000 nodes of [`START_TYPE`] holding 10,000 pods, 2 to 18 a node.
fn scaled_down_cluster(pool: &Pool, seed: u64) -> (Vec<SimNode>, Vec<PodInfo>) {
    let mut rng = Rng(seed);
    let all: Vec<PodInfo> = (0..PODS).map(|i| pod(i, &mut rng)).collect();
    let mut wanted: Vec<usize> = (0..NODES).map(|_| 2 + (rng.next() % 17) as usize).collect();
    // Scale the draws so they add up to exactly PODS.
    let drawn: usize = wanted.iter().sum();
    for w in &mut wanted {
        *w = (*w * PODS / drawn).max(1);
    }
    let short = PODS - wanted.iter().sum::<usize>();
    for w in wanted.iter_mut().take(short) {
        *w += 1;
    }
    let mut on_demand = Requirements::default();
    on_demand
        .add(Requirement::new(labels::CAPACITY_TYPE, "In", &["on-demand"]).expect("requirement"));
    let mut pods = all.clone().into_iter();
    let nodes = wanted
        .iter()
        .enumerate()
        .map(|(i, &count)| {
            let mine: Vec<PodInfo> = pods.by_ref().take(count).collect();
            sim_node(pool, format!("node-{i}"), START_TYPE, &on_demand, mine)
        })
        .collect();
    (nodes, all)
}

/// Candidates as the controller orders them: least disruption (a pod
/// each) per dollar first, then the most expensive.
fn ordered(nodes: &[SimNode]) -> Vec<Movable> {
    let mut out: Vec<Movable> = nodes
        .iter()
        .filter(|n| !n.node.pods.is_empty())
        .map(|n| Movable {
            claim: n.node.name.clone(),
            node: n.node.name.clone(),
            price: n.price,
            spot: n.spot,
            pods: n.node.pods.clone(),
            pool: "default".into(),
            disruption: 1.0 + n.node.pods.len() as f64,
        })
        .collect();
    let per_dollar = |m: &Movable| m.pods.len() as f64 / m.price;
    out.sort_by(|a, b| {
        per_dollar(a)
            .total_cmp(&per_dollar(b))
            .then(b.price.total_cmp(&a.price))
    });
    out
}

/// Carries a command out on the simulated cluster: pods moved as planned,
/// the replacement added, the nodes taken away and any left empty dropped.
fn apply(nodes: &mut Vec<SimNode>, pool: &Pool, command: &Command, added: &mut usize) {
    let mut leaving: HashMap<String, PodInfo> = HashMap::new();
    nodes.retain_mut(|n| {
        if command.claims.contains(&n.node.name) {
            leaving.extend(n.node.pods.drain(..).map(|p| (p.key.clone(), p)));
            false
        } else {
            true
        }
    });
    for (pod, target) in &command.moves {
        let pod = leaving
            .remove(pod)
            .expect("a moved pod came from a leaving node");
        let node = nodes
            .iter_mut()
            .find(|n| &n.node.name == target)
            .expect("a target node");
        node.node.available.subtract(&pod.requests);
        node.node.pods.push(pod);
    }
    if let Action::Replace(new) = &command.action {
        let pods: Vec<PodInfo> = new
            .pods
            .iter()
            .map(|p| {
                leaving
                    .remove(p)
                    .expect("a pod planned onto the replacement")
            })
            .collect();
        *added += 1;
        let name = format!("new-{added}");
        nodes.push(sim_node(
            pool,
            name,
            &new.instance_types[0],
            &new.requirements,
            pods,
        ));
    }
    assert!(leaving.is_empty(), "every pod of a leaving node was placed");
    nodes.retain(|n| !n.node.pods.is_empty());
}

fn cost(nodes: &[SimNode]) -> f64 {
    nodes.iter().map(|n| n.price).sum()
}

/// One run: consolidates the scaled-down cluster until no decision is left.
fn run(label: &str, capacity_types: &[&str], rules: Rules) {
    let pool = pool(capacity_types);
    let (mut nodes, all_pods) = scaled_down_cluster(&pool, 42);
    let before = (nodes.len(), cost(&nodes));
    println!(
        "\n== {label}: {} nodes, {} pods, ${:.2}/h (replacement must save ${}/h; spot-to-spot {})",
        before.0,
        all_pods.len(),
        before.1,
        rules.min_saving,
        if rules.spot_to_spot { "on" } else { "off" }
    );
    println!(
        "{:>8} | {:>6} | {:>9} | {:>13} | {:>10} | {:>9} | {:>6} | {:>9}",
        "decision", "kind", "nodes out", "replaced by", "pods moved", "decide ms", "nodes", "$/h"
    );
    let mut times: Vec<Duration> = Vec::new();
    let mut start = 0usize;
    let mut fruitless = 0usize;
    let mut added = 0usize;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    loop {
        let candidates = ordered(&nodes);
        if candidates.is_empty() || fruitless * SINGLE_WINDOW >= candidates.len() {
            break;
        }
        let world = World::new(
            nodes.iter().map(|n| n.node.clone()).collect(),
            vec![pool.clone()],
        );
        let multi: Vec<&Movable> = candidates.iter().take(MULTI_NODE_MAX).collect();
        let window = candidates
            .iter()
            .cycle()
            .skip(start % candidates.len())
            .take(SINGLE_WINDOW.min(candidates.len()));
        let began = Instant::now();
        let decided = command::decide(&world, &multi, window, &rules);
        let took = began.elapsed();
        times.push(took);
        start += SINGLE_WINDOW;
        let Some(command) = decided else {
            fruitless += 1;
            continue;
        };
        fruitless = 0;
        let replaced_by = match &command.action {
            Action::Delete => "-".to_string(),
            Action::Replace(new) => new.instance_types[0].clone(),
        };
        let kind = format!(
            "{}-{}",
            command.kind(),
            if replaced_by == "-" {
                "delete"
            } else {
                "replace"
            }
        );
        *kinds.entry(kind).or_default() += 1;
        apply(&mut nodes, &pool, &command, &mut added);
        let n = times.len();
        if n <= 12 || n.is_multiple_of(25) {
            println!(
                "{:>8} | {:>6} | {:>9} | {:>13} | {:>10} | {:>9.1} | {:>6} | {:>9.2}",
                n,
                command.kind(),
                command.claims.len(),
                replaced_by,
                command.pods,
                took.as_secs_f64() * 1e3,
                nodes.len(),
                cost(&nodes)
            );
        }
    }
    let total: Duration = times.iter().sum();
    let worst = times.iter().max().copied().unwrap_or_default();
    let mean = total / u32::try_from(times.len().max(1)).unwrap_or(1);
    let end = cost(&nodes);
    let bound = karpenter_controller::scheduling::lower_bound(&all_pods, &pool).expect("a bound");
    let fresh = solve(&all_pods, Vec::new(), vec![pool.clone()]).hourly_cost();
    println!(
        "decisions: {} looks ({:?}); decide time mean {:.1} ms, worst {:.1} ms, total {:.2} s",
        times.len(),
        kinds,
        mean.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3,
        total.as_secs_f64()
    );
    println!(
        "{:<38} | {:>6} | {:>9} | {:>14}",
        "cluster", "nodes", "$/h", "vs lower bound"
    );
    for (what, count, dollars) in [
        ("before consolidation", before.0.to_string(), before.1),
        ("after consolidation", nodes.len().to_string(), end),
        ("provisioner packing from scratch", "-".to_string(), fresh),
        ("LP lower bound (any packing)", "-".to_string(), bound),
    ] {
        println!(
            "{:<38} | {:>6} | {:>9.2} | {:>13.2}x",
            what,
            count,
            dollars,
            dollars / bound
        );
    }
}

fn main() {
    run(
        "on-demand NodePool",
        &["on-demand"],
        Rules {
            min_saving: 0.01,
            spot_to_spot: false,
            balanced: None,
        },
    );
    run(
        "spot and on-demand NodePool",
        &["spot", "on-demand"],
        Rules {
            min_saving: 0.01,
            spot_to_spot: false,
            balanced: None,
        },
    );
}

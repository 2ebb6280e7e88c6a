//! A chaos run: the demo's end-to-end scenario (scale-out, spot
//! interruptions, scale-in) while the API server fails a seeded fraction of
//! the controller's requests, the simulated EC2 fails a seeded fraction of
//! launches and terminations, and the controller is killed (aborted, no
//! clean shutdown) at seeded points and started again. Afterwards, with the
//! faults off and the cluster settled: 0 leaked instances, 0 duplicate
//! launches, 0 lost interruption messages, 0 stuck nodes, and the NodePool's
//! CPU limit never exceeded. The table of runs is printed.

mod sim;

use k8s_openapi::api::core::v1::Node;
use karpenter_api::v1::{NodeClaim, NodePool};
use karpenter_controller::cloud::CloudProvider;
use karpenter_sim::demo::Timing;
use karpenter_sim::ec2::SimEvent;
use kube::Api;
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use test_support::eventually_within;

const CPU_LIMIT: i64 = 32;
/// Kills of the controller in each of the three phases.
const KILLS_PER_PHASE: usize = 2;

/// xorshift64*.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// vCPUs of the live NodeClaims.
async fn claimed_cpu(claims: &Api<NodeClaim>) -> i64 {
    claims
        .list(&Default::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .filter_map(|c| c.status.as_ref()?.capacity.as_ref()?.get("cpu").cloned())
        .filter_map(|q| q.0.parse::<karpenter_api::quantity::Quantity>().ok())
        .map(|q| (q.nanos() / 1_000_000_000) as i64)
        .sum()
}

/// Every NodeClaim, and the instances (provider IDs) they own.
async fn claims_and_instances(claims: &Api<NodeClaim>) -> (Vec<NodeClaim>, HashSet<String>) {
    let all = claims.list(&Default::default()).await.unwrap().items;
    let owned = all
        .iter()
        .filter_map(|c| c.status.as_ref()?.provider_id.clone())
        .collect();
    (all, owned)
}

struct Outcome {
    seed: u64,
    api_faults: usize,
    aws_faults: u64,
    restarts: usize,
    launches: usize,
    duplicates: usize,
    leaked: usize,
    lost_messages: usize,
    stuck: usize,
    peak_cpu: i64,
}

async fn run(seed: u64) -> Outcome {
    let mut rng = Rng(seed * 7919);
    let cluster = sim::cluster(Timing::at_speed(40.0)).await;
    sim::patch_spec::<NodePool>(
        &cluster,
        "default",
        json!({"limits": {"cpu": CPU_LIMIT.to_string()},
            "disruption": {"consolidateAfter": "0s", "budgets": [{"nodes": "50%"}]},
            // Small nodes: many launches for the kills to land among.
            "template": {"spec": {"requirements": [
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"]},
                {"key": "karpenter.k8s.aws/instance-cpu", "operator": "In", "values": ["2", "4"]},
            ]}}}),
    )
    .await;
    // The demo's web PDB goes: with the pool at its CPU limit, a node being
    // disrupted still counts against the limit, so replacements cannot
    // launch and the PDB then blocks the drain for good (a finding kept in
    // issue #24's notes; PDBs have their own tests).
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(cluster.client(), "default");
    pdbs.delete_collection(&Default::default(), &Default::default())
        .await
        .unwrap();
    let faults = kubesim::Faults::new();
    faults.fail_fraction(0.05, seed);
    cluster.ec2.fail_fraction(0.1, seed);
    let claims: Api<NodeClaim> = Api::all(cluster.client());
    let mut settings = sim::settings("chaos", false);
    settings.disruption_poll_interval = Duration::from_millis(250);
    // Like the kubelet, start the controller again whenever it exits (it
    // exits when a controller stops: see `runtime::RunError`).
    let exits = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let start = || {
        let (client, settings, exits) = (
            cluster.sim.faulty_client(&faults),
            settings.clone(),
            exits.clone(),
        );
        let (_, run) = cluster.controller_with_client(client, settings, futures::future::pending());
        tokio::spawn(async move {
            if let Err(e) = run.await {
                exits.lock().unwrap().push(e.to_string());
            }
        })
    };
    let mut controller = start();
    let mut restarts = 0;
    let mut peak_cpu = 0;
    let mut interrupted = Vec::new();
    // Phases: scale out, interrupt two spot nodes, scale in; a kill at a seeded point of each.
    for phase in 0..3 {
        match phase {
            0 => sim::scale(&cluster, &[("web", 30), ("worker", 12)]).await,
            1 => {
                let spot: Vec<String> = cluster
                    .ec2
                    .list()
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|i| i.capacity_type.label() == "spot")
                    .map(|i| i.provider_id)
                    .take(2)
                    .collect();
                for id in &spot {
                    cluster.interrupt(SimEvent::SpotInterruption, id).ok();
                }
                interrupted.extend(spot);
            }
            _ => {
                // AWS takes interrupted spot instances back at the end of their
                // notice (its own doing: the injected faults do not apply).
                for id in &interrupted {
                    while let Err(e) = cluster.ec2.delete(id).await {
                        if matches!(e, karpenter_controller::cloud::CloudError::NotFound(_)) {
                            break;
                        }
                    }
                }
                sim::scale(&cluster, &[("web", 4), ("worker", 0)]).await
            }
        }
        // Two kills a phase: the second often lands while the restarted
        // controller is launching what the first left pending.
        for _ in 0..KILLS_PER_PHASE {
            let kill_after = Duration::from_millis(300 + rng.below(2500));
            let began = std::time::Instant::now();
            while began.elapsed() < kill_after {
                peak_cpu = peak_cpu.max(claimed_cpu(&claims).await);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            controller.abort();
            let _ = controller.await;
            restarts += 1;
            controller = start();
        }
    }
    // Faults off: the controller must converge from whatever state the chaos left.
    let api_faults = faults.injected().len();
    let aws_faults = cluster.ec2.injected_faults();
    faults.fail_fraction(0.0, 0);
    cluster.ec2.fail_fraction(0.0, 0);
    let nodes: Api<Node> = Api::all(cluster.client());
    let controller = std::sync::Mutex::new(controller);
    let peak = std::sync::atomic::AtomicI64::new(peak_cpu);
    let last_state = std::sync::Mutex::new(String::new());
    let snapshot = std::sync::Mutex::new(None);
    eventually_within(Duration::from_secs(150), "the cluster settles", || async {
        {
            let mut running = controller.lock().unwrap();
            if running.is_finished() {
                eprintln!("seed {seed}: the controller exited ({:?}); starting it again", exits.lock().unwrap().last());
                *running = start();
            }
        }
        peak.fetch_max(claimed_cpu(&claims).await, std::sync::atomic::Ordering::SeqCst);
        let pods_ok = {
            let pods: Api<k8s_openapi::api::core::v1::Pod> =
                Api::namespaced(cluster.client(), "default");
            let list = pods.list(&Default::default()).await.unwrap().items;
            let waiting: Vec<String> = list
                .iter()
                .filter(|p| !sim::running(p))
                .map(|p| {
                    format!(
                        "{} phase={:?} node={:?} deleting={} scheduled={:?}",
                        p.metadata.name.clone().unwrap_or_default(),
                        p.status.as_ref().and_then(|s| s.phase.clone()),
                        p.spec.as_ref().and_then(|s| s.node_name.clone()),
                        p.metadata.deletion_timestamp.is_some(),
                        p.status
                            .as_ref()
                            .and_then(|s| s.conditions.as_ref())
                            .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
                            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
                    )
                })
                .collect();
            (list.len() == 4 && waiting.is_empty(), list.len(), waiting)
        };
        let (pods_ok, pod_count, waiting) = pods_ok;
        let (claims_now, owned) = claims_and_instances(&claims).await;
        let instances = cluster.ec2.list().await.unwrap();
        let no_leak = instances.iter().all(|i| owned.contains(&i.provider_id));
        let none_stuck = claims_now
            .iter()
            .all(|c| c.metadata.deletion_timestamp.is_none())
            && nodes
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .iter()
                .all(|n| n.metadata.deletion_timestamp.is_none());
        let deleting: Vec<String> = claims_now
            .iter()
            .filter(|c| c.metadata.deletion_timestamp.is_some())
            .map(|c| {
                format!(
                    "{} node={:?} finalizers={:?} conditions={:?}",
                    c.metadata.name.clone().unwrap_or_default(),
                    c.status.as_ref().and_then(|s| s.node_name.clone()),
                    c.metadata.finalizers,
                    c.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .map(|cs| cs.iter().map(|c| format!("{}={}", c.type_, c.status)).collect::<Vec<_>>())
                )
            })
            .collect();
        let all_pods: Api<k8s_openapi::api::core::v1::Pod> = Api::all(cluster.client());
        let on_deleting: Vec<String> = all_pods
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| {
                let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
                !node.is_empty() && deleting.iter().any(|d| d.contains(&node))
            })
            .map(|p| {
                format!(
                    "{}/{} phase={:?} deleting={}",
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default(),
                    p.status.as_ref().and_then(|s| s.phase.clone()),
                    p.metadata.deletion_timestamp.is_some()
                )
            })
            .collect();
        let node_info: Vec<String> = nodes
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|n| deleting.iter().any(|d| d.contains(n.metadata.name.as_deref().unwrap_or("-"))))
            .map(|n| format!("node deleting={} finalizers={:?} taints={:?} labels-registered={:?}",
                n.metadata.deletion_timestamp.is_some(), n.metadata.finalizers,
                n.spec.as_ref().and_then(|s| s.taints.as_ref()).map(|t| t.iter().map(|t| t.key.clone()).collect::<Vec<_>>()),
                n.metadata.labels.as_ref().and_then(|l| l.get("karpenter.sh/registered").cloned())))
            .collect();
        let state = format!(
            "pods ok {pods_ok} ({pod_count}, waiting {waiting:?}), no leak {no_leak}, none stuck {none_stuck}, queue {}, deleting {deleting:?}, pods there {on_deleting:?}, nodes {node_info:?}, instance exists {}",
            cluster.queue.outstanding(),
            instances.len()
        );
        let mut last = last_state.lock().unwrap();
        if *last != state {
            eprintln!("seed {seed}: {state}");
            *last = state;
        }
        let settled = pods_ok && no_leak && none_stuck && cluster.queue.outstanding() == 0;
        if settled {
            // Counted from this snapshot: later churn (a consolidation that
            // starts a moment after) is not a stuck node.
            *snapshot.lock().unwrap() = Some((claims_now, owned, instances));
        }
        settled
    })
    .await;
    let peak_cpu = peak.load(std::sync::atomic::Ordering::SeqCst);
    let (claims_now, owned, instances) = snapshot
        .into_inner()
        .unwrap()
        .expect("the settled state was recorded");
    let launches = cluster.ec2.launches();
    let mut per_claim: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, claim) in &launches {
        *per_claim.entry(claim.as_str()).or_default() += 1;
    }
    let lost = interrupted
        .iter()
        .filter(|id| instances.iter().any(|i| &&i.provider_id == id))
        .count()
        + cluster.queue.outstanding();
    controller.lock().unwrap().abort();
    for (claim, n) in &per_claim {
        if *n > 1 {
            eprintln!(
                "DUPLICATE seed {seed}: {claim} launched {n} times: {:?}",
                launches
                    .iter()
                    .filter(|(_, c)| c == claim)
                    .collect::<Vec<_>>()
            );
        }
    }
    Outcome {
        seed,
        api_faults,
        aws_faults,
        restarts,
        launches: launches.len(),
        duplicates: per_claim.values().filter(|n| **n > 1).count(),
        leaked: instances
            .iter()
            .filter(|i| !owned.contains(&i.provider_id))
            .count(),
        lost_messages: lost,
        stuck: claims_now
            .iter()
            .filter(|c| c.metadata.deletion_timestamp.is_some())
            .count(),
        peak_cpu,
    }
}

// `CHAOS_SEEDS=4,5,6 cargo test -p karpenter-controller --test chaos -- --nocapture`
// runs other seeds (with `RUST_LOG=karpenter_controller=info` for the story).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_leaves_no_leak_no_duplicate_no_lost_message_no_stuck_node() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let mut outcomes = Vec::new();
    // `CHAOS_SEEDS=4,5,6` runs other seeds.
    let seeds: Vec<u64> = std::env::var("CHAOS_SEEDS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 2, 3]);
    for seed in seeds {
        outcomes.push(run(seed).await);
    }
    eprintln!(
        "seed | API faults | AWS faults | restarts | launches | duplicates | leaked | lost msgs | stuck | peak CPU / limit | outcome"
    );
    let mut all_ok = true;
    for o in &outcomes {
        let ok = o.duplicates == 0
            && o.leaked == 0
            && o.lost_messages == 0
            && o.stuck == 0
            && o.peak_cpu <= CPU_LIMIT;
        all_ok &= ok;
        eprintln!(
            "{:>4} | {:>10} | {:>10} | {:>8} | {:>8} | {:>10} | {:>6} | {:>9} | {:>5} | {:>8} / {:<5} | {}",
            o.seed,
            o.api_faults,
            o.aws_faults,
            o.restarts,
            o.launches,
            o.duplicates,
            o.leaked,
            o.lost_messages,
            o.stuck,
            o.peak_cpu,
            CPU_LIMIT,
            if ok { "ok" } else { "FAILED" }
        );
    }
    assert!(all_ok, "a chaos run broke an invariant (table above)");
}

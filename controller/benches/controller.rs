//! Controller benchmarks on kubesim + the simulated EC2 (prints tables):
//!
//! 1. Batch close to every NodeClaim created, for 1k pending pods of mixed
//!    shapes (target: under 300 ms).
//! 2. Interruption message to node tainted and NodeClaim deleting
//!    (target: under 1 s).
//!
//! `cargo bench -p karpenter-controller --bench controller`

use k8s_openapi::api::core::v1::{Node, Pod};
use karpenter_api::v1::{NodeClaim, NodePool};
use karpenter_controller::controllers::provisioning::{Provisioner, is_provisionable};
use karpenter_controller::controllers::{Context, nodeclass};
use karpenter_controller::events::{EventSink, Reporter};
use karpenter_controller::metrics::Metrics;
use karpenter_controller::settings::Settings;
use karpenter_controller::state::ClusterState;
use karpenter_sim::demo::{self, SimCluster, Timing};
use karpenter_sim::ec2::SimEvent;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The demo's cluster and workloads; `unlimited` lifts the default pool's
/// limits (1k pods of the demo's shapes ask for 3 TiB, past its 1000Gi).
async fn cluster(unlimited: bool) -> SimCluster {
    let cluster = SimCluster::start(&Timing::at_speed(100.0), 3)
        .await
        .unwrap();
    cluster.apply(demo::DEFAULT_MANIFESTS).await.unwrap();
    if unlimited {
        let pools: Api<NodePool> = Api::all(cluster.client());
        pools
            .patch(
                "default",
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"limits": null}})),
            )
            .await
            .unwrap();
    }
    let scenario = demo::Scenario::parse(demo::DEFAULT_SCENARIO).unwrap();
    cluster.apply(&scenario.manifests()).await.unwrap();
    cluster
}

async fn scale(cluster: &SimCluster, replicas: &[(&str, i32)]) {
    cluster
        .scale("default", replicas.iter().copied())
        .await
        .unwrap();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One batch of `pods` pending pods: time of `provision()` (engine, NodeClaim
/// creation, wait for the cache).
async fn batch(pods: i32) -> (Duration, Duration, usize) {
    let cluster = cluster(true).await;
    let client = cluster.client();
    let (state, _reflectors) = ClusterState::start(&client);
    state.wait_until_ready().await.unwrap();
    nodeclass::reconcile(&client, cluster.ec2.as_ref(), "default")
        .await
        .unwrap();
    let share = pods / 4;
    scale(
        &cluster,
        &[
            ("web", share),
            ("api", share),
            ("worker", share),
            ("cache", pods - 3 * share),
        ],
    )
    .await;
    // Wait until the scheduler has marked every pod unschedulable and the cache has them.
    let start = Instant::now();
    while state
        .pods
        .state()
        .iter()
        .filter(|p| is_provisionable(p))
        .count()
        < pods as usize
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "pods never became pending"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while nodeclass_ready(&state).is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ctx = Arc::new(Context {
        events: EventSink::start(
            client.clone(),
            Reporter {
                controller: "bench".into(),
                instance: "bench".into(),
            },
        ),
        client,
        state,
        cloud: cluster.ec2.clone(),
        metrics: Arc::new(Metrics::new("simulated")),
        settings: Settings::defaults("demo"),
        unplaceable: Default::default(),
        decisions: Default::default(),
    });
    let provisioner = Provisioner::new(ctx);
    let started = Instant::now();
    let outcome = provisioner.provision().await.unwrap();
    (started.elapsed(), outcome.solve_time, outcome.created.len())
}

fn nodeclass_ready(state: &ClusterState) -> Option<()> {
    let class = state.class("default")?;
    let ready =
        karpenter_api::v1::find_condition(class.status.as_ref()?.conditions.as_deref(), "Ready")?;
    (ready.status == "True").then_some(())
}

/// Interruption latency over `rounds` spot interruptions.
async fn interruptions(rounds: usize) -> Vec<(Duration, Duration)> {
    let cluster = cluster(false).await;
    let mut settings = Settings::defaults("demo");
    settings.disable_leader_election = true;
    let (_metrics, run) = cluster.controller(settings, futures::future::pending());
    let controller = tokio::spawn(run);
    scale(&cluster, &[("api", 60), ("worker", 20)]).await;
    let claims: Api<NodeClaim> = Api::all(cluster.client());
    let nodes: Api<Node> = Api::all(cluster.client());
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let mut out = Vec::new();
    for _ in 0..rounds {
        // Wait for a settled cluster.
        let start = Instant::now();
        loop {
            let list = pods.list(&ListParams::default()).await.unwrap().items;
            let running = list
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            let all = claims.list(&ListParams::default()).await.unwrap().items;
            if running == 80
                && all.iter().all(|c| {
                    c.metadata.deletion_timestamp.is_none()
                        && c.status
                            .as_ref()
                            .and_then(|s| s.node_name.as_ref())
                            .is_some()
                })
            {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "cluster did not settle: {running} of 80 pods running, round {}, stuck: {:?}",
                out.len(),
                list.iter()
                    .filter(
                        |p| p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running")
                    )
                    .map(|p| (
                        p.metadata.name.clone(),
                        p.spec.as_ref().and_then(|s| s.node_name.clone()),
                        p.status.clone()
                    ))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let all = claims.list(&ListParams::default()).await.unwrap().items;
        let victim = all
            .iter()
            .find(|c| c.metadata.labels.as_ref().unwrap()["karpenter.sh/capacity-type"] == "spot")
            .expect("a spot node");
        let name = victim.metadata.name.clone().unwrap();
        let node = victim.status.as_ref().unwrap().node_name.clone().unwrap();
        let provider_id = victim.status.as_ref().unwrap().provider_id.clone().unwrap();
        let sent = Instant::now();
        cluster
            .interrupt(SimEvent::SpotInterruption, &provider_id)
            .unwrap();
        let (mut deleting, mut tainted) = (None, None);
        while deleting.is_none() || tainted.is_none() {
            if deleting.is_none()
                && claims
                    .get_opt(&name)
                    .await
                    .unwrap()
                    .is_none_or(|c| c.metadata.deletion_timestamp.is_some())
            {
                deleting = Some(sent.elapsed());
            }
            if tainted.is_none() {
                let n = nodes.get_opt(&node).await.unwrap();
                if n.is_none_or(|n| {
                    n.spec
                        .and_then(|s| s.taints)
                        .unwrap_or_default()
                        .iter()
                        .any(|t| t.key == "karpenter.sh/disrupted")
                }) {
                    tainted = Some(sent.elapsed());
                }
            }
            assert!(
                sent.elapsed() < Duration::from_secs(30),
                "interruption not handled"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        out.push((deleting.unwrap(), tainted.unwrap()));
    }
    controller.abort();
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("== batch close to every NodeClaim created (target < 300 ms for 1k pods)");
    println!(
        "{:>6} | {:>10} | {:>10} | {:>10}",
        "pods", "total ms", "engine ms", "nodeclaims"
    );
    for pods in [100, 1000] {
        let mut totals = Vec::new();
        let mut engines = Vec::new();
        let mut created = 0;
        for _ in 0..3 {
            let (total, engine, n) = batch(pods).await;
            totals.push(total);
            engines.push(engine);
            created = n;
        }
        println!(
            "{pods:>6} | {:>10.1} | {:>10.1} | {created:>10}",
            median(totals).as_secs_f64() * 1e3,
            median(engines).as_secs_f64() * 1e3
        );
    }
    println!("\n== interruption message to NodeClaim deleting and node tainted (target < 1 s)");
    let rounds = interruptions(5).await;
    println!(
        "{:>5} | {:>12} | {:>12}",
        "round", "deleting ms", "tainted ms"
    );
    for (i, (deleting, tainted)) in rounds.iter().enumerate() {
        println!(
            "{:>5} | {:>12.1} | {:>12.1}",
            i + 1,
            deleting.as_secs_f64() * 1e3,
            tainted.as_secs_f64() * 1e3
        );
    }
    let worst = rounds.iter().map(|(_, t)| *t).max().unwrap();
    println!("worst: {:.1} ms", worst.as_secs_f64() * 1e3);
}

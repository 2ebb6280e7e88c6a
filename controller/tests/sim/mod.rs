//! The controller on kubesim and the simulated EC2, as end-to-end tests
//! drive it: the demo's cluster, settings for a quick test, scaling the
//! demo's Deployments and waiting for the cluster to settle.
#![allow(dead_code)] // each test file uses its own subset

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use karpenter_api::v1::NodeClaim;
use karpenter_controller::cloud::CloudProvider;
use karpenter_controller::metrics::SharedMetrics;
use karpenter_controller::settings::Settings;
use karpenter_sim::demo::{self, SimCluster, Timing};
use kube::Api;
use kube::api::ListParams;
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// How long a test waits for the cluster to settle.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// The demo's cluster: its NodePool, EC2NodeClass and Deployments (at 0).
pub async fn cluster(timing: Timing) -> SimCluster {
    let cluster = SimCluster::start(&timing, 7).await.unwrap();
    cluster.apply(demo::DEFAULT_MANIFESTS).await.unwrap();
    let scenario = demo::Scenario::parse(demo::DEFAULT_SCENARIO).unwrap();
    cluster.apply(&scenario.manifests()).await.unwrap();
    cluster
}

/// Settings for `identity`, with a short batch window.
pub fn settings(identity: &str, leader_election: bool) -> Settings {
    let mut settings = Settings::defaults("demo");
    settings.pod_name = identity.into();
    settings.disable_leader_election = !leader_election;
    settings.leader_election_lease_duration = Duration::from_secs(6);
    settings.batch_idle_duration = Duration::from_millis(300);
    settings
}

/// Runs the controller until the test ends; returns its metrics.
pub fn start(cluster: &SimCluster, settings: Settings) -> (SharedMetrics, JoinHandle<()>) {
    let (metrics, run) = cluster.controller(settings, futures::future::pending());
    (metrics, tokio::spawn(run.map(|r| r.unwrap())))
}

/// Disruption passes the controller has finished (its controller-runtime
/// reconcile count for `disruption`, whatever the result).
pub fn disruption_passes(metrics: &SharedMetrics) -> u64 {
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("controller_runtime_reconcile_total{controller=\"disruption\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Waits until at least `passes` more disruption passes have finished and
/// `at_least` has gone by: "nothing happened" then means every method had
/// its chance, not only that time passed.
pub async fn after_disruption_passes(metrics: &SharedMetrics, passes: u64, at_least: Duration) {
    let from = disruption_passes(metrics);
    let began = Instant::now();
    test_support::eventually_within(
        DEADLINE,
        &format!("{passes} more disruption passes"),
        || async { began.elapsed() >= at_least && disruption_passes(metrics) >= from + passes },
    )
    .await;
}

/// Merges `spec` into the spec of the cluster-scoped `K` called `name`
/// (the demo's NodePool or EC2NodeClass, `default`).
pub async fn patch_spec<K>(cluster: &SimCluster, name: &str, spec: serde_json::Value)
where
    K: kube::Resource<Scope = kube::core::ClusterResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::all(cluster.client());
    api.patch(
        name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(serde_json::json!({"spec": spec})),
    )
    .await
    .unwrap();
}

/// [`start`] with the controller talking through `client` (a faulty one).
pub fn start_with_client(
    cluster: &SimCluster,
    client: kube::Client,
    settings: Settings,
) -> (SharedMetrics, JoinHandle<()>) {
    let (metrics, run) =
        cluster.controller_with_client(client, settings, futures::future::pending());
    (metrics, tokio::spawn(run.map(|r| r.unwrap())))
}

/// Sets the demo Deployments' replicas.
pub async fn scale(cluster: &SimCluster, replicas: &[(&str, i32)]) {
    cluster
        .scale("default", replicas.iter().copied())
        .await
        .unwrap();
}

/// Whether the pod runs and is not being deleted.
pub fn running(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
}

/// Waits until `want` pods exist and all run; panics with the state at the deadline.
pub async fn all_running(cluster: &SimCluster, want: usize) {
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let start = Instant::now();
    loop {
        let list = pods.list(&ListParams::default()).await.unwrap().items;
        let live: Vec<&Pod> = list
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let up = live.iter().filter(|p| running(p)).count();
        if live.len() == want && up == want {
            return;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{up}/{} of {want} pods running after {DEADLINE:?}",
            live.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every NodeClaim, from the API server.
pub async fn claims(cluster: &SimCluster) -> Vec<NodeClaim> {
    let api: Api<NodeClaim> = Api::all(cluster.client());
    api.list(&ListParams::default()).await.unwrap().items
}

/// Every Node has a NodeClaim, every instance has a NodeClaim, and no two
/// claims share an instance.
pub async fn consistent(cluster: &SimCluster) {
    let claims = claims(cluster).await;
    let by_provider: HashSet<String> = claims
        .iter()
        .filter_map(|c| c.status.as_ref().and_then(|s| s.provider_id.clone()))
        .collect();
    assert_eq!(
        by_provider.len(),
        claims.len(),
        "every claim has its own instance"
    );
    let nodes: Api<Node> = Api::all(cluster.client());
    for node in nodes.list(&ListParams::default()).await.unwrap().items {
        let id = node.spec.and_then(|s| s.provider_id).unwrap_or_default();
        assert!(
            by_provider.contains(&id),
            "node {:?} has no NodeClaim",
            node.metadata.name
        );
    }
    let instances = cluster.ec2.list().await.unwrap();
    for instance in &instances {
        assert!(
            by_provider.contains(&instance.provider_id),
            "instance {} leaked",
            instance.id
        );
    }
    assert_eq!(instances.len(), claims.len());
}

//! Termination under what real clusters do: DaemonSet pods that tolerate
//! every taint (aws-node, kube-proxy, CSI node plugins), an instance that
//! AWS reclaims in the middle of a drain, and pods stuck terminating on a
//! node whose kubelet is gone. Each of these used to keep the node, its
//! NodeClaim and the instance forever.

mod sim;

use k8s_openapi::api::core::v1::Pod;
use karpenter_api::v1::NodeClaim;
use karpenter_controller::cloud::CloudProvider;
use karpenter_sim::demo::{SimCluster, Timing};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;
use std::time::Duration;
use test_support::{eventually, eventually_within};

/// The cluster with `web` at `replicas`, all running; the controller started.
async fn running(replicas: i32) -> (SimCluster, tokio::task::JoinHandle<()>) {
    let cluster = sim::cluster(Timing::at_speed(50.0)).await;
    let (_, controller) = sim::start(&cluster, sim::settings("termination", false));
    sim::scale(&cluster, &[("web", replicas)]).await;
    sim::all_running(&cluster, replicas as usize).await;
    (cluster, controller)
}

/// A PodDisruptionBudget that allows no eviction of the web pods.
async fn block_evictions(cluster: &SimCluster) {
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "web"}}}});
    cluster.apply(&pdb.to_string()).await.unwrap();
}

/// Deletes one launched NodeClaim (not one consolidation is still
/// launching or already deleting); returns its name and instance.
async fn delete_one_claim(cluster: &SimCluster) -> (String, String) {
    let claim = sim::claims(cluster)
        .await
        .into_iter()
        .find(|c| {
            c.metadata.deletion_timestamp.is_none()
                && c.status.as_ref().is_some_and(|s| s.provider_id.is_some())
        })
        .expect("a launched NodeClaim");
    let name = claim.metadata.name.clone().unwrap();
    let provider_id = claim.status.and_then(|s| s.provider_id).unwrap();
    let claims: Api<NodeClaim> = Api::all(cluster.client());
    claims
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    (name, provider_id)
}

/// Waits until the claim is gone and its instance terminated.
async fn terminated(cluster: &SimCluster, name: &str, provider_id: &str) {
    let claims: Api<NodeClaim> = Api::all(cluster.client());
    // A pod stuck terminating is given up on a minute past its deadline;
    // an instance seen to exist is described again after 15 s.
    eventually_within(
        Duration::from_secs(100),
        &format!("NodeClaim {name} and its instance gone"),
        || async {
            claims.get_opt(name).await.unwrap().is_none()
                && cluster.ec2.get(provider_id).await.is_err()
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_running_daemonsets_that_tolerate_every_taint_is_terminated() {
    let (cluster, _controller) = running(2).await;
    let daemonset = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": {"app": "aws-node"}},
            "template": {
                "metadata": {"labels": {"app": "aws-node"}},
                "spec": {"tolerations": [{"operator": "Exists"}],
                    "priorityClassName": "system-node-critical",
                    "containers": [{"name": "cni", "image": "cni",
                        "resources": {"requests": {"cpu": "25m", "memory": "32Mi"}}}]},
            },
        },
    });
    cluster.apply(&daemonset.to_string()).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "kube-system");
    eventually("the DaemonSet runs on every node", || async {
        let nodes = sim::claims(&cluster).await.len();
        pods.list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|p| sim::running(p))
            .count()
            >= nodes
    })
    .await;
    let (name, provider_id) = delete_one_claim(&cluster).await;
    terminated(&cluster, &name, &provider_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_reclaimed_mid_drain_releases_its_node_and_claim() {
    let (cluster, _controller) = running(2).await;
    // A budget that allows no eviction: the drain stalls.
    block_evictions(&cluster).await;
    let (name, provider_id) = delete_one_claim(&cluster).await;
    let claims: Api<NodeClaim> = Api::all(cluster.client());
    eventually("the drain has started (the node is tainted)", || async {
        let Some(claim) = claims.get_opt(&name).await.unwrap() else {
            return false;
        };
        let node = claim.status.and_then(|s| s.node_name).unwrap_or_default();
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(cluster.client());
        nodes.get_opt(&node).await.unwrap().is_some_and(|n| {
            n.spec
                .and_then(|s| s.taints)
                .unwrap_or_default()
                .iter()
                .any(|t| t.key == "karpenter.sh/disrupted")
        })
    })
    .await;
    // AWS takes the instance back.
    cluster.ec2.delete(&provider_id).await.unwrap();
    terminated(&cluster, &name, &provider_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pods_stuck_terminating_on_a_dead_kubelet_do_not_hold_the_node() {
    let (cluster, _controller) = running(1).await;
    // The pod's kubelet never confirms: a finalizer nobody removes keeps it
    // terminating, as a node whose kubelet died would.
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let pod = pods
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .remove(0);
    let pod_name = pod.metadata.name.clone().unwrap();
    pods.patch(
        &pod_name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/kubelet-gone"]}})),
    )
    .await
    .unwrap();
    pods.delete(
        &pod_name,
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (name, provider_id) = delete_one_claim(&cluster).await;
    terminated(&cluster, &name, &provider_id).await;
    // Leave nothing behind.
    pods.patch(
        &pod_name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .ok();
}

/// Refused evictions on the controller's metrics.
fn refused(metrics: &karpenter_controller::metrics::SharedMetrics) -> u64 {
    metrics
        .encode()
        .lines()
        .find(|l| l.starts_with("karpenter_pods_eviction_requests_total{code=\"429\"} "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_evictions_back_off_while_the_cluster_churns() {
    let cluster = sim::cluster(Timing::at_speed(50.0)).await;
    let (metrics, _controller) = sim::start(&cluster, sim::settings("backoff", false));
    sim::scale(&cluster, &[("web", 2)]).await;
    sim::all_running(&cluster, 2).await;
    block_evictions(&cluster).await;
    let (_name, _) = delete_one_claim(&cluster).await;
    eventually("the first refused eviction", || async {
        refused(&metrics) >= 1
    })
    .await;
    // A measured window (not a synchronisation): 10 s of churn, each change
    // a reason for another termination pass.
    let start = refused(&metrics);
    let window = std::time::Instant::now();
    let mut replicas = 0;
    while window.elapsed() < Duration::from_secs(10) {
        replicas = (replicas + 1) % 3;
        sim::scale(&cluster, &[("api", replicas)]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let asked = refused(&metrics) - start;
    // Backing off 1, 2, 4, 8 s: at most 5 more refusals per blocked pod in
    // 10 s (two web pods may share the node); without it, one every pass.
    assert!(asked <= 10, "{asked} refused evictions in 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_termination_grace_period_is_written_on_the_claim_and_ends_a_blocked_drain() {
    let cluster = sim::cluster(Timing::at_speed(50.0)).await;
    sim::patch_spec::<karpenter_api::v1::NodePool>(
        &cluster,
        "default",
        json!({"template": {"spec": {"terminationGracePeriod": "3s"}}}),
    )
    .await;
    let (_, _controller) = sim::start(&cluster, sim::settings("termination", false));
    sim::scale(&cluster, &[("web", 2)]).await;
    sim::all_running(&cluster, 2).await;
    // A budget that allows no eviction: only the grace period ends the drain.
    block_evictions(&cluster).await;
    let (name, provider_id) = delete_one_claim(&cluster).await;
    let claims: Api<NodeClaim> = Api::all(cluster.client());
    let deadline_of = |claim: &NodeClaim| {
        claim.metadata.annotations.as_ref().and_then(|a| {
            a.get("karpenter.sh/nodeclaim-termination-timestamp")
                .cloned()
        })
    };
    eventually("the claim carries its termination deadline", || async {
        claims
            .get_opt(&name)
            .await
            .unwrap()
            .is_some_and(|c| deadline_of(&c).is_some())
    })
    .await;
    let claim = claims.get(&name).await.unwrap();
    let (deadline, deleted) = (
        deadline_of(&claim).unwrap(),
        claim.metadata.deletion_timestamp.unwrap().0,
    );
    let expected = k8s_openapi::jiff::Timestamp::from_second(deleted.as_second() + 3).unwrap();
    assert_eq!(deadline, expected.to_string(), "deletion + 3s, RFC 3339");
    terminated(&cluster, &name, &provider_id).await;
}

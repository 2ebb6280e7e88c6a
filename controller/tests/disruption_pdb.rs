//! Disruption chooses no node whose pods a PodDisruptionBudget will not let
//! go: such a node would be tainted and then stall half-drained (upstream
//! does not pick it either). Empty nodes still go.

mod sim;

use k8s_openapi::api::core::v1::{Node, Pod};
use karpenter_api::v1::NodePool;
use karpenter_sim::demo::Timing;
use kube::Api;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;
use test_support::eventually_within;

/// How many disruption evaluations the metrics have seen.
fn evaluations(metrics: &karpenter_controller::metrics::SharedMetrics) -> u64 {
    metrics
        .encode()
        .lines()
        .find(|l| {
            l.starts_with(
                "karpenter_voluntary_disruption_decision_evaluation_duration_seconds_count",
            )
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_whose_pods_a_budget_protects_are_not_disrupted() {
    let cluster = sim::cluster(Timing::at_speed(40.0)).await;
    sim::patch_spec::<NodePool>(
        &cluster,
        "default",
        json!({"disruption": {"consolidateAfter": "0s", "budgets": [{"nodes": "100%"}]}}),
    )
    .await;
    let mut settings = sim::settings("pdb", false);
    settings.disruption_poll_interval = Duration::from_millis(250);
    let (metrics, _controller) = sim::start(&cluster, settings);
    sim::scale(&cluster, &[("web", 6), ("worker", 8)]).await;
    sim::all_running(&cluster, 14).await;
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "web"}}}});
    cluster.apply(&pdb.to_string()).await.unwrap();
    // Under-used nodes appear: consolidation looks for nodes to remove.
    sim::scale(&cluster, &[("worker", 0)]).await;
    sim::all_running(&cluster, 6).await;
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let web_nodes: HashSet<String> = pods
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
        .collect();
    let seen = evaluations(&metrics);
    let nodes: Api<Node> = Api::all(cluster.client());
    eventually_within(
        Duration::from_secs(60),
        "20 more disruption evaluations",
        || async {
            // Every check: no node with a web pod is being disrupted.
            for node in nodes.list(&Default::default()).await.unwrap().items {
                let name = node.metadata.name.clone().unwrap_or_default();
                if !web_nodes.contains(&name) {
                    continue;
                }
                let tainted = node
                    .spec
                    .and_then(|s| s.taints)
                    .unwrap_or_default()
                    .iter()
                    .any(|t| t.key == "karpenter.sh/disrupted");
                assert!(
                    !tainted && node.metadata.deletion_timestamp.is_none(),
                    "{name} runs web pods the budget protects, yet it is being disrupted"
                );
            }
            evaluations(&metrics) >= seen + 20
        },
    )
    .await;
    sim::all_running(&cluster, 6).await;
}

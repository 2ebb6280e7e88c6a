//! NodePool status as upstream writes it: `kubectl get nodepools` shows
//! NODES and READY, and GitOps health checks read `Ready`: the pool's
//! NodeClaims summed in `resources` and counted in `nodes`, and the
//! `ValidationSucceeded`, `NodeClassReady` and `Ready` conditions.

mod sim;

use karpenter_api::v1::{NodeClaim, NodePool, find_condition};
use karpenter_sim::demo::Timing;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use std::time::Duration;
use test_support::eventually_within;

fn condition(pool: &NodePool, type_: &str) -> Option<(String, String)> {
    find_condition(
        pool.status.as_ref().and_then(|s| s.conditions.as_deref()),
        type_,
    )
    .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodepool_status_counts_nodes_and_says_ready() {
    let cluster = sim::cluster(Timing::at_speed(40.0)).await;
    let _controller = sim::start(&cluster, sim::settings("status", false));
    sim::scale(&cluster, &[("web", 6)]).await;
    let pools: Api<NodePool> = Api::all(cluster.client());
    let claims: Api<NodeClaim> = Api::all(cluster.client());
    eventually_within(
        Duration::from_secs(60),
        "the default pool reports its nodes, Ready",
        || async {
            let pool = pools.get("default").await.unwrap();
            let owned = claims
                .list(&Default::default())
                .await
                .unwrap()
                .items
                .iter()
                .filter(|c| {
                    c.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("karpenter.sh/nodepool"))
                        .map(String::as_str)
                        == Some("default")
                })
                .count() as i64;
            let status = pool.status.clone().unwrap_or_default();
            owned > 0
                && status.nodes == Some(owned)
                && status
                    .resources
                    .as_ref()
                    .is_some_and(|r| r.contains_key("cpu") && r["nodes"].0 == owned.to_string())
                && condition(&pool, "Ready") == Some(("True".into(), "Ready".into()))
                && condition(&pool, "ValidationSucceeded").is_some_and(|c| c.0 == "True")
                && condition(&pool, "NodeClassReady").is_some_and(|c| c.0 == "True")
        },
    )
    .await;

    // A pool whose EC2NodeClass does not exist is not Ready, and says why.
    let mut orphan: NodePool = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": "orphan"},
        "spec": {"template": {"spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "missing"},
            "requirements": []}}}
    }))
    .unwrap();
    orphan.metadata.resource_version = None;
    pools.create(&PostParams::default(), &orphan).await.unwrap();
    eventually_within(
        Duration::from_secs(30),
        "the orphan pool says its class is missing",
        || async {
            let pool = pools.get("orphan").await.unwrap();
            condition(&pool, "NodeClassReady") == Some(("False".into(), "NodeClassNotFound".into()))
                && condition(&pool, "Ready") == Some(("False".into(), "UnhealthyDependents".into()))
                && pool.status.as_ref().and_then(|s| s.nodes) == Some(0)
        },
    )
    .await;
}

//! Disruption end to end on kubesim and the simulated EC2: empty nodes go
//! once they have been empty for `consolidateAfter`, never more at once than
//! the NodePool's budget allows; a budget window with `nodes: 0` blocks
//! them; a node marked `karpenter.sh/do-not-disrupt` stays; NodeClaims past
//! their `expireAfter` are replaced by new ones, their pods running again;
//! under-used nodes are consolidated (deleted, or replaced by a cheaper one
//! launched first; several at once in one decision), never one running a
//! `do-not-disrupt` pod; a new AMI
//! drifts nodes, replaced one budget at a time, and a replacement that
//! cannot launch leaves the old node untouched.

mod sim;

use k8s_openapi::api::core::v1::{Node, Pod};
use karpenter_api::v1::{NodeClaim, NodePool};
use karpenter_sim::demo::Timing;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use sim::*;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Merges `spec` into the default NodePool's spec.
async fn patch_pool(cluster: &karpenter_sim::demo::SimCluster, spec: serde_json::Value) {
    patch_spec::<NodePool>(cluster, "default", spec).await;
}

/// The demo's cluster with `spec` merged into the default NodePool's spec,
/// and the controller looking for disruption every 250 ms.
async fn started(
    spec: serde_json::Value,
) -> (
    karpenter_sim::demo::SimCluster,
    karpenter_controller::metrics::SharedMetrics,
    tokio::task::JoinHandle<()>,
) {
    let cluster = cluster(Timing::at_speed(40.0)).await;
    patch_pool(&cluster, spec).await;
    let mut settings = settings("solo", false);
    settings.disruption_poll_interval = Duration::from_millis(250);
    let (metrics, controller) = start(&cluster, settings);
    (cluster, metrics, controller)
}

/// Live NodeClaims and those being deleted.
async fn claim_counts(cluster: &karpenter_sim::demo::SimCluster) -> (usize, usize) {
    let all: Vec<NodeClaim> = claims(cluster).await;
    let deleting = all
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_some())
        .count();
    (all.len(), deleting)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn empty_nodes_go_after_consolidate_after_within_the_budget_and_protected_ones_stay() {
    let (cluster, metrics, _controller) =
        started(json!({"disruption": {"consolidateAfter": "3s", "budgets": [{"nodes": "2"}]}}))
            .await;
    scale(&cluster, &[("web", 40), ("worker", 20)]).await;
    all_running(&cluster, 60).await;
    let launched = claims(&cluster).await;
    assert!(launched.len() >= 4, "{} nodes", launched.len());
    // One node asks to be left alone. A claim launched for the last pods
    // may still be booting when they all run elsewhere, so the node is
    // taken from a claim that has registered one.
    let protected = launched
        .iter()
        .find_map(|c| c.status.as_ref().and_then(|s| s.node_name.clone()))
        .expect("a registered node");
    let nodes: Api<Node> = Api::all(cluster.client());
    nodes
        .patch(
            &protected,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"karpenter.sh/do-not-disrupt": "true"}}}),
            ),
        )
        .await
        .unwrap();

    // A node the scheduler left without pods has been empty since it
    // started, so its `consolidateAfter` may end before the scale-down's:
    // the timing is checked on the nodes that had pods until now.
    let pods: Api<Pod> = Api::all(cluster.client());
    let busy: HashSet<String> = pods
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.spec.and_then(|s| s.node_name))
        .collect();
    let emptied = Instant::now();
    scale(&cluster, &[("web", 0), ("worker", 0)]).await;
    all_running(&cluster, 0).await;
    let mut first_deletion = None;
    let mut most_at_once = 0;
    loop {
        let all = claims(&cluster).await;
        let (live, deleting) = claim_counts(&cluster).await;
        most_at_once = most_at_once.max(deleting);
        let busy_deleting = all.iter().any(|c| {
            c.metadata.deletion_timestamp.is_some()
                && c.status
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .is_some_and(|n| busy.contains(n))
        });
        if busy_deleting && first_deletion.is_none() {
            first_deletion = Some(emptied.elapsed());
        }
        if live == 1 {
            break;
        }
        assert!(
            emptied.elapsed() < DEADLINE,
            "{live} nodes left ({deleting} deleting) after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = first_deletion.unwrap();
    assert!(
        first >= Duration::from_secs(3),
        "a node that had pods went {first:?} after the scale-down (consolidateAfter 3s)"
    );
    assert!(
        most_at_once <= 2,
        "{most_at_once} nodes disrupted at once (budget 2)"
    );
    let left = claims(&cluster).await;
    assert_eq!(
        left[0].status.as_ref().and_then(|s| s.node_name.clone()),
        Some(protected),
        "the do-not-disrupt node stays"
    );
    let text = metrics.encode();
    let removed = launched.len() - 1;
    assert!(
        text.contains("karpenter_nodeclaims_disrupted_total{reason=\"empty\",nodepool=\"default\""),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "karpenter_voluntary_disruption_decisions_total{{decision=\"delete\",reason=\"empty\",consolidation_type=\"\"}} {removed}"
        )),
        "{removed} decisions expected:\n{text}"
    );
    consistent(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_budget_window_with_no_nodes_blocks_emptiness_until_it_is_lifted() {
    // Every minute for an hour: always active.
    let (cluster, metrics, _controller) = started(json!({"disruption": {
        "consolidateAfter": "1s",
        "budgets": [
            {"nodes": "0", "schedule": "* * * * *", "duration": "1h"},
            {"nodes": "100%"},
        ],
    }}))
    .await;
    scale(&cluster, &[("worker", 20)]).await;
    all_running(&cluster, 20).await;
    let launched = claims(&cluster).await.len();
    scale(&cluster, &[("worker", 0)]).await;
    all_running(&cluster, 0).await;

    // Well past consolidateAfter, with disruption passes made, nothing has gone.
    after_disruption_passes(&metrics, 8, Duration::from_secs(2)).await;
    assert_eq!(claim_counts(&cluster).await, (launched, 0));
    let text = metrics.encode();
    assert!(
        text.contains(
            "karpenter_nodepools_allowed_disruptions{nodepool=\"default\",reason=\"empty\"} 0"
        ),
        "{text}"
    );

    // The window lifted, the nodes go.
    patch_pool(
        &cluster,
        json!({"disruption": {"budgets": [{"nodes": "100%"}]}}),
    )
    .await;
    test_support::eventually_within(
        DEADLINE,
        "every node gone after the budget lifted",
        || async { claim_counts(&cluster).await.0 == 0 },
    )
    .await;
    consistent(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_nodeclaims_go_and_their_pods_run_on_new_ones() {
    let (cluster, metrics, _controller) =
        started(json!({"template": {"spec": {"expireAfter": "4s"}}})).await;
    scale(&cluster, &[("worker", 10)]).await;
    all_running(&cluster, 10).await;
    let first: Vec<String> = claims(&cluster)
        .await
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();

    // Every first-generation claim goes; the pods run again elsewhere.
    let began = Instant::now();
    loop {
        let now: Vec<String> = claims(&cluster)
            .await
            .iter()
            .filter_map(|c| c.metadata.name.clone())
            .collect();
        if !now.iter().any(|n| first.contains(n)) {
            break;
        }
        assert!(
            began.elapsed() < DEADLINE,
            "first-generation claims still there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    all_running(&cluster, 10).await;
    let text = metrics.encode();
    assert!(
        text.contains(
            "karpenter_nodeclaims_disrupted_total{reason=\"expired\",nodepool=\"default\""
        ),
        "{text}"
    );
    assert!(
        !text.contains("reason=\"expired\",consolidation_type"),
        "expiration is not a voluntary decision:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_used_nodes_whose_pods_fit_elsewhere_are_consolidated_but_not_a_do_not_disrupt_pods()
{
    let (cluster, metrics, _controller) =
        started(json!({"disruption": {"consolidateAfter": "2s", "budgets": [{"nodes": "100%"}]}}))
            .await;
    scale(&cluster, &[("api", 30), ("worker", 20)]).await;
    all_running(&cluster, 50).await;
    let peak = claims(&cluster).await.len();
    let created = |text: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("karpenter_nodeclaims_created_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let launched = created(&metrics.encode());

    // A tenth of the load stays: its nodes are mostly idle. One pod asks
    // not to be disrupted: its node stays whatever it costs.
    scale(&cluster, &[("api", 3), ("worker", 2)]).await;
    all_running(&cluster, 5).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(cluster.client(), "default");
    let keeper = pods
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .remove(0);
    let kept_node = keeper
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .unwrap();
    pods.patch(
        keeper.metadata.name.as_deref().unwrap(),
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"karpenter.sh/do-not-disrupt": "true"}}}),
        ),
    )
    .await
    .unwrap();
    let kept_claim = claims(&cluster)
        .await
        .into_iter()
        .find(|c| c.status.as_ref().and_then(|s| s.node_name.as_ref()) == Some(&kept_node))
        .and_then(|c| c.metadata.name)
        .unwrap();
    let began = Instant::now();
    let decided = "karpenter_voluntary_disruption_decisions_total{decision=\"delete\",reason=\"underutilized\",consolidation_type=\"single\"}";
    loop {
        let kept = claims(&cluster)
            .await
            .into_iter()
            .find(|c| c.metadata.name.as_ref() == Some(&kept_claim));
        assert!(
            kept.is_some_and(|c| c.metadata.deletion_timestamp.is_none()),
            "the node of a do-not-disrupt pod was disrupted"
        );
        let text = metrics.encode();
        if text.contains(decided) && claim_counts(&cluster).await.1 == 0 {
            break;
        }
        assert!(
            began.elapsed() < DEADLINE,
            "no consolidation after {DEADLINE:?} ({} nodes):\n{text}",
            claims(&cluster).await.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    all_running(&cluster, 5).await;
    let left = claims(&cluster).await.len();
    assert!(left < peak, "{left} nodes left of {peak}");
    assert_eq!(
        created(&metrics.encode()),
        launched,
        "the moved pods fit on the nodes left: nothing new is launched"
    );
    consistent(&cluster).await;
}

/// Names of the NodeClaims there now.
async fn claim_names(cluster: &karpenter_sim::demo::SimCluster) -> Vec<String> {
    claims(cluster)
        .await
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_ami_drifts_every_node_and_each_is_replaced_before_it_goes() {
    let (cluster, metrics, _controller) = started(json!({"disruption": {"consolidateAfter": "Never", "budgets": [{"nodes": "1", "reasons": ["Drifted"]}]}})).await;
    scale(&cluster, &[("worker", 8)]).await;
    all_running(&cluster, 8).await;
    let old = claim_names(&cluster).await;

    cluster.ec2.release_image("ami-0000000000000sim2");
    let began = Instant::now();
    let mut saw_drifted = false;
    loop {
        let all = claims(&cluster).await;
        saw_drifted |= all.iter().any(|c| {
            c.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .any(|k| k.type_ == "Drifted" && k.status == "True" && k.reason == "AMIDrift")
        });
        let old_deleting = all
            .iter()
            .filter(|c| old.contains(c.metadata.name.as_ref().unwrap()))
            .filter(|c| c.metadata.deletion_timestamp.is_some())
            .count();
        assert!(
            old_deleting <= 1,
            "{old_deleting} drifted nodes going at once (budget 1)"
        );
        if !all
            .iter()
            .any(|c| old.contains(c.metadata.name.as_ref().unwrap()))
        {
            break;
        }
        assert!(began.elapsed() < DEADLINE * 2, "drifted nodes still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_drifted, "no NodeClaim showed Drifted=True (AMIDrift)");
    all_running(&cluster, 8).await;
    let text = metrics.encode();
    assert!(
        text.contains(
            "karpenter_nodeclaims_created_total{reason=\"drifted\",nodepool=\"default\","
        ),
        "replacements are created as such:\n{text}"
    );
    assert!(
        text.contains(
            "karpenter_nodeclaims_disrupted_total{reason=\"drifted\",nodepool=\"default\""
        ),
        "{text}"
    );
    consistent(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replacement_that_cannot_launch_leaves_the_drifted_node_untouched() {
    let (cluster, metrics, _controller) =
        started(json!({"disruption": {"consolidateAfter": "Never"}})).await;
    scale(&cluster, &[("worker", 4)]).await;
    all_running(&cluster, 4).await;
    let old = claim_names(&cluster).await;

    // Nothing can launch any more, and the AMI changes.
    for t in karpenter_controller::catalog::Catalog::us_east_1().iter() {
        for o in &t.offerings {
            cluster
                .ec2
                .set_capacity(&t.name, &o.zone, o.capacity_type, 0);
        }
    }
    cluster.ec2.release_image("ami-0000000000000sim2");
    let tried = "karpenter_nodeclaims_created_total{reason=\"drifted\"";
    test_support::eventually_within(DEADLINE, "a replacement tried", || async {
        metrics.encode().contains(tried)
    })
    .await;
    // The failed attempt is noticed, given up and counted.
    let failed = "karpenter_voluntary_disruption_queue_failures_total{decision=\"replace\",reason=\"drifted\",consolidation_type=\"\"}";
    test_support::eventually_within(DEADLINE, "the failed replacement counted", || async {
        metrics.encode().contains(failed)
    })
    .await;
    let text = metrics.encode();
    assert!(
        text.contains("karpenter_cloudprovider_instance_launch_failures_total{zone=\"us-east-1"),
        "the offerings the launch found without capacity are counted:\n{text}"
    );
    let nodes: Api<Node> = Api::all(cluster.client());
    for claim in claims(&cluster).await {
        let name = claim.metadata.name.clone().unwrap();
        if !old.contains(&name) {
            continue;
        }
        assert!(
            claim.metadata.deletion_timestamp.is_none(),
            "{name} is being deleted"
        );
        let node = nodes
            .get(
                claim
                    .status
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .unwrap(),
            )
            .await
            .unwrap();
        let tainted = node
            .spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .iter()
            .any(|t| t.key == "karpenter.sh/disrupted");
        assert!(!tainted, "{name}'s node is tainted");
    }
    assert_eq!(
        claims(&cluster)
            .await
            .iter()
            .filter(|c| old.contains(c.metadata.name.as_ref().unwrap()))
            .count(),
        old.len(),
        "every drifted node is still there"
    );
    all_running(&cluster, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_under_used_on_demand_node_is_replaced_by_a_cheaper_one_first() {
    let (cluster, metrics, _controller) =
        started(json!({"disruption": {"consolidateAfter": "2s", "budgets": [{"nodes": "100%"}]}}))
            .await;
    // The cache tier asks for on-demand capacity: 20 pods of 6Gi.
    scale(&cluster, &[("cache", 20)]).await;
    all_running(&cluster, 20).await;
    let before = hourly_cost(&claims(&cluster).await);

    scale(&cluster, &[("cache", 2)]).await;
    all_running(&cluster, 2).await;
    let replaced = "karpenter_voluntary_disruption_decisions_total{decision=\"replace\",reason=\"underutilized\",consolidation_type=\"single\"}";
    test_support::eventually_within(DEADLINE, "an underutilized node replaced", || async {
        metrics.encode().contains(replaced)
    })
    .await;
    let text = metrics.encode();
    assert!(
        text.contains(
            "karpenter_nodeclaims_created_total{reason=\"underutilized\",nodepool=\"default\",min_values_relaxed=\"false\"} 1"
        ),
        "one replacement launched:\n{text}"
    );
    test_support::eventually_within(DEADLINE, "the replaced node drained and gone", || async {
        claim_counts(&cluster).await.1 == 0
    })
    .await;
    all_running(&cluster, 2).await;
    let after = hourly_cost(&claims(&cluster).await);
    assert!(after < before, "${after:.4}/h after, ${before:.4}/h before");
    consistent(&cluster).await;
}

/// What the NodeClaims cost per hour, by the catalog's price of the
/// offering each launched as.
fn hourly_cost(claims: &[NodeClaim]) -> f64 {
    let catalog = karpenter_controller::catalog::Catalog::us_east_1();
    claims
        .iter()
        .filter_map(|c| {
            let labels = c.metadata.labels.as_ref()?;
            let t = catalog
                .iter()
                .find(|t| Some(&t.name) == labels.get("node.kubernetes.io/instance-type"))?;
            let o = t.offerings.iter().find(|o| {
                Some(&o.zone) == labels.get("topology.kubernetes.io/zone")
                    && Some(o.capacity_type.label())
                        == labels.get("karpenter.sh/capacity-type").map(String::as_str)
            })?;
            Some(o.price)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scaling_200_pods_down_to_20_consolidates_within_budgets_and_pdbs() {
    let (cluster, metrics, _controller) =
        started(json!({"disruption": {"consolidateAfter": "2s"}})).await;
    scale(
        &cluster,
        &[("web", 90), ("api", 60), ("worker", 30), ("cache", 20)],
    )
    .await;
    all_running(&cluster, 200).await;
    scale(
        &cluster,
        &[("web", 9), ("api", 6), ("worker", 3), ("cache", 2)],
    )
    .await;
    all_running(&cluster, 20).await;
    let peak = hourly_cost(&claims(&cluster).await);

    // Web's PodDisruptionBudget allows 2 of its 9 pods down; the NodePool's
    // default budget, 10% of its nodes being disrupted at once.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(cluster.client(), "default");
    let began = Instant::now();
    let mut quiet_since = Instant::now();
    let mut last_count = usize::MAX;
    loop {
        let web = pods
            .list(&kube::api::ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items;
        let healthy = web.iter().filter(|p| running(p)).count();
        assert!(
            healthy >= 7,
            "{healthy} of 9 web pods healthy (PDB maxUnavailable 2)"
        );
        let all = claims(&cluster).await;
        let deleting = all
            .iter()
            .filter(|c| c.metadata.deletion_timestamp.is_some())
            .count();
        let allowed = (all.len() * 10).div_ceil(100);
        assert!(
            deleting <= allowed,
            "{deleting} of {} nodes disrupted at once",
            all.len()
        );
        if all.len() != last_count || deleting > 0 {
            last_count = all.len();
            quiet_since = Instant::now();
        }
        if quiet_since.elapsed() > Duration::from_secs(6) {
            break;
        }
        assert!(began.elapsed() < DEADLINE * 2, "disruption did not settle");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    all_running(&cluster, 20).await;
    let end = hourly_cost(&claims(&cluster).await);
    assert!(
        end < peak / 2.0,
        "${end:.3}/h after consolidation, ${peak:.3}/h before"
    );
    let text = metrics.encode();
    assert!(text.contains("reason=\"underutilized\""), "{text}");
    consistent(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn several_under_used_nodes_are_consolidated_in_one_decision() {
    let (cluster, metrics, _controller) =
        started(json!({"disruption": {"consolidateAfter": "2s", "budgets": [{"nodes": "100%"}]}}))
            .await;
    // Three tiers launched one after another, so each gets nodes of its own.
    let mut load = Vec::new();
    for (tier, count) in [("api", 8), ("worker", 4), ("cache", 4)] {
        load.push((tier, count));
        scale(&cluster, &load).await;
        all_running(&cluster, load.iter().map(|(_, n)| *n as usize).sum()).await;
    }
    let peak = claims(&cluster).await.len();
    let before = hourly_cost(&claims(&cluster).await);
    // The newest pods go first: one pod of each tier stays, each on its
    // tier's node.
    scale(&cluster, &[("api", 1), ("worker", 1), ("cache", 1)]).await;
    all_running(&cluster, 3).await;
    let multi = "consolidation_type=\"multi\"";
    let began = Instant::now();
    while !metrics.encode().contains(multi) {
        assert!(
            began.elapsed() < DEADLINE,
            "no multi-node consolidation after {DEADLINE:?} ({} nodes of {peak}):\n{}",
            claims(&cluster).await.len(),
            metrics.encode()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    while claim_counts(&cluster).await.1 > 0 {
        assert!(began.elapsed() < DEADLINE, "nodes still draining");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    all_running(&cluster, 3).await;
    let after = hourly_cost(&claims(&cluster).await);
    let replaced = "karpenter_voluntary_disruption_decisions_total{decision=\"replace\",reason=\"underutilized\",consolidation_type=\"multi\"} 1";
    let deleted = "karpenter_voluntary_disruption_decisions_total{decision=\"delete\",reason=\"underutilized\",consolidation_type=\"multi\"} 1";
    let text = metrics.encode();
    assert!(
        text.contains(replaced) || text.contains(deleted),
        "one decision for the set:\n{text}"
    );
    assert!(
        claims(&cluster).await.len() + 2 < peak,
        "more than the empty nodes went"
    );
    assert!(after < before, "${after:.4}/h after, ${before:.4}/h before");
    consistent(&cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pod_no_node_can_hold_does_not_hold_scale_down_back() {
    let (cluster, metrics, _controller) =
        started(json!({"disruption": {"consolidateAfter": "1s", "budgets": [{"nodes": "100%"}]}}))
            .await;
    scale(&cluster, &[("api", 8)]).await;
    all_running(&cluster, 8).await;
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(cluster.client(), "default");
    let huge = serde_json::from_value(json!({
        "metadata": {"name": "huge"},
        "spec": {"containers": [{"name": "c", "image": "busybox",
            "resources": {"requests": {"cpu": "5000"}}}]}
    }))
    .unwrap();
    pods.create(&Default::default(), &huge).await.unwrap();
    scale(&cluster, &[("api", 0)]).await;
    let began = Instant::now();
    while !claims(&cluster).await.is_empty() {
        assert!(
            began.elapsed() < DEADLINE,
            "empty nodes kept while an unplaceable pod is pending:\n{}",
            metrics.encode()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let still = pods.get("huge").await.unwrap();
    assert!(
        still.spec.and_then(|s| s.node_name).is_none(),
        "the huge pod stays pending"
    );
}

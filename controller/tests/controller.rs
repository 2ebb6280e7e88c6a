//! The controller end to end on kubesim and the simulated EC2: provisioning
//! 200 pods of mixed shapes, a spot interruption drained within its PDB, a
//! restart in the middle of launches, and leader election between replicas.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use karpenter_controller::cloud::CloudProvider;
use karpenter_controller::metrics::SharedMetrics;
use karpenter_sim::demo::Timing;
use karpenter_sim::ec2::SimEvent;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
mod sim;

use sim::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use test_support::eventually_within;

fn quantity(text: &str) -> f64 {
    let q: karpenter_api::quantity::Quantity = text.parse().unwrap();
    q.milli_value() as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn provisions_200_pods_and_drains_a_spot_interruption_within_its_budget() {
    let cluster = cluster(Timing::at_speed(40.0)).await;
    // The web pods run on spot, so a spot interruption always meets their PDB.
    let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
    let on_spot = serde_json::json!({"spec": {"template": {"spec": {
        "nodeSelector": {"karpenter.sh/capacity-type": "spot"}
    }}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(on_spot))
        .await
        .unwrap();
    let (metrics, controller) = start(&cluster, settings("solo", false));
    scale(
        &cluster,
        &[("web", 90), ("api", 60), ("worker", 30), ("cache", 20)],
    )
    .await;
    all_running(&cluster, 200).await;
    consistent(&cluster).await;

    // Instances are tagged with their node's name (what the EC2 console
    // lists), at one CreateTags a second: some soon, all within a minute.
    let tagged = || async {
        claims(&cluster).await.into_iter().find(|c| {
            c.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("karpenter.k8s.aws/tagged"))
                .is_some_and(|v| v == "true")
        })
    };
    test_support::eventually("a claim's instance is tagged", || async {
        tagged().await.is_some()
    })
    .await;
    let claim = tagged().await.unwrap();
    let status = claim.status.clone().unwrap();
    let tags = cluster
        .ec2
        .get(status.provider_id.as_deref().unwrap())
        .await
        .unwrap()
        .tags;
    assert_eq!(tags.get("Name"), status.node_name.as_ref(), "{tags:?}");
    assert_eq!(
        tags.get("karpenter.sh/nodeclaim"),
        claim.metadata.name.as_ref()
    );

    // The default NodePool's limits (cpu 1000, memory 1000Gi) hold.
    let claims_now = claims(&cluster).await;
    for claim in &claims_now {
        let annotations = claim.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations
                .get("karpenter.sh/nodeclaim-min-values-relaxed")
                .map(String::as_str),
            Some("false"),
            "as upstream annotates a claim launched without relaxing minValues"
        );
        assert!(
            annotations.contains_key("karpenter.k8s.aws/instance-profile-name"),
            "the instance profile it launched with: {annotations:?}"
        );
    }
    let (mut cpu, mut memory) = (0.0, 0.0);
    for claim in &claims_now {
        let capacity = claim
            .status
            .as_ref()
            .and_then(|s| s.capacity.clone())
            .unwrap();
        cpu += quantity(&capacity["cpu"].0);
        memory += quantity(&capacity["memory"].0);
    }
    assert!(
        cpu <= 1000.0 && memory <= 1000.0 * 1024f64.powi(3),
        "{cpu} cpu, {memory} memory"
    );
    let text = metrics.encode();
    assert!(
        text.contains(
            "karpenter_nodeclaims_created_total{reason=\"provisioned\",nodepool=\"default\",min_values_relaxed=\"false\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("karpenter_nodes_created_total{nodepool=\"default\",zone="),
        "{text}"
    );
    assert!(
        text.contains("karpenter_cloudprovider_instance_type_offering_price_estimate{instance_type=\"m5.large\",capacity_type=\"on-demand\",zone=\"us-east-1a\"} 0.096"),
        "the offerings are published:\n{text}"
    );
    // The state gauges are recomputed every 5 s: the pool's cost shows its nodes.
    let cost = || {
        let text = metrics.encode();
        text.lines()
            .find_map(|l| l.strip_prefix("karpenter_nodepools_cost_total{nodepool=\"default\"} "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    eventually_within(DEADLINE, "the default pool's hourly cost", || async {
        cost() > 0.0
    })
    .await;

    // A spot node running web pods (PDB maxUnavailable 2) is reclaimed.
    let pods: Api<Pod> = Api::namespaced(cluster.client(), "default");
    let web = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap()
        .items;
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for pod in &web {
        *per_node
            .entry(pod.spec.as_ref().unwrap().node_name.clone().unwrap())
            .or_default() += 1;
    }
    let victim = claims_now
        .iter()
        .filter(|c| c.metadata.labels.as_ref().unwrap()["karpenter.sh/capacity-type"] == "spot")
        .max_by_key(|c| {
            per_node
                .get(c.status.as_ref().unwrap().node_name.as_ref().unwrap())
                .copied()
                .unwrap_or(0)
        })
        .unwrap();
    let victim_name = victim.metadata.name.clone().unwrap();
    let victim_node = victim.status.as_ref().unwrap().node_name.clone().unwrap();
    let provider_id = victim.status.as_ref().unwrap().provider_id.clone().unwrap();
    assert!(
        per_node[&victim_node] >= 2,
        "the victim runs web pods: {per_node:?}"
    );
    let all_pods = pods.list(&ListParams::default()).await.unwrap().items;
    let evicted = all_pods
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()) == Some(&victim_node))
        .count();
    // The first 200 start-ups are observed before any pod is evicted (a
    // pod deleted before the observer's next pass is never observed).
    let started = || {
        let text = metrics.encode();
        text.lines()
            .find_map(|l| l.strip_prefix("karpenter_pods_startup_duration_seconds_count "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    eventually_within(DEADLINE, "the first 200 pods' start-ups", || async {
        started() >= 200
    })
    .await;
    assert_eq!(started(), 200, "the first pods' start-ups, each once");
    let bound = metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix("karpenter_pods_bound_duration_seconds_count{} "))
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(bound, Some(200), "each pod's binding observed once");
    let before: std::collections::HashSet<String> = claims(&cluster)
        .await
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    let sent = Instant::now();
    cluster
        .interrupt(SimEvent::SpotInterruption, &provider_id)
        .unwrap();

    // Watch the web pods until the node is gone: never more than 2 down.
    let nodes: Api<Node> = Api::all(cluster.client());
    let mut min_running = usize::MAX;
    let mut tainted_after = None;
    loop {
        let web = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items;
        min_running = min_running.min(web.iter().filter(|p| running(p)).count());
        let node = nodes.get_opt(&victim_node).await.unwrap();
        if tainted_after.is_none()
            && node.as_ref().is_some_and(|n| {
                n.spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .into_iter()
                    .flatten()
                    .any(|t| t.key == "karpenter.sh/disrupted")
            })
        {
            tainted_after = Some(sent.elapsed());
        }
        if node.is_none() {
            break;
        }
        assert!(sent.elapsed() < DEADLINE, "node {victim_node} still there");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        min_running >= 88,
        "the PDB allows 2 web pods down; saw {min_running} running"
    );
    assert!(
        tainted_after.is_some(),
        "the node was tainted karpenter.sh/disrupted before it went"
    );
    all_running(&cluster, 200).await;
    // The claim goes last (node, then instance, then the claim's finalizer),
    // possibly after the evicted pods already run elsewhere.
    eventually_within(DEADLINE, &format!("claim {victim_name} to go"), || async {
        !claims(&cluster)
            .await
            .iter()
            .any(|c| c.metadata.name.as_deref() == Some(victim_name.as_str()))
    })
    .await;
    assert!(matches!(
        cluster.ec2.get(&provider_id).await,
        Err(karpenter_controller::cloud::CloudError::NotFound(_))
    ));
    // The pods the drain evicts are planned together as soon as the node
    // leaves (upstream's reschedulable pods), not one PDB-paced eviction
    // at a time: a few replacements for the victim's pods, not one each.
    let replacements = claims(&cluster)
        .await
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| !before.contains(n))
        .count();
    assert!(
        replacements <= 3,
        "{replacements} NodeClaims launched for the {evicted} pods of the interrupted node"
    );
    consistent(&cluster).await;
    // Every pod's start-up was observed: the 200 first ones and the evicted
    // ones again (new pods), each once.
    all_running(&cluster, 200).await;
    eventually_within(DEADLINE, "the evicted pods' start-ups", || async {
        started() >= 200 + evicted as u64
    })
    .await;
    assert_eq!(started(), 200 + evicted as u64);
    let text = metrics.encode();
    assert!(
        text.contains(
            "karpenter_interruption_received_messages_total{message_type=\"spot_interrupted\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "karpenter_nodeclaims_disrupted_total{reason=\"spot_interrupted\",nodepool=\"default\",capacity_type=\"spot\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "karpenter_nodeclaims_termination_duration_seconds_count{nodepool=\"default\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "karpenter_nodeclaims_instance_termination_duration_seconds_count{nodepool=\"default\"} 1"
        ),
        "{text}"
    );
    // A bad message is counted and does not stop the loop.
    cluster.queue.send("{not json".into());
    eventually_within(DEADLINE, "the bad message counted", || async {
        metrics.encode().contains("message_type=\"unparseable\"} 1")
    })
    .await;
    controller.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_in_the_middle_of_launches_leaks_nothing() {
    let mut timing = Timing::at_speed(40.0);
    timing.launch = Duration::from_millis(700);
    let cluster = cluster(timing).await;
    let (_, first) = start(&cluster, settings("first", false));
    scale(&cluster, &[("api", 40), ("worker", 10)]).await;
    // Kill the controller while claims exist but are not all launched.
    eventually_within(DEADLINE, "the first claims", || async {
        !claims(&cluster).await.is_empty()
    })
    .await;
    // Not a synchronisation: the kill lands a moment into the launches
    // (700 ms each), whatever state they are in.
    tokio::time::sleep(Duration::from_millis(400)).await;
    first.abort();
    let _ = first.await;
    let before = claims(&cluster).await.len();
    let (_, second) = start(&cluster, settings("second", false));
    all_running(&cluster, 50).await;
    consistent(&cluster).await;
    let after = claims(&cluster).await.len();
    assert!(after >= before, "claims were not lost: {before} -> {after}");
    second.abort();
}

/// Whether the replica's `leader_election_master_status` gauge reads 1 (a sample line,
/// not the HELP text, which mentions "1" too).
fn leads(metrics: &SharedMetrics) -> bool {
    metrics
        .encode()
        .lines()
        .any(|line| line == "leader_election_master_status{name=\"karpenter-leader-election\"} 1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_leader_acts_and_a_follower_takes_over() {
    let cluster = cluster(Timing::at_speed(40.0)).await;
    let (metrics_a, a) = start(&cluster, settings("replica-a", true));
    // Let the first replica take the Lease before the second starts.
    eventually_within(DEADLINE, "replica a to lead", || async {
        leads(&metrics_a)
    })
    .await;
    let (metrics_b, b) = start(&cluster, settings("replica-b", true));
    scale(&cluster, &[("api", 20)]).await;
    all_running(&cluster, 20).await;
    let created = |m: &SharedMetrics| m.encode().contains("karpenter_nodeclaims_created_total{");
    // A replica starved past its lease on a loaded machine may hand over
    // legitimately; what must hold is that exactly one replica acted.
    assert!(
        created(&metrics_a) != created(&metrics_b),
        "exactly one replica provisioned: a {}, b {}",
        created(&metrics_a),
        created(&metrics_b)
    );
    let ((_, leader), (metrics_b, b)) = if created(&metrics_a) {
        ((metrics_a, a), (metrics_b, b))
    } else {
        ((metrics_b, b), (metrics_a, a))
    };
    assert!(!leads(&metrics_b), "{}", metrics_b.encode());

    // The leader stops; the follower takes over.
    leader.abort();
    let died = Instant::now();
    eventually_within(DEADLINE, "the follower to take over", || async {
        leads(&metrics_b)
    })
    .await;
    let failover = died.elapsed();
    scale(&cluster, &[("api", 40)]).await;
    all_running(&cluster, 40).await;
    assert!(created(&metrics_b), "the new leader provisioned");
    println!("fail-over took {failover:?}");
    b.abort();
}

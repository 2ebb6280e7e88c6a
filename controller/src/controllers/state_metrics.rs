//! Upstream's metrics controllers: every few seconds the node, NodePool,
//! pod and cluster gauges ([`crate::metrics::state`]) are recomputed from
//! the caches, whole families at a time, so deleted objects leave no series.

use crate::catalog::offering_of;
use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::metrics::Labels;
use crate::metrics::state::{
    StateMetrics, node_label_keys, replace, replace_whole, resource_label,
};
use crate::scheduling::{Resources, limits_of, requests_of};
use crate::state::{CachedPod, label, pool_label};
use k8s_openapi::api::core::v1::Node;
use karpenter_api::labels;
use karpenter_api::quantity::Quantity;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// How often the gauges are recomputed (upstream's 5 s).
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Resource amounts in the units upstream reports: CPU in cores, the rest as counts.
fn entries(r: &Resources) -> Vec<(String, f64)> {
    let mut out = vec![
        ("cpu".to_string(), r.cpu_milli as f64 / 1000.0),
        ("memory".to_string(), r.memory as f64),
    ];
    if r.storage != 0 {
        out.push(("ephemeral_storage".to_string(), r.storage as f64));
    }
    if r.pods != 0 {
        out.push(("pods".to_string(), r.pods as f64));
    }
    out.extend(
        r.extended
            .iter()
            .map(|(k, v)| (resource_label(k), *v as f64)),
    );
    out
}

/// A Kubernetes resource list as [`Resources`].
fn resources(
    list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> Resources {
    let parsed: Vec<(String, Quantity)> = list
        .into_iter()
        .flatten()
        .filter_map(|(k, q)| Some((k.clone(), Quantity::try_from(q).ok()?)))
        .collect();
    Resources::from_list(parsed.iter().map(|(k, q)| (k, q)))
}

fn is_daemon(pod: &CachedPod) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet")
}

fn terminal(pod: &CachedPod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The labels of a node's series.
fn node_labels(node: &Node) -> Labels {
    let mut out: Labels = node_label_keys()
        .into_iter()
        .map(|(key, name)| (name, label(node, key)))
        .collect();
    out.push(("node_name", node.metadata.name.clone().unwrap_or_default()));
    out.push((
        "node_phase",
        node.status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default(),
    ));
    out.push(("managed", (!pool_label(node).is_empty()).to_string()));
    out
}

fn with_resource(labels: &Labels, resource: String) -> Labels {
    let mut out = labels.clone();
    out.push(("resource_type", resource));
    out
}

/// Recomputes every state gauge from the caches.
pub fn refresh<C>(ctx: &Context<C>) {
    let m: &StateMetrics = &ctx.metrics.state;
    let now = k8s_openapi::jiff::Timestamp::now();
    let nodes = ctx.state.nodes.state();
    let pods = ctx.state.pods.state();
    let mut on_node: HashMap<&str, Vec<&CachedPod>> = HashMap::new();
    for pod in pods.iter().filter(|p| !terminal(p)) {
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            on_node.entry(node).or_default().push(pod);
        }
    }
    let mut series: [Vec<(Labels, f64)>; 7] = Default::default();
    let (mut allocatable_total, mut requested_total) = (Resources::default(), Resources::default());
    for node in &nodes {
        let labels = node_labels(node);
        let status = node.status.as_ref();
        let allocatable = resources(status.and_then(|s| s.allocatable.as_ref()));
        let mut overhead = resources(status.and_then(|s| s.capacity.as_ref()));
        overhead.subtract(&allocatable);
        let name = node.metadata.name.as_deref().unwrap_or_default();
        let mut sums: [Resources; 4] = Default::default();
        for pod in on_node.get(name).into_iter().flatten() {
            let Some(spec) = pod.spec.as_ref() else {
                continue;
            };
            let (requests, limits) = (requests_of(spec), limits_of(spec));
            sums[0].add(&requests);
            sums[1].add(&limits);
            if is_daemon(pod) {
                sums[2].add(&requests);
                sums[3].add(&limits);
            }
        }
        allocatable_total.add(&allocatable);
        requested_total.add(&sums[0]);
        for (i, r) in [
            &allocatable,
            &overhead,
            &sums[0],
            &sums[1],
            &sums[2],
            &sums[3],
        ]
        .into_iter()
        .enumerate()
        {
            series[i].extend(
                entries(r)
                    .into_iter()
                    .map(|(k, v)| (with_resource(&labels, k), v)),
            );
        }
        if let Some(created) = node.metadata.creation_timestamp.as_ref() {
            let age = now.duration_since(created.0).as_secs_f64().max(0.0);
            series[6].push((labels, age));
        }
    }
    let [
        alloc,
        overhead,
        requests,
        limits,
        daemon_requests,
        daemon_limits,
        lifetime,
    ] = series;
    replace(&m.nodes_allocatable, alloc);
    replace(&m.nodes_system_overhead, overhead);
    replace(&m.nodes_pod_requests, requests);
    replace(&m.nodes_pod_limits, limits);
    replace(&m.nodes_daemon_requests, daemon_requests);
    replace(&m.nodes_daemon_limits, daemon_limits);
    replace(&m.nodes_lifetime, lifetime);
    let used: HashMap<String, f64> = entries(&requested_total).into_iter().collect();
    replace(
        &m.cluster_utilization,
        entries(&allocatable_total)
            .into_iter()
            .filter(|(_, total)| *total > 0.0)
            .map(|(k, total)| {
                let percent = 100.0 * used.get(&k).copied().unwrap_or(0.0) / total;
                (vec![("resource_type", k)], percent)
            }),
    );
    m.node_count
        .get_or_create(&Vec::new())
        .set(nodes.len() as i64);
    m.synced.get_or_create(&Vec::new()).set(1);
    m.unsynced_time.get_or_create(&Vec::new()).set(0.0);
    pools(ctx, m);
    pod_state(&pods, &nodes, m, now);
    pod_decisions(&ctx.decisions, &pods, m, now);
}

/// `karpenter_nodepools_usage` (the pool's NodeClaims' capacity, as its
/// status reports it) and `karpenter_nodepools_limit`.
fn pools<C>(ctx: &Context<C>, m: &StateMetrics) {
    let mut usage = Vec::new();
    let mut limits = Vec::new();
    for pool in ctx.state.pools.state() {
        let name = pool.metadata.name.clone().unwrap_or_default();
        let series = |list: Option<&karpenter_api::v1::ResourceList>| {
            let parsed: Vec<(String, Quantity)> = list
                .into_iter()
                .flatten()
                .filter_map(|(k, q)| Some((k.clone(), q.0.parse().ok()?)))
                .collect();
            let r = Resources::from_list(parsed.iter().map(|(k, q)| (k, q)));
            let name = name.clone();
            entries(&r)
                .into_iter()
                .map(move |(k, v)| (vec![("resource_type", k), ("nodepool", name.clone())], v))
        };
        usage.extend(series(
            pool.status.as_ref().and_then(|s| s.resources.as_ref()),
        ));
        limits.extend(series(pool.spec.limits.as_ref()));
    }
    replace(&m.nodepools_usage, usage);
    replace(&m.nodepools_limit, limits);
}

/// The `karpenter_pods_provisioning_*_time_seconds` gauges: pods no round
/// has decided (since first seen), and pods a round placed that are not
/// bound or not running yet (since the decision). Forgets pods that are gone.
fn pod_decisions(
    decisions: &crate::controllers::provisioning::PodDecisions,
    pods: &[Arc<CachedPod>],
    m: &StateMetrics,
    now: k8s_openapi::jiff::Timestamp,
) {
    let by_key: HashMap<String, &CachedPod> = pods
        .iter()
        .map(|p| (crate::state::key(p.as_ref()), p.as_ref()))
        .collect();
    decisions.retain(&by_key.keys().cloned().collect());
    let (mut undecided, mut unbound, mut unstarted) = (Vec::new(), Vec::new(), Vec::new());
    for (key, decision) in decisions.snapshot() {
        let Some(pod) = by_key.get(&key) else {
            continue;
        };
        let labels = vec![
            ("name", pod.metadata.name.clone().unwrap_or_default()),
            (
                "namespace",
                pod.metadata.namespace.clone().unwrap_or_default(),
            ),
        ];
        let since = |t: k8s_openapi::jiff::Timestamp| now.duration_since(t).as_secs_f64().max(0.0);
        let bound = pod.spec.as_ref().is_some_and(|s| s.node_name.is_some());
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        match decision.decided {
            None => undecided.push((labels, since(decision.seen))),
            Some(at) if decision.placed && !bound => unbound.push((labels, since(at))),
            Some(at) if decision.placed && !running => unstarted.push((labels, since(at))),
            Some(_) => {}
        }
    }
    replace(&m.pods_scheduling_undecided_time, undecided);
    replace(&m.pods_provisioning_unbound_time, unbound);
    replace(&m.pods_provisioning_unstarted_time, unstarted);
}

/// `karpenter_pods_state` and the waiting-time gauges of pending and starting pods.
fn pod_state(
    pods: &[Arc<CachedPod>],
    nodes: &[Arc<Node>],
    m: &StateMetrics,
    now: k8s_openapi::jiff::Timestamp,
) {
    let by_name: HashMap<&str, &Node> = nodes
        .iter()
        .filter_map(|n| Some((n.metadata.name.as_deref()?, n.as_ref())))
        .collect();
    let mut state = Vec::new();
    let (mut unbound, mut unstarted) = (Vec::new(), Vec::new());
    for pod in pods {
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.clone()).unwrap_or_default();
        let node_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let node = by_name.get(node_name.as_str()).copied();
        let node_label = |key: &str| node.map(|n| label(n, key)).unwrap_or_default();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let owner = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .next()
            .map(|o| format!("{}/{}", o.kind, o.name))
            .unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        state.push((
            vec![
                ("name", name.clone()),
                ("namespace", namespace.clone()),
                ("owner", owner),
                ("node", node_name.clone()),
                ("scheduled", (!node_name.is_empty()).to_string()),
                ("nodepool", node_label(labels::NODEPOOL)),
                ("zone", node_label(labels::ZONE)),
                ("arch", node_label(labels::ARCH)),
                ("capacity_type", node_label(labels::CAPACITY_TYPE)),
                ("instance_type", node_label(labels::INSTANCE_TYPE)),
                ("phase", phase.clone()),
                ("ready", ready.to_string()),
                (
                    "managed",
                    node.is_some_and(|n| !pool_label(n).is_empty()).to_string(),
                ),
            ],
            1,
        ));
        let Some(created) = pod.metadata.creation_timestamp.as_ref() else {
            continue;
        };
        let waited = now.duration_since(created.0).as_secs_f64().max(0.0);
        let key = vec![("name", name), ("namespace", namespace)];
        if phase == "Pending" && node_name.is_empty() {
            unbound.push((key, waited));
        } else if phase == "Pending" {
            unstarted.push((key, waited));
        }
    }
    replace_whole(&m.pods_state, state);
    replace(&m.pods_unbound_time, unbound);
    replace(&m.pods_unstarted_time, unstarted);
}

/// `karpenter_nodepools_cost_total`: the hourly price of each NodePool's
/// NodeClaims, from their offerings; a claim whose offering is unknown
/// counts in `karpenter_nodepools_cost_tracker_errors_total`.
pub async fn cost<C: CloudProvider>(ctx: &Context<C>) {
    let claims = ctx.state.claims.state();
    let mut costs = Vec::new();
    for pool in ctx.state.pools.state() {
        let name = pool.metadata.name.clone().unwrap_or_default();
        let launched: Vec<_> = claims
            .iter()
            .filter(|c| pool_label(c.as_ref()) == name)
            .filter(|c| !label(c.as_ref(), labels::INSTANCE_TYPE).is_empty())
            .collect();
        let types = match ctx.state.class_of(&pool) {
            Some(class) if !launched.is_empty() => {
                ctx.cloud.instance_types(&pool, &class).await.ok()
            }
            _ => None,
        };
        let mut total = 0.0;
        for claim in &launched {
            match types
                .as_deref()
                .and_then(|t| offering_of(t, claim.metadata.labels.as_ref()))
            {
                Some(offering) => total += offering.price,
                None => {
                    ctx.metrics
                        .state
                        .nodepools_cost_errors
                        .get_or_create(&vec![("nodepool", name.clone())])
                        .inc();
                }
            }
        }
        costs.push((vec![("nodepool", name)], total));
    }
    replace(&ctx.metrics.state.nodepools_cost, costs);
}

/// Recomputes the gauges every [`INTERVAL`] until the task is dropped.
pub async fn run<C: CloudProvider + 'static>(ctx: Arc<Context<C>>) {
    loop {
        refresh(&ctx);
        cost(&ctx).await;
        tokio::time::sleep(INTERVAL).await;
    }
}

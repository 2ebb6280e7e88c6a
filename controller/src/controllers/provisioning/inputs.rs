//! The scheduling engine's inputs, read from the cluster-state caches:
//! provisionable pods, the capacity that exists or is in flight, and the
//! NodePools with their instance types, limits and DaemonSet overhead.

use crate::catalog::Catalog;
use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::scheduling::{ExistingNode, PodInfo, Pool, Resources, pod_info};
use crate::state::{CachedPod, deleting, pool_label};
use k8s_openapi::api::core::v1::{Node, Taint};
use karpenter_api::labels;
use karpenter_api::requirements::Requirements;
use karpenter_api::v1::{NodeClaim, NodePool, ResourceList, find_condition};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether the pod waits for capacity: `PodScheduled=False` with reason
/// `Unschedulable`, not bound, not terminating, not a DaemonSet or mirror pod.
pub fn is_provisionable(pod: &CachedPod) -> bool {
    let unschedulable = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
    let bound = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let daemon = is_daemon_pod(pod);
    unschedulable && !bound && !daemon && !is_mirror_pod(pod) && !deleting(pod)
}

/// Whether the kubelet made the pod from a static manifest.
fn is_mirror_pod(pod: &CachedPod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
}

/// Pods the drain of a leaving node will evict (upstream's reschedulable
/// pods): bound to a node that is being deleted, carries the
/// `karpenter.sh/disrupted` taint, or whose NodeClaim is being deleted;
/// running, not terminating, neither a DaemonSet's nor a mirror pod, and not
/// tolerating the disruption taint (the drain leaves those). They are
/// planned with the pending pods, so the capacity a spot interruption takes
/// away is launched in one batch, not one eviction at a time as a
/// PodDisruptionBudget lets the pods go.
pub fn reschedulable<C: CloudProvider>(ctx: &Context<C>) -> Vec<Arc<CachedPod>> {
    let state = &ctx.state;
    let leaving: std::collections::HashSet<String> = state
        .nodes
        .state()
        .into_iter()
        .filter(|node| {
            let taints = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_deref())
                .unwrap_or_default();
            let claim_deleting = node
                .spec
                .as_ref()
                .and_then(|s| s.provider_id.as_deref())
                .and_then(|id| state.claim_for_provider_id(id))
                .is_some_and(|c| deleting(c.as_ref()));
            deleting(node.as_ref()) || disrupted(taints) || claim_deleting
        })
        .filter_map(|node| node.metadata.name.clone())
        .collect();
    if leaving.is_empty() {
        return Vec::new();
    }
    state
        .pods
        .state()
        .into_iter()
        .filter(|pod| {
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some_and(|n| leaving.contains(n))
        })
        .filter(|pod| {
            is_active(pod)
                && !deleting(pod.as_ref())
                && !is_daemon_pod(pod)
                && !is_mirror_pod(pod)
                && !crate::controllers::termination::tolerates_disruption(pod)
        })
        .collect()
}

/// Whether a DaemonSet owns the pod.
pub fn is_daemon_pod(pod: &CachedPod) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet")
}

/// Whether a bound pod still occupies its node (not finished).
pub fn is_active(pod: &CachedPod) -> bool {
    !matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// A Kubernetes resource list as packing integers (unparseable entries skipped).
pub fn resources_of(list: Option<&ResourceList>) -> Resources {
    let mut out = Resources::default();
    for (name, q) in list.into_iter().flatten() {
        if let Ok(q) = q.0.parse() {
            out.set(name, &q);
        }
    }
    out
}

/// Taints that go away on their own as a node starts (they do not stop
/// pods from being planned onto it).
fn ephemeral(taint: &Taint, claim: Option<&NodeClaim>) -> bool {
    taint.key == labels::UNREGISTERED_TAINT_KEY
        || taint.key.starts_with("node.kubernetes.io/not-ready")
        || taint.key == "node.kubernetes.io/unreachable"
        || claim
            .and_then(|c| c.spec.template.startup_taints.as_ref())
            .is_some_and(|s| s.iter().any(|t| t.key == taint.key))
}

fn disrupted(taints: &[Taint]) -> bool {
    taints.iter().any(|t| t.key == labels::DISRUPTED_TAINT_KEY)
}

/// Digests pods, skipping (and reporting) the ones the engine cannot read.
pub fn pod_infos<C: CloudProvider>(ctx: &Context<C>, pods: &[Arc<CachedPod>]) -> Vec<PodInfo> {
    pods.iter()
        .filter_map(|pod| match pod_info(pod) {
            Ok(info) => Some(info),
            Err(e) => {
                ctx.event(pod.as_ref(), true, "FailedScheduling", e.to_string());
                None
            }
        })
        .collect()
}

/// Nodes that can take pods (registered, not being deleted or disrupted)
/// and the `claims` still in flight (no Node yet), with what is left on them.
pub fn existing_nodes<C: CloudProvider>(
    ctx: &Context<C>,
    pools: &[Pool],
    claims: &[Arc<NodeClaim>],
) -> Vec<ExistingNode> {
    let state = &ctx.state;
    let mut by_node: BTreeMap<String, Vec<Arc<CachedPod>>> = BTreeMap::new();
    let mut topology = false;
    for pod in state.pods.state() {
        topology |= has_topology_terms(&pod);
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone())
            && is_active(&pod)
        {
            by_node.entry(node).or_default().push(pod);
        }
    }
    let mut out = Vec::new();
    let mut registered = std::collections::HashSet::new();
    for node in state.nodes.state() {
        let claim = node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .and_then(|id| state.claim_for_provider_id(id));
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        if let Some(c) = &claim {
            registered.insert(c.metadata.name.clone().unwrap_or_default());
            if deleting(c.as_ref()) {
                continue;
            }
        }
        if deleting(node.as_ref()) || disrupted(&taints) || unschedulable(&node) {
            continue;
        }
        let name = node.metadata.name.clone().unwrap_or_default();
        let pods = by_node.remove(&name).unwrap_or_default();
        let mut available = resources_of(node.status.as_ref().and_then(|s| s.allocatable.as_ref()));
        let infos = pod_infos(ctx, &pods);
        for info in &infos {
            available.subtract(&info.requests);
        }
        out.push(ExistingNode {
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints: taints
                .into_iter()
                .filter(|t| !ephemeral(t, claim.as_deref()))
                .collect(),
            host_ports: infos.iter().flat_map(|p| p.host_ports.clone()).collect(),
            available,
            // A running pod only matters to topology terms; with none in
            // the cluster, 10k pods need not be kept for every solve.
            pods: if topology { infos } else { Vec::new() },
            name,
        });
    }
    for claim in claims {
        let name = claim.metadata.name.clone().unwrap_or_default();
        if registered.contains(&name) || deleting(claim.as_ref()) {
            continue;
        }
        if let Some(node) = in_flight(claim, pools) {
            out.push(node);
        }
    }
    out
}

/// Whether the pod has topology spread constraints or pod (anti-)affinity,
/// the only rules that count pods already running.
fn has_topology_terms(pod: &CachedPod) -> bool {
    pod.spec.as_ref().is_some_and(|s| {
        s.topology_spread_constraints
            .as_ref()
            .is_some_and(|t| !t.is_empty())
            || s.affinity
                .as_ref()
                .is_some_and(|a| a.pod_affinity.is_some() || a.pod_anti_affinity.is_some())
    })
}

fn unschedulable(node: &Node) -> bool {
    node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true)
}

/// A NodeClaim without a Node as the engine sees it: its labels and
/// single-valued requirements, and the room its smallest instance-type
/// option (or, once launched, its instance) leaves after DaemonSets.
fn in_flight(claim: &NodeClaim, pools: &[Pool]) -> Option<ExistingNode> {
    let pool = pools.iter().find(|p| p.name == pool_label(claim))?;
    let requirements = Requirements::from_api(&claim.spec.template.requirements).ok()?;
    let mut labels = requirements.single_valued_labels();
    labels.extend(claim.metadata.labels.clone().unwrap_or_default());
    let launched = claim.status.as_ref().and_then(|s| s.allocatable.as_ref());
    let available = match launched {
        Some(allocatable) => {
            // The pool's candidate for the launched type already has the
            // DaemonSet overhead taken off; fall back to the raw allocatable.
            let instance_type = labels.get(labels::INSTANCE_TYPE)?;
            pool.candidates
                .iter()
                .find(|c| &c.name == instance_type)
                .map(|c| c.allocatable.clone())
                .unwrap_or_else(|| resources_of(Some(allocatable)))
        }
        None => {
            let options = requirements.get(labels::INSTANCE_TYPE)?.values()?.clone();
            pool.candidates
                .iter()
                .filter(|c| options.contains(&c.name))
                .map(|c| c.allocatable.clone())
                .reduce(|mut a, b| {
                    a.cpu_milli = a.cpu_milli.min(b.cpu_milli);
                    a.memory = a.memory.min(b.memory);
                    a.storage = a.storage.min(b.storage);
                    a.pods = a.pods.min(b.pods);
                    a.extended.retain(|k, _| b.extended.contains_key(k));
                    for (k, v) in a.extended.iter_mut() {
                        *v = (*v).min(b.extended[k]);
                    }
                    a
                })?
        }
    };
    Some(ExistingNode {
        name: claim.metadata.name.clone().unwrap_or_default(),
        labels,
        taints: claim.spec.template.taints.clone().unwrap_or_default(),
        available,
        host_ports: Vec::new(),
        pods: Vec::new(),
    })
}

/// What the DaemonSets that would run on a pool's nodes request per node.
fn daemon_overhead<C: CloudProvider>(ctx: &Context<C>, pool: &NodePool) -> Resources {
    let taints = pool.spec.template.spec.taints.clone().unwrap_or_default();
    let mut total = Resources::default();
    for ds in ctx.state.daemonsets.state() {
        let Some(template) = ds.spec.as_ref().map(|s| s.template.clone()) else {
            continue;
        };
        let pod = match CachedPod::from_template(template) {
            Ok(pod) => pod,
            Err(e) => {
                tracing::warn!(daemonset = %crate::state::key(ds.as_ref()), error = %e, "unreadable pod template; its overhead is not counted");
                continue;
            }
        };
        if let Ok(info) = pod_info(&pod)
            && info.tolerates(&taints, true)
        {
            total.add(&info.requests);
        }
    }
    total
}

/// The most an in-flight claim can become: the largest capacity, resource by
/// resource, of the instance types it allows (`None` when it names none the
/// catalog has).
fn largest_capacity(
    claim: &NodeClaim,
    catalog: &Catalog,
    kubelet: &crate::catalog::KubeletSettings,
) -> Option<Resources> {
    let allowed = claim
        .spec
        .template
        .requirements
        .iter()
        .find(|r| r.key == labels::INSTANCE_TYPE && r.operator == "In")?;
    let mut largest: Option<Resources> = None;
    for name in allowed.values.iter().flatten() {
        if let Some(t) = catalog.get(name) {
            let capacity = Resources::from_list(t.capacity(kubelet).iter());
            match largest.as_mut() {
                Some(l) => l.max(&capacity),
                None => largest = Some(capacity),
            }
        }
    }
    largest
}

/// Capacity a pool's NodeClaims hold, counted against its limits: launched,
/// their instance's; in flight, the largest instance they may become (what
/// they were planned for could be less than what EC2 hands out, and a
/// limit must hold whichever type it picks).
fn in_use(
    claims: &[Arc<NodeClaim>],
    pool: &str,
    catalog: &Catalog,
    kubelet: &crate::catalog::KubeletSettings,
) -> Resources {
    let mut total = Resources::default();
    for claim in claims {
        if pool_label(claim.as_ref()) != pool {
            continue;
        }
        let status = claim.status.as_ref();
        let capacity = status.and_then(|s| s.capacity.as_ref());
        let used = match capacity {
            Some(capacity) => resources_of(Some(capacity)),
            None => largest_capacity(claim, catalog, kubelet).unwrap_or_else(|| {
                resources_of(
                    claim
                        .spec
                        .resources
                        .as_ref()
                        .and_then(|r| r.requests.as_ref()),
                )
            }),
        };
        total.add(&used);
    }
    total
}

/// Whether the class a pool points at is resolved (`Ready=True`).
fn class_ready(class: &karpenter_api::v1::EC2NodeClass) -> bool {
    find_condition(
        class.status.as_ref().and_then(|s| s.conditions.as_deref()),
        "Ready",
    )
    .is_some_and(|c| c.status == "True")
}

/// The NodePools that can launch now, prepared for the engine (limits count
/// the capacity `claims` hold). Pools being deleted, or whose EC2NodeClass
/// is missing or not ready, are skipped with a log line.
pub async fn pools<C: CloudProvider>(ctx: &Context<C>, claims: &[Arc<NodeClaim>]) -> Vec<Pool> {
    let mut out = Vec::new();
    for pool in ctx.state.pools.state() {
        let name = pool.metadata.name.clone().unwrap_or_default();
        if deleting(pool.as_ref()) {
            continue;
        }
        if pool.spec.replicas.is_some() {
            tracing::debug!(nodepool = %name, "{}; pool skipped", crate::controllers::nodepool_status::STATIC_UNSUPPORTED);
            continue;
        }
        let Some(class) = ctx.state.class_of(&pool).filter(|c| class_ready(c)) else {
            tracing::debug!(nodepool = %name, "EC2NodeClass missing or not ready; pool skipped");
            continue;
        };
        let types = match ctx
            .metrics
            .cloud_call("GetInstanceTypes", ctx.cloud.instance_types(&pool, &class))
            .await
        {
            Ok(types) => types,
            Err(e) => {
                tracing::warn!(nodepool = %name, error = %e, "instance types unavailable; pool skipped");
                continue;
            }
        };
        let kubelet = ctx.kubelet(&class);
        ctx.metrics.cloud.record_instance_types(&types, &kubelet);
        let catalog = Catalog::new(types);
        let overhead = daemon_overhead(ctx, &pool);
        match Pool::new(
            &pool,
            &catalog,
            &kubelet,
            &overhead,
            &in_use(claims, &name, &catalog, &kubelet),
        ) {
            Ok(p) => out.push(p),
            Err(e) => tracing::warn!(nodepool = %name, error = %e, "NodePool skipped"),
        }
    }
    out
}

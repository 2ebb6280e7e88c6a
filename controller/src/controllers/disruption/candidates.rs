//! Which nodes may be disrupted at all, what runs on them and what they
//! cost, and per NodePool how many nodes it has and how many are already
//! being disrupted (both count against its budgets).

use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::controllers::lifecycle::is_true;
use crate::controllers::provisioning::{
    Unplaceable, is_active, is_daemon_pod, is_provisionable, pod_infos,
};
use crate::scheduling::PodInfo;
use crate::state::{CachedPod, deleting, key, label, pool_label};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use karpenter_api::labels;
use karpenter_api::v1::{NodeClaim, NodePool, nodeclaim_conditions as cond};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// An initialized node Karpenter launched that nothing protects.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its NodeClaim.
    pub claim: Arc<NodeClaim>,
    /// Its Node's name.
    pub node: String,
    /// Its NodePool.
    pub pool: String,
    /// `spot`, `on-demand` or `reserved`.
    pub capacity_type: String,
    /// What it costs per hour (0 when its offering is no longer listed).
    pub price: f64,
    /// Pods on it that a drain would move (not DaemonSet, static or finished pods).
    pub workload_pods: usize,
    /// What moving them costs: the sum of their [`eviction_cost`]s.
    pub disruption_cost: f64,
}

impl Candidate {
    /// The NodeClaim's name.
    pub fn name(&self) -> String {
        self.claim.metadata.name.clone().unwrap_or_default()
    }
}

/// A NodePool as budgets see it.
pub struct PoolNodes {
    /// The NodePool.
    pub pool: Arc<NodePool>,
    /// Its nodes (NodeClaims), those being deleted included.
    pub nodes: usize,
    /// Those being deleted or already tainted for disruption.
    pub disrupting: usize,
    /// What disrupting all its nodes would cost: 1 a node plus its pods'
    /// [`eviction_cost`]s (`Balanced`'s denominator).
    pub disruption: f64,
}

/// The cluster as disruption sees it.
pub struct Candidates {
    /// Nodes that may be disrupted.
    pub nodes: Vec<Candidate>,
    /// NodePools by name.
    pub pools: BTreeMap<String, PoolNodes>,
    /// Whether any pod waits for capacity that provisioning could place
    /// (pods it can place nowhere hold nothing back).
    pub pending_pods: bool,
}

/// Whether `karpenter.sh/do-not-disrupt` on the object blocks voluntary
/// disruption at `now`: `"true"` always; a duration (`"30m"`) until that
/// long after the object was created; any other value never (as upstream
/// ignores values other than `"true"`).
pub fn do_not_disrupt(meta: &ObjectMeta, now: Timestamp) -> bool {
    let Some(value) = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::DO_NOT_DISRUPT_ANNOTATION))
    else {
        return false;
    };
    if value == "true" {
        return true;
    }
    let (Ok(duration), Some(created)) = (
        karpenter_api::duration::parse(value),
        meta.creation_timestamp.as_ref(),
    ) else {
        return false;
    };
    let since = now.duration_since(created.0);
    since.is_negative() || since.unsigned_abs() < duration
}

/// The pod annotation that ranks pods for deletion (lower goes first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// What evicting the pod costs, for ordering candidates: 1 for a plain pod,
/// more for a higher `controller.kubernetes.io/pod-deletion-cost` (its full
/// range moves about 16 either way) or priority (1 more per 2^25, so
/// `system-cluster-critical` adds about 60), kept within 0 to 10 as
/// upstream keeps it within a range. An unreadable deletion cost counts as
/// none.
pub fn eviction_cost(pod: &CachedPod) -> f64 {
    let deletion_cost = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .map_or(0.0, f64::from);
    let priority = pod
        .spec
        .as_ref()
        .and_then(|s| s.priority)
        .map_or(0.0, f64::from);
    (1.0 + deletion_cost / 2f64.powi(27) + priority / 2f64.powi(25)).clamp(0.0, 10.0)
}

/// Pods by node: how many a drain would move, and the nodes a pod protects.
struct PodsByNode {
    workload: HashMap<String, usize>,
    cost: HashMap<String, f64>,
    protected: HashSet<String>,
    pending: bool,
}

/// A PodDisruptionBudget as disruption reads it.
pub(super) struct Budget {
    namespace: String,
    /// `None`: a null selector, which selects nothing.
    selector: Option<karpenter_api::requirements::Requirements>,
    disruptions_allowed: i32,
}

/// The cluster's PodDisruptionBudgets. An unreadable selector makes a budget
/// that blocks every pod of its namespace (the safe reading).
pub(super) async fn budgets(client: &kube::Client) -> Result<Vec<Budget>, kube::Error> {
    use k8s_openapi::api::policy::v1::PodDisruptionBudget;
    let api: kube::Api<PodDisruptionBudget> = kube::Api::all(client.clone());
    Ok(api
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .map(|pdb| {
            let selector = crate::scheduling::label_selector(
                pdb.spec.as_ref().and_then(|s| s.selector.as_ref()),
            );
            let (selector, disruptions_allowed) = match selector {
                Ok(selector) => (selector, pdb.status.map_or(0, |s| s.disruptions_allowed)),
                Err(_) => (Some(Default::default()), 0),
            };
            Budget {
                namespace: pdb.metadata.namespace.unwrap_or_default(),
                selector,
                disruptions_allowed,
            }
        })
        .collect())
}

/// Whether a PodDisruptionBudget would refuse to evict the pod now: one
/// covering it allows no disruption, or several cover it (the Eviction API
/// refuses those). Upstream does not pick such nodes; draining them stalls.
fn blocked_by_budget(pod: &CachedPod, budgets: &[Budget]) -> bool {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let covering: Vec<&Budget> = budgets
        .iter()
        .filter(|b| b.namespace == namespace)
        .filter(|b| b.selector.as_ref().is_some_and(|s| s.matches(&labels)))
        .collect();
    covering.len() > 1 || covering.iter().any(|b| b.disruptions_allowed <= 0)
}

fn pods_by_node(
    pods: &[Arc<CachedPod>],
    unplaceable: &Unplaceable,
    budgets: &[Budget],
    now: Timestamp,
) -> PodsByNode {
    let mut out = PodsByNode {
        workload: HashMap::new(),
        cost: HashMap::new(),
        protected: HashSet::new(),
        pending: false,
    };
    for pod in pods {
        if is_provisionable(pod) {
            out.pending |= !unplaceable.contains(&key(pod.as_ref()));
            continue;
        }
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
            continue;
        };
        if !is_workload(pod) {
            continue;
        }
        *out.workload.entry(node.to_string()).or_default() += 1;
        *out.cost.entry(node.to_string()).or_default() += eviction_cost(pod);
        if do_not_disrupt(&pod.metadata, now) || blocked_by_budget(pod, budgets) {
            out.protected.insert(node.to_string());
        }
    }
    out
}

/// Whether a drain would move the pod: not finished, not a DaemonSet's,
/// not a static pod's mirror.
pub(super) fn is_workload(pod: &CachedPod) -> bool {
    is_active(pod) && !is_daemon_pod(pod) && !is_mirror(pod)
}

/// The workload pods on `node`, as the scheduling engine reads them.
pub(super) fn workload<C: CloudProvider>(
    ctx: &Context<C>,
    node: &str,
) -> Result<Vec<PodInfo>, String> {
    let pods: Vec<_> = ctx
        .state
        .pods_on(node)
        .into_iter()
        .filter(|p| is_workload(p))
        .collect();
    let infos = pod_infos(ctx, &pods);
    if infos.len() != pods.len() {
        return Err("a pod on it cannot be scheduled by the engine".into());
    }
    Ok(infos)
}

/// Whether the pod is a static pod's mirror (the kubelet owns it).
fn is_mirror(pod: &CachedPod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
}

/// Whether the node is already tainted for disruption.
fn tainted_for_disruption(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == labels::DISRUPTED_TAINT_KEY))
}

/// Gathers candidates and NodePool counts from the caches, pricing each
/// candidate from its NodePool's offerings.
pub async fn gather<C: CloudProvider>(ctx: &Context<C>, now: Timestamp) -> Candidates {
    // Without the budgets, nothing can be chosen safely: no candidates this pass.
    let budgets = match budgets(&ctx.client).await {
        Ok(budgets) => budgets,
        Err(e) => {
            tracing::warn!(error = %e, "reading PodDisruptionBudgets; no voluntary disruption this pass");
            return Candidates {
                nodes: Vec::new(),
                pools: BTreeMap::new(),
                pending_pods: true,
            };
        }
    };
    let pods = pods_by_node(&ctx.state.pods.state(), &ctx.unplaceable, &budgets, now);
    let mut pools: BTreeMap<String, PoolNodes> = ctx
        .state
        .pools
        .state()
        .into_iter()
        .filter(|p| !deleting(p.as_ref()))
        .map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            let nodes = PoolNodes {
                pool: p,
                nodes: 0,
                disrupting: 0,
                disruption: 0.0,
            };
            (name, nodes)
        })
        .collect();
    let mut nodes = Vec::new();
    for claim in ctx.state.claims.state() {
        let Some(pool) = pools.get_mut(&pool_label(claim.as_ref())) else {
            continue;
        };
        pool.nodes += 1;
        let node = claim
            .status
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .and_then(|n| ctx.state.node(n));
        if let Some(name) = node.as_ref().and_then(|n| n.metadata.name.as_ref()) {
            pool.disruption +=
                super::balanced::NODE_BASE_COST + pods.cost.get(name).copied().unwrap_or(0.0);
        }
        let disrupting = deleting(claim.as_ref())
            || node
                .as_ref()
                .is_some_and(|n| deleting(n.as_ref()) || tainted_for_disruption(n));
        if disrupting {
            pool.disrupting += 1;
            continue;
        }
        let Some(node) = node else { continue };
        let node_name = node.metadata.name.clone().unwrap_or_default();
        if !is_true(&claim, cond::INITIALIZED)
            || do_not_disrupt(&claim.metadata, now)
            || do_not_disrupt(&node.metadata, now)
            || pods.protected.contains(&node_name)
        {
            continue;
        }
        nodes.push(Candidate {
            pool: pool_label(claim.as_ref()),
            capacity_type: label(claim.as_ref(), labels::CAPACITY_TYPE),
            price: 0.0,
            workload_pods: pods.workload.get(&node_name).copied().unwrap_or(0),
            disruption_cost: pods.cost.get(&node_name).copied().unwrap_or(0.0),
            node: node_name,
            claim,
        });
    }
    price(ctx, &pools, &mut nodes).await;
    Candidates {
        nodes,
        pools,
        pending_pods: pods.pending,
    }
}

/// Fills each candidate's hourly price from its NodePool's offerings (the
/// instance type, zone and capacity type it launched as).
async fn price<C: CloudProvider>(
    ctx: &Context<C>,
    pools: &BTreeMap<String, PoolNodes>,
    candidates: &mut [Candidate],
) {
    for (name, pool) in pools {
        if !candidates.iter().any(|c| &c.pool == name) {
            continue;
        }
        let Some(class) = ctx.state.class_of(&pool.pool) else {
            continue;
        };
        let types = match ctx
            .metrics
            .cloud_call(
                "GetInstanceTypes",
                ctx.cloud.instance_types(&pool.pool, &class),
            )
            .await
        {
            Ok(types) => types,
            Err(e) => {
                tracing::warn!(nodepool = %name, error = %e, "instance types unavailable; savings not priced");
                continue;
            }
        };
        for candidate in candidates.iter_mut().filter(|c| &c.pool == name) {
            let offering =
                crate::catalog::offering_of(&types, candidate.claim.metadata.labels.as_ref());
            candidate.price = offering.map(|o| o.price).unwrap_or(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(value: &str, created: &str) -> ObjectMeta {
        serde_json::from_value(json!({
            "name": "x",
            "creationTimestamp": created,
            "annotations": {"karpenter.sh/do-not-disrupt": value},
        }))
        .unwrap()
    }

    fn pod(annotations: serde_json::Value, priority: Option<i32>) -> CachedPod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "annotations": annotations},
            "spec": {"containers": [], "priority": priority},
        }))
        .unwrap()
    }

    #[test]
    fn eviction_cost_grows_with_deletion_cost_and_priority_within_bounds() {
        let plain = eviction_cost(&pod(json!({}), None));
        assert_eq!(plain, 1.0);
        let cheap = eviction_cost(&pod(json!({POD_DELETION_COST: "-2147483648"}), None));
        let dear = eviction_cost(&pod(json!({POD_DELETION_COST: "2147483647"}), None));
        assert_eq!((cheap, dear), (0.0, 10.0));
        let doubled = eviction_cost(&pod(json!({POD_DELETION_COST: "134217728"}), None));
        assert_eq!(doubled, 2.0);
        let unreadable = eviction_cost(&pod(json!({POD_DELETION_COST: "lots"}), None));
        assert_eq!(unreadable, plain);
        let critical = eviction_cost(&pod(json!({}), Some(2_000_000_000)));
        assert_eq!(critical, 10.0);
        let low = eviction_cost(&pod(json!({}), Some(-1_000)));
        assert!(low < plain && low > 0.9);
    }

    #[test]
    fn do_not_disrupt_true_or_for_a_duration_after_creation() {
        let now: Timestamp = "2026-11-23T12:00:00Z".parse().unwrap();
        assert!(do_not_disrupt(&meta("true", "2026-01-01T00:00:00Z"), now));
        assert!(do_not_disrupt(&meta("1h", "2026-11-23T11:30:00Z"), now));
        assert!(!do_not_disrupt(&meta("1h", "2026-11-23T10:59:00Z"), now));
        assert!(!do_not_disrupt(&meta("false", "2026-11-23T11:59:00Z"), now));
        assert!(!do_not_disrupt(&ObjectMeta::default(), now));
    }
}

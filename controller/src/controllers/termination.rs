//! Termination, behind the `karpenter.sh/termination` finalizer on
//! NodeClaims and Nodes. A deleted NodeClaim deletes its Node; a deleted
//! Node is tainted `karpenter.sh/disrupted:NoSchedule`, drained through the
//! Eviction API in upstream's order (non-critical pods, non-critical
//! DaemonSet pods, critical pods, critical DaemonSet pods), with budget
//! refusals (429) retried and `karpenter.sh/do-not-disrupt` pods left alone
//! until the claim's `terminationGracePeriod` forces them; then volume
//! attachments are awaited, the instance terminated and the finalizers
//! removed. Pods that tolerate the disruption taint (they would come
//! straight back) and pods terminating a minute past their deadline (their
//! kubelet is gone) are not waited for. A Node whose instance is gone, also
//! one reclaimed mid-drain, is released at once.

use crate::cloud::{CloudError, CloudProvider};
use crate::controllers::Context;
use crate::controllers::writes::remove_finalizer;
use crate::state::{CachedPod, Interest, deleting, label, pool_label};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use k8s_openapi::api::storage::v1::VolumeAttachment;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use karpenter_api::labels;
use karpenter_api::v1::NodeClaim;
use kube::Api;
use kube::api::{DeleteParams, EvictParams, ListParams, Patch, PatchParams};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a termination step failed.
#[derive(Debug, thiserror::Error)]
pub enum TerminationError {
    /// The Kubernetes API failed.
    #[error("{0}")]
    Kube(#[from] kube::Error),
    /// The cloud failed to terminate or describe the instance.
    #[error("{0}")]
    Cloud(#[from] CloudError),
}

/// Drain groups in eviction order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Workload,
    Daemon,
    CriticalWorkload,
    CriticalDaemon,
}

fn group(pod: &CachedPod) -> Group {
    let critical = matches!(
        pod.spec
            .as_ref()
            .and_then(|s| s.priority_class_name.as_deref()),
        Some("system-cluster-critical" | "system-node-critical")
    );
    let daemon = crate::controllers::provisioning::is_daemon_pod(pod);
    match (critical, daemon) {
        (false, false) => Group::Workload,
        (false, true) => Group::Daemon,
        (true, false) => Group::CriticalWorkload,
        (true, true) => Group::CriticalDaemon,
    }
}

/// How long past its deletion timestamp a terminating pod is waited for;
/// after that its kubelet is taken to be gone (upstream's rule).
const STUCK_TERMINATING_AFTER: Duration = Duration::from_secs(60);

/// Whether the pod tolerates `karpenter.sh/disrupted:NoSchedule`: it would
/// be scheduled straight back (DaemonSet pods that tolerate every taint, as
/// aws-node, kube-proxy and CSI node plugins do), so the drain leaves it.
pub(crate) fn tolerates_disruption(pod: &CachedPod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_ref())
        .into_iter()
        .flatten()
        .any(|t| {
            let key_matches = match t.key.as_deref() {
                None | Some("") => t.operator.as_deref() == Some("Exists"),
                Some(key) => {
                    key == labels::DISRUPTED_TAINT_KEY
                        && (t.operator.as_deref() == Some("Exists")
                            || t.value.as_deref().unwrap_or_default().is_empty())
                }
            };
            key_matches && matches!(t.effect.as_deref(), None | Some("") | Some("NoSchedule"))
        })
}

/// Whether the pod has been terminating for longer than any kubelet would
/// take: its node's kubelet is gone, and waiting for it would never end.
fn stuck_terminating(pod: &CachedPod, now: jiff::Timestamp) -> bool {
    pod.metadata.deletion_timestamp.as_ref().is_some_and(|at| {
        Duration::try_from(now.duration_since(at.0)).is_ok_and(|d| d > STUCK_TERMINATING_AFTER)
    })
}

/// Whether the drain must move this pod: not finished, not a static (mirror)
/// pod, not one that tolerates the disruption taint, not stuck terminating.
fn drainable(pod: &CachedPod, now: jiff::Timestamp) -> bool {
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    !mirror
        && crate::controllers::provisioning::is_active(pod)
        && !tolerates_disruption(pod)
        && !stuck_terminating(pod, now)
}

/// Whether the pod asks not to be disrupted voluntarily (now).
pub fn do_not_disrupt(pod: &CachedPod) -> bool {
    crate::controllers::disruption::do_not_disrupt(&pod.metadata, jiff::Timestamp::now())
}

/// How long an instance seen to exist is not described again while its node drains.
const INSTANCE_RECHECK: Duration = Duration::from_secs(15);

/// After a refused eviction (429: a PodDisruptionBudget), the pod is asked
/// again after 1 s, then 2 s, 4 s, ... up to this: an eviction storm must not
/// crowd out the API calls that keep the leader's Lease.
const EVICTION_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The termination controller.
pub struct Termination<C> {
    ctx: Arc<Context<C>>,
    /// Nodes (uid) whose instance was seen to exist, and when: described
    /// again after [`INSTANCE_RECHECK`], so an instance reclaimed mid-drain
    /// (a spot interruption that came true) releases its node.
    instance_seen: Mutex<HashMap<String, Instant>>,
    /// Pods (uid) whose eviction was refused: when to ask again, and how many refusals.
    eviction_backoff: Mutex<HashMap<String, (Instant, u32)>>,
    /// Nodes counted in `karpenter_nodes_drained_total` (until released).
    drained: Mutex<std::collections::HashSet<String>>,
}

impl<C: CloudProvider + 'static> Termination<C> {
    /// A termination controller over `ctx`.
    pub fn new(ctx: Arc<Context<C>>) -> Self {
        Termination {
            ctx,
            instance_seen: Mutex::new(HashMap::new()),
            eviction_backoff: Mutex::new(HashMap::new()),
            drained: Mutex::new(std::collections::HashSet::new()),
        }
    }

    /// Runs passes on every change (and each second, for retries).
    pub async fn run(self: Arc<Self>) {
        let mut changes = self.ctx.state.waiter(Interest::Everything);
        loop {
            self.pass().await;
            if !changes.wait(Duration::from_secs(1)).await {
                return;
            }
        }
    }

    /// One pass over every deleted NodeClaim and Node we hold.
    pub async fn pass(&self) {
        let state = &self.ctx.state;
        self.ctx
            .metrics
            .runtime
            .workers("nodeclaim.termination", 16);
        self.ctx.metrics.runtime.workers("node.termination", 16);
        let claims = state
            .claims
            .state_filter(|c| deleting(c) && has_finalizer(&c.metadata.finalizers));
        let nodes = state
            .nodes
            .state_filter(|n| deleting(n) && has_finalizer(&n.metadata.finalizers));
        let runtime = &self.ctx.metrics.runtime;
        let claims_queued = runtime.enqueue("nodeclaim.termination", claims.len());
        let nodes_queued = runtime.enqueue("node.termination", nodes.len());
        futures::stream::iter(claims)
            .for_each_concurrent(16, |claim| async move {
                let work = self.finalize_claim(&claim);
                let done = runtime.reconcile_queued("nodeclaim.termination", claims_queued, work);
                if let Err(e) = done.await {
                    tracing::warn!(nodeclaim = ?claim.metadata.name, error = %e, "termination");
                }
            })
            .await;
        futures::stream::iter(nodes)
            .for_each_concurrent(16, |node| async move {
                let work = self.finalize_node(&node);
                let done = runtime.reconcile_queued("node.termination", nodes_queued, work);
                if let Err(e) = done.await {
                    tracing::warn!(node = ?node.metadata.name, error = %e, "termination");
                }
            })
            .await;
    }

    async fn finalize_claim(&self, claim: &NodeClaim) -> Result<(), TerminationError> {
        let ctx = &self.ctx;
        let provider_id = claim.status.as_ref().and_then(|s| s.provider_id.clone());
        if let Some(node) = provider_id
            .as_deref()
            .and_then(|id| ctx.state.node_for_provider_id(id))
        {
            if !deleting(node.as_ref()) {
                let nodes: Api<Node> = Api::all(ctx.client.clone());
                let name = node.metadata.name.as_deref().unwrap_or_default();
                match nodes.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            // The Node's finalizer drains and terminates; come back when it is gone.
            return Ok(());
        }
        let terminating = Instant::now();
        let terminated = match provider_id {
            Some(id) => self.terminate(&id).await,
            None => self.terminate_untracked(claim).await,
        };
        if let Err(e) = terminated {
            self.ctx
                .metrics
                .cloud
                .termination_failures
                .get_or_create(&vec![
                    ("zone", label(claim, labels::ZONE)),
                    ("zone_id", label(claim, labels::ZONE_ID)),
                ])
                .inc();
            return Err(e.into());
        }
        // The cloud's termination (the call; EC2 takes the instance down after it).
        ctx.metrics
            .lifecycle
            .nodeclaims_instance_termination_duration
            .get_or_create(&vec![("nodepool", pool_label(claim))])
            .observe(terminating.elapsed().as_secs_f64());
        remove_finalizer(&ctx.client, claim, labels::TERMINATION_FINALIZER).await?;
        if let Some(since) = claim.metadata.deletion_timestamp.as_ref() {
            let took = k8s_openapi::jiff::Timestamp::now().duration_since(since.0);
            ctx.metrics
                .lifecycle
                .nodeclaims_termination_duration
                .get_or_create(&vec![("nodepool", pool_label(claim))])
                .observe(took.as_secs_f64().max(0.0));
        }
        tracing::info!(nodeclaim = ?claim.metadata.name, "terminated");
        Ok(())
    }

    /// Terminates what a claim without a provider ID may have launched.
    async fn terminate_untracked(&self, claim: &NodeClaim) -> Result<(), CloudError> {
        // Never launched as far as the status says: a launch a crashed
        // process made may still have left an instance tagged for it.
        let ctx = &self.ctx;
        let name = claim.metadata.name.as_deref().unwrap_or_default();
        for instance in ctx.metrics.cloud_call("List", ctx.cloud.list()).await? {
            if instance.tags.get(labels::NODECLAIM).map(String::as_str) == Some(name) {
                self.terminate(&instance.provider_id).await?;
            }
        }
        Ok(())
    }

    async fn terminate(&self, provider_id: &str) -> Result<(), CloudError> {
        match self
            .ctx
            .metrics
            .cloud_call("Delete", self.ctx.cloud.delete(provider_id))
            .await
        {
            Ok(()) | Err(CloudError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether the Node's instance still exists (described again every
    /// [`INSTANCE_RECHECK`]).
    async fn instance_exists(&self, node: &Node, provider_id: &str) -> Result<bool, CloudError> {
        let uid = node.metadata.uid.clone().unwrap_or_default();
        let fresh = self
            .instance_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&uid)
            .is_some_and(|seen| seen.elapsed() < INSTANCE_RECHECK);
        if fresh {
            return Ok(true);
        }
        match self
            .ctx
            .metrics
            .cloud_call("Get", self.ctx.cloud.get(provider_id))
            .await
        {
            Ok(_) => {
                self.instance_seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(uid, Instant::now());
                Ok(true)
            }
            Err(CloudError::NotFound(_)) => {
                self.instance_seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&uid);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// When the claim's node is forced empty: its termination-timestamp
    /// annotation, written first (as upstream does) from the claim's deletion
    /// and `terminationGracePeriod`, so a restart or the next leader keeps
    /// the same deadline. `None` without a grace period.
    async fn termination_deadline(
        &self,
        claim: &NodeClaim,
    ) -> Result<Option<Timestamp>, kube::Error> {
        let annotation = claim
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(labels::TERMINATION_TIMESTAMP_ANNOTATION));
        if let Some(value) = annotation {
            return Ok(match value.parse::<Timestamp>() {
                Ok(deadline) => Some(deadline),
                Err(e) => {
                    tracing::warn!(nodeclaim = ?claim.metadata.name, value = %value, error = %e,
                        "{} is not an RFC 3339 time; not forcing", labels::TERMINATION_TIMESTAMP_ANNOTATION);
                    None
                }
            });
        }
        let grace = claim
            .spec
            .template
            .termination_grace_period
            .as_deref()
            .and_then(|g| karpenter_api::duration::parse(g).ok());
        let (Some(grace), Some(deleted)) = (grace, claim.metadata.deletion_timestamp.as_ref())
        else {
            return Ok(None);
        };
        let deadline = deleted.0 + SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
        let deadline = Timestamp::from_second(deadline.as_second()).unwrap_or(deadline);
        // Conditional on the version read: a deadline another writer set wins.
        let patch = json!({"metadata": {
            "resourceVersion": claim.metadata.resource_version,
            "annotations": {labels::TERMINATION_TIMESTAMP_ANNOTATION: deadline.to_string()},
        }});
        let claims: Api<NodeClaim> = Api::all(self.ctx.client.clone());
        let name = claim.metadata.name.as_deref().unwrap_or_default();
        match claims
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                tracing::info!(nodeclaim = %name, deadline = %deadline, "termination grace period: pods are forced off at the deadline");
                Ok(Some(deadline))
            }
            // Changed meanwhile (or gone): the next pass reads it again.
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn finalize_node(&self, node: &Node) -> Result<(), TerminationError> {
        let ctx = &self.ctx;
        let name = node.metadata.name.clone().unwrap_or_default();
        let provider_id = node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default();
        let claim = ctx.state.claim_for_provider_id(&provider_id);
        if provider_id.is_empty() || !self.instance_exists(node, &provider_id).await? {
            tracing::info!(node = %name, "instance already gone; releasing the node");
            return self.release(node, claim.as_deref()).await;
        }
        self.taint(node).await?;
        let forced = match claim.as_deref() {
            Some(claim) => self
                .termination_deadline(claim)
                .await?
                .is_some_and(|deadline| Timestamp::now() >= deadline),
            None => false,
        };
        if !self.drain(&name, forced).await? {
            return Ok(());
        }
        if self
            .drained
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone())
        {
            self.ctx
                .metrics
                .lifecycle
                .nodes_drained
                .get_or_create(&vec![("nodepool", pool_label(node))])
                .inc();
        }
        if !forced && self.volumes_attached(&name).await? {
            return Ok(());
        }
        self.terminate(&provider_id).await?;
        self.release(node, claim.as_deref()).await
    }

    async fn release(
        &self,
        node: &Node,
        claim: Option<&NodeClaim>,
    ) -> Result<(), TerminationError> {
        remove_finalizer(&self.ctx.client, node, labels::TERMINATION_FINALIZER).await?;
        if let Some(name) = node.metadata.name.as_ref() {
            self.drained
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(name);
        }
        let pool = claim.map(pool_label).unwrap_or_else(|| pool_label(node));
        let metrics = &self.ctx.metrics.lifecycle;
        metrics
            .nodes_terminated
            .get_or_create(&vec![
                ("nodepool", pool.clone()),
                ("zone", label(node, labels::ZONE)),
            ])
            .inc();
        if let Some(since) = node.metadata.deletion_timestamp.as_ref() {
            let took = k8s_openapi::jiff::Timestamp::now().duration_since(since.0);
            metrics.nodes_termination_duration.observe(
                &vec![("nodepool", pool.clone())],
                took.as_secs_f64().max(0.0),
            );
        }
        if let Some(created) = node.metadata.creation_timestamp.as_ref() {
            let lived = k8s_openapi::jiff::Timestamp::now().duration_since(created.0);
            metrics
                .nodes_lifetime_duration
                .get_or_create(&vec![("nodepool", pool)])
                .observe(lived.as_secs_f64().max(0.0));
        }
        if let Some(claim) = claim
            && !deleting(claim)
        {
            // The Node went first (deleted by hand or by the instance vanishing):
            // the claim follows.
            crate::controllers::writes::delete_claim(&self.ctx, claim, "node_deleted").await?;
        }
        Ok(())
    }

    /// Adds `karpenter.sh/disrupted:NoSchedule` unless present.
    async fn taint(&self, node: &Node) -> Result<(), kube::Error> {
        let mut taints: Vec<Taint> = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        if taints.iter().any(|t| t.key == labels::DISRUPTED_TAINT_KEY) {
            return Ok(());
        }
        taints.push(Taint {
            key: labels::DISRUPTED_TAINT_KEY.into(),
            effect: "NoSchedule".into(),
            value: None,
            time_added: None,
        });
        let nodes: Api<Node> = Api::all(self.ctx.client.clone());
        let patch = json!({"metadata": {"resourceVersion": node.metadata.resource_version}, "spec": {"taints": taints, "unschedulable": true}});
        nodes
            .patch(
                node.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map(|_| ())
    }

    /// Evicts the first non-empty group; true once nothing drainable is left.
    async fn drain(&self, node: &str, forced: bool) -> Result<bool, kube::Error> {
        let now = jiff::Timestamp::now();
        let pods: Vec<Arc<CachedPod>> = self
            .ctx
            .state
            .pods_on(node)
            .into_iter()
            .filter(|p| drainable(p, now))
            .collect();
        if pods.is_empty() {
            return Ok(true);
        }
        let Some(first) = pods.iter().map(|p| group(p)).min() else {
            return Ok(true);
        };
        let waiting = self
            .eviction_backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let due = |p: &CachedPod| {
            let uid = p.metadata.uid.as_deref().unwrap_or_default();
            waiting
                .get(uid)
                .is_none_or(|(not_before, _)| Instant::now() >= *not_before)
        };
        let targets: Vec<Arc<CachedPod>> = pods
            .into_iter()
            .filter(|p| group(p) == first && !deleting(p.as_ref()))
            .filter(|p| forced || !do_not_disrupt(p))
            .filter(|p| forced || due(p))
            .collect();
        futures::stream::iter(targets)
            .for_each_concurrent(32, |pod| async move {
                self.evict(&pod, forced).await;
            })
            .await;
        Ok(false)
    }

    async fn evict(&self, pod: &CachedPod, forced: bool) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.ctx.client.clone(), namespace);
        let result = if forced {
            pods.delete(name, &DeleteParams::default())
                .await
                .map(|_| ())
        } else {
            pods.evict(name, &EvictParams::default()).await.map(|_| ())
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let refused = matches!(&result, Err(kube::Error::Api(e)) if e.code == 429);
        {
            let mut backoff = self
                .eviction_backoff
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if refused {
                let entry = backoff.entry(uid).or_insert((Instant::now(), 0));
                entry.1 += 1;
                let wait = Duration::from_secs(1 << entry.1.min(5)).min(EVICTION_BACKOFF_MAX);
                entry.0 = Instant::now() + wait / 2;
            } else {
                backoff.remove(&uid);
            }
        }
        let metrics = &self.ctx.metrics.lifecycle;
        let code = match &result {
            Ok(()) => 200,
            Err(kube::Error::Api(e)) => e.code,
            Err(e) => {
                tracing::warn!(pod = %format!("{namespace}/{name}"), error = %e, "eviction failed");
                0
            }
        };
        if !forced {
            // Upstream counts eviction calls by their HTTP status (0: no answer).
            metrics
                .pods_eviction_requests
                .get_or_create(&vec![("code", code.to_string())])
                .inc();
        }
        if result.is_ok() {
            let reason = if forced { "forced" } else { "evicted" };
            metrics
                .pods_drained
                .get_or_create(&vec![("reason", reason.to_string())])
                .inc();
        }
    }

    /// Whether volumes are still attached to the node.
    async fn volumes_attached(&self, node: &str) -> Result<bool, kube::Error> {
        let api: Api<VolumeAttachment> = Api::all(self.ctx.client.clone());
        let list = api.list(&ListParams::default()).await?;
        Ok(list.items.iter().any(|va| va.spec.node_name == node))
    }
}

fn has_finalizer(finalizers: &Option<Vec<String>>) -> bool {
    finalizers
        .iter()
        .flatten()
        .any(|f| f == labels::TERMINATION_FINALIZER)
}

//! Provisioning: pending pods are batched (a window that closes after
//! `BATCH_IDLE_DURATION` without a new pod, or `BATCH_MAX_DURATION` at most),
//! solved with the scheduling engine against existing and in-flight capacity
//! and every NodePool (weights, limits, DaemonSet overhead), and the new
//! NodeClaims created. Pods get a `Nominated` event naming the node or claim
//! planned for them.
//!
//! Capacity in flight is never booked twice: NodeClaims without a Node take
//! part in every solve as nodes with the room their smallest instance-type
//! option has, and so do the claims this provisioner created that the cache
//! has not shown yet (under load the NodeClaim watch can lag by seconds).

mod decisions;
mod inputs;
mod nodeclaim;
mod unplaceable;

pub use decisions::{PodDecision, PodDecisions};
pub use inputs::pools;
pub use inputs::{
    existing_nodes, is_active, is_daemon_pod, is_provisionable, pod_infos, resources_of,
};
pub use nodeclaim::{build as build_nodeclaim, create as create_nodeclaim, resource_list};
pub use unplaceable::Unplaceable;

use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::scheduling::{Solution, solve};
use crate::state::{CachedPod, Interest, key};
use futures::StreamExt;
use karpenter_api::v1::NodeClaim;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the batcher looks again without a change (claims that failed to
/// launch free their pods for another batch).
const RECHECK: Duration = Duration::from_secs(2);

/// The shortest nomination window (upstream's: twice the batch's longest
/// duration, at least 10 s).
const NOMINATION_WINDOW_MIN: Duration = Duration::from_secs(10);

/// How long a created NodeClaim counts as in flight without the cache
/// showing it (it may have been created and deleted before the watch saw it).
const UNSEEN_FOR_AT_MOST: Duration = Duration::from_secs(60);

/// What one batch did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Pods considered.
    pub pods: usize,
    /// NodeClaims created (names).
    pub created: Vec<String>,
    /// Pods planned onto existing or in-flight capacity.
    pub nominated: usize,
    /// Pods no NodePool can take.
    pub unschedulable: usize,
    /// Time spent in the scheduling engine.
    pub solve_time: Duration,
}

/// The provisioner and what it remembers between batches.
pub struct Provisioner<C> {
    ctx: Arc<Context<C>>,
    /// Pod key -> the node or NodeClaim the last batch planned it onto (or
    /// why it could not), and when.
    nominations: Mutex<HashMap<String, (String, Instant)>>,
    /// NodeClaims created here that the cache has not shown yet, and when.
    unseen: Mutex<Vec<(Arc<NodeClaim>, Instant)>>,
}

impl<C: CloudProvider + 'static> Provisioner<C> {
    /// A provisioner over `ctx`.
    pub fn new(ctx: Arc<Context<C>>) -> Self {
        Provisioner {
            ctx,
            nominations: Mutex::new(HashMap::new()),
            unseen: Mutex::new(Vec::new()),
        }
    }

    /// Forgets the created claims the cache now shows (from then on it is
    /// the truth, deletions included). Runs on every wake-up, so a claim is
    /// dropped here long before it could be deleted.
    fn prune_unseen(&self) -> std::sync::MutexGuard<'_, Vec<(Arc<NodeClaim>, Instant)>> {
        let mut unseen = self.unseen.lock().unwrap_or_else(|p| p.into_inner());
        unseen.retain(|(claim, at)| {
            at.elapsed() < UNSEEN_FOR_AT_MOST
                && self
                    .ctx
                    .state
                    .claim(claim.metadata.name.as_deref().unwrap_or_default())
                    .is_none()
        });
        unseen
    }

    /// Every NodeClaim: the cache's, and the ones created here it has not
    /// shown yet.
    fn claims(&self) -> Vec<Arc<NodeClaim>> {
        let mut claims = self.ctx.state.claims.state();
        claims.extend(self.prune_unseen().iter().map(|(claim, _)| claim.clone()));
        claims
    }

    /// Whether a node or NodeClaim of this name exists (or was just created).
    fn exists(&self, name: &str, unseen: &[(Arc<NodeClaim>, Instant)]) -> bool {
        let state = &self.ctx.state;
        state.claim(name).is_some()
            || state.node(name).is_some()
            || unseen
                .iter()
                .any(|(claim, _)| claim.metadata.name.as_deref() == Some(name))
    }

    fn nominations(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.nominations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Provisionable pods the last batch did not place, placed on something
    /// that has gone since, or nominated longer ago than the nomination
    /// window (the scheduler may have given their room to another pod; a new
    /// batch counts in-flight claims, so it never books them twice).
    fn waiting(&self) -> usize {
        let state = &self.ctx.state;
        let window = (self.ctx.settings.batch_max_duration * 2).max(NOMINATION_WINDOW_MIN);
        let unseen = self.prune_unseen();
        let nominations = self.nominations();
        state
            .pods
            .state()
            .iter()
            .filter(|p| is_provisionable(p))
            .chain(inputs::reschedulable(&self.ctx).iter())
            .filter(|p| match nominations.get(&key(p.as_ref())) {
                None => true,
                Some((target, at)) => at.elapsed() > window || !self.exists(target, &unseen),
            })
            .count()
    }

    /// Runs batches until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        let settings = &self.ctx.settings;
        let mut waiter = self.ctx.state.waiter(Interest::Everything);
        let mut changes = self.ctx.state.subscribe();
        // The counts of the last batch that created and nominated nothing.
        let mut last_idle: Option<(usize, usize)> = None;
        loop {
            // Wait for a pod that needs capacity.
            while self.waiting() == 0 {
                if !waiter.wait(RECHECK).await {
                    return;
                }
            }
            // The batch window.
            let opened = tokio::time::Instant::now();
            let closes = opened + settings.batch_max_duration;
            let mut idle_until = opened + settings.batch_idle_duration;
            let mut seen = changes.borrow_and_update().pods;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(idle_until.min(closes)) => break,
                    changed = changes.changed() => {
                        if changed.is_err() { return }
                        let now = changes.borrow_and_update().pods;
                        if now != seen {
                            seen = now;
                            idle_until = tokio::time::Instant::now() + settings.batch_idle_duration;
                        }
                    }
                }
            }
            let runtime = &self.ctx.metrics.runtime;
            runtime.workers("provisioner", 1);
            match runtime.reconcile("provisioner", self.provision()).await {
                Ok(outcome) if outcome.pods > 0 => {
                    // A batch that changes nothing (pods no NodePool can
                    // place, retried every batch) is logged once per change
                    // of its counts, not every second.
                    let idle = outcome.created.is_empty() && outcome.nominated == 0;
                    let counts = (outcome.pods, outcome.unschedulable);
                    if !idle || last_idle != Some(counts) {
                        tracing::info!(
                            pods = outcome.pods,
                            nodeclaims = outcome.created.len(),
                            nominated = outcome.nominated,
                            unschedulable = outcome.unschedulable,
                            solve_ms = outcome.solve_time.as_millis() as u64,
                            "batch provisioned"
                        );
                    }
                    last_idle = idle.then_some(counts);
                }
                Ok(_) => last_idle = None,
                Err(e) => tracing::error!(error = %e, "provisioning failed; retrying"),
            }
        }
    }

    /// One batch: solve every provisionable pod and create the NodeClaims.
    pub async fn provision(&self) -> Result<Outcome, kube::Error> {
        let ctx = &self.ctx;
        let pending: Vec<_> = ctx
            .state
            .pods
            .state()
            .into_iter()
            .filter(|p| is_provisionable(p))
            .collect();
        let leaving = inputs::reschedulable(ctx);
        if pending.is_empty() && leaving.is_empty() {
            return Ok(Outcome::default());
        }
        let seen_at = k8s_openapi::jiff::Timestamp::now();
        ctx.decisions.seen(
            pending.iter().map(|p| crate::state::key(p.as_ref())),
            seen_at,
        );
        let pending: Vec<_> = pending.into_iter().chain(leaving).collect();
        let pods = inputs::pod_infos(ctx, &pending);
        let claims = self.claims();
        let pools = inputs::pools(ctx, &claims).await;
        let nodes = inputs::existing_nodes(ctx, &pools, &claims);
        let metrics = &ctx.metrics.scheduling;
        let controller = || {
            vec![(
                "controller",
                crate::metrics::scheduling::PROVISIONER.to_string(),
            )]
        };
        let round = {
            let mut labels = controller();
            static ROUND: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let id = ROUND.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            labels.push(("scheduling_id", id.to_string()));
            labels
        };
        metrics
            .queue_depth
            .get_or_create(&round)
            .set(pods.len() as i64);
        metrics
            .ignored_pods
            .get_or_create(&Vec::new())
            .set(i64::try_from(pending.len().saturating_sub(pods.len())).unwrap_or(i64::MAX));
        let started = Instant::now();
        let solution = solve(&pods, nodes, pools);
        let solve_time = started.elapsed();
        metrics.queue_depth.remove(&round);
        metrics
            .duration
            .get_or_create(&controller())
            .observe(solve_time.as_secs_f64());
        metrics
            .unschedulable_pods
            .get_or_create(&controller())
            .set(i64::try_from(solution.unschedulable.len()).unwrap_or(i64::MAX));
        ctx.unplaceable
            .set(solution.unschedulable.iter().map(|(pod, _)| pod.clone()));
        let created = self.create_claims(&solution).await?;
        self.record(&pending, &solution, &created);
        self.time_decisions(&solution, &created);
        Ok(Outcome {
            pods: pods.len(),
            nominated: solution.nominations.len(),
            unschedulable: solution.unschedulable.len(),
            created: created.into_iter().map(|(name, _)| name).collect(),
            solve_time,
        })
    }

    /// Creates the planned NodeClaims (concurrently) and counts them in
    /// flight until the cache has them. Returns (name, index into
    /// `solution.claims`).
    async fn create_claims(
        &self,
        solution: &Solution,
    ) -> Result<Vec<(String, usize)>, kube::Error> {
        let results: Vec<_> = futures::stream::iter(solution.claims.iter().cloned().enumerate())
            .map(|(i, planned)| {
                let ctx = self.ctx.clone();
                async move { (i, nodeclaim::create(&ctx, &planned, "provisioned").await) }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        let mut created = Vec::new();
        let mut first_error = None;
        for (i, result) in results {
            match result {
                Ok(None) => {}
                Ok(Some(claim)) => {
                    let name = claim.metadata.name.clone().unwrap_or_default();
                    created.push((name, i));
                    self.unseen
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((Arc::new(claim), Instant::now()));
                }
                Err(e) => {
                    tracing::error!(nodepool = %solution.claims[i].pool, error = %e, "creating NodeClaim failed");
                    first_error.get_or_insert(e);
                }
            }
        }
        match (created.is_empty(), first_error) {
            (true, Some(e)) => Err(e),
            _ => Ok(created),
        }
    }

    /// Records the round's decisions and observes how long each pod
    /// decided for the first time waited for one.
    fn time_decisions(&self, solution: &Solution, created: &[(String, usize)]) {
        let mut placed: std::collections::HashSet<String> = solution
            .nominations
            .iter()
            .map(|(pod, _)| pod.clone())
            .collect();
        for (_, i) in created {
            placed.extend(solution.claims[*i].pods.iter().cloned());
        }
        let unplaced = solution.unschedulable.iter().map(|(pod, _)| pod.clone());
        let decided: Vec<String> = placed.iter().cloned().chain(unplaced).collect();
        let waits =
            self.ctx
                .decisions
                .decided(decided, &placed, k8s_openapi::jiff::Timestamp::now());
        let histogram = self
            .ctx
            .metrics
            .scheduling
            .decision_duration
            .get_or_create(&Vec::new())
            .clone();
        for wait in waits {
            histogram.observe(wait);
        }
    }

    /// Remembers where each pod was planned and tells the pod (`Nominated`),
    /// or why it cannot be placed (`FailedScheduling`), once per change.
    fn record(&self, pending: &[Arc<CachedPod>], solution: &Solution, created: &[(String, usize)]) {
        let by_key: HashMap<String, &Arc<CachedPod>> =
            pending.iter().map(|p| (key(p.as_ref()), p)).collect();
        let mut targets: Vec<(String, String, String)> = Vec::new();
        for (pod, node) in &solution.nominations {
            let kind = if self.ctx.state.node(node).is_some() {
                "node"
            } else {
                "nodeclaim"
            };
            targets.push((pod.clone(), node.clone(), kind.into()));
        }
        for (name, i) in created {
            for pod in &solution.claims[*i].pods {
                targets.push((pod.clone(), name.clone(), "nodeclaim".into()));
            }
        }
        let mut nominations = self.nominations();
        nominations.retain(|k, _| by_key.contains_key(k));
        let now = Instant::now();
        for (pod, target, kind) in targets {
            if let Some(known) = nominations.get_mut(&pod).filter(|(t, _)| *t == target) {
                known.1 = now;
                continue;
            }
            if let Some(object) = by_key.get(&pod) {
                self.ctx.event(
                    object.as_ref(),
                    false,
                    "Nominated",
                    format!("Pod should schedule on: {kind}/{target}"),
                );
            }
            nominations.insert(pod, (target, now));
        }
        for (pod, why) in &solution.unschedulable {
            let reason = format!("unschedulable: {why}");
            if let Some(known) = nominations.get_mut(pod).filter(|(r, _)| *r == reason) {
                known.1 = now;
                continue;
            }
            if let Some(object) = by_key.get(pod) {
                self.ctx.event(
                    object.as_ref(),
                    true,
                    "FailedScheduling",
                    format!("Failed to schedule pod, {why}"),
                );
            }
            nominations.insert(pod.clone(), (reason, now));
        }
    }
}

//! Disruption: nodes that are no longer needed are removed, within each
//! NodePool's budgets, without touching what asks not to be disrupted.
//!
//! Every [`Settings::disruption_poll_interval`](crate::settings::Settings)
//! the controller looks at every initialized node Karpenter launched:
//!
//! - `candidates`: which nodes may be disrupted at all (not being deleted,
//!   no `karpenter.sh/do-not-disrupt` on the node, its NodeClaim or a pod on
//!   it), and what runs on them.
//! - `emptiness`: nodes without workload pods (DaemonSet and static pods do
//!   not count) for the NodePool's `consolidateAfter`.
//! - `consolidation`: under-used nodes, cheapest to disrupt per dollar
//!   first (under `Balanced`, only moves worth their disruption: [`balanced`]); `command` decides whether several of them (multi-node) or one
//!   (single-node) can go, deleted when their pods fit on the other nodes,
//!   else replaced by one cheaper node; `world` is the cluster those
//!   decisions are simulated against (validated again before acting).
//! - `drift`: NodeClaims that no longer match their NodePool or
//!   EC2NodeClass get `Drifted` and are replaced (`replace`: the new nodes
//!   are Initialized before the old one is touched), one at a time.
//! - [`budgets`]: how many of a NodePool's nodes may be disrupted at once.
//! - `expiration`: NodeClaims older than their `expireAfter` (forceful: no
//!   budget or `do-not-disrupt` holds it back, as upstream).
//!
//! A chosen node's NodeClaim is deleted; the termination controller then
//! taints, drains (PDBs honoured) and terminates it. Each decision is logged
//! and recorded as an event on the NodeClaim and the Node, with its reason
//! and the hourly saving.

pub mod balanced;
pub mod budgets;
mod candidates;
pub mod command;
mod consolidation;
mod drift;
mod emptiness;
mod expiration;
mod replace;
pub mod world;

pub use budgets::Reason;

/// Why a disruption is not taken (no room for the pods, not cheaper, a
/// budget or balance refusal): an answer to a question, not a failure, and
/// asked again on the next pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

impl From<String> for Refusal {
    fn from(reason: String) -> Self {
        Refusal(reason)
    }
}

impl From<&str> for Refusal {
    fn from(reason: &str) -> Self {
        Refusal(reason.to_string())
    }
}

impl From<Refusal> for String {
    fn from(refusal: Refusal) -> Self {
        refusal.0
    }
}
pub use candidates::{do_not_disrupt, eviction_cost};

use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::controllers::writes::delete_claim;
use candidates::Candidate;
use expiration::expired;
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A node the controller decided to disrupt.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The NodeClaim deleted.
    pub claim: String,
    /// Its Node.
    pub node: String,
    /// Its NodePool.
    pub pool: String,
    /// Why, as metrics label it (`empty`, `expired`).
    pub reason: String,
    /// What the node cost per hour (the saving, as nothing replaces it;
    /// 0 for expiration, whose pods are provisioned anew).
    pub saving_per_hour: f64,
}

/// The disruption controller.
pub struct Disruption<C> {
    ctx: Arc<Context<C>>,
    /// NodeClaim name -> when it was first seen without workload pods.
    empty_since: Mutex<HashMap<String, Instant>>,
    /// A consolidation decision waiting for validation: its NodeClaims and
    /// when it was made.
    validating: Mutex<Option<(Vec<String>, Instant)>>,
    /// When this controller started (the last pod event of nodes none was
    /// seen for).
    started: Instant,
    /// Cloud drift answers, asked at most once a minute per claim.
    drift: drift::CloudDrift,
    /// The nodes being replaced, if any.
    replacing: Mutex<Option<replace::Replacement>>,
    /// Where the next pass starts looking among consolidation candidates.
    next_look: AtomicUsize,
    /// The cluster as it was when consolidation last found nothing.
    quiet: Mutex<Option<consolidation::Quiet>>,
}

impl<C: CloudProvider + 'static> Disruption<C> {
    /// A disruption controller over `ctx`.
    pub fn new(ctx: Arc<Context<C>>) -> Self {
        Disruption {
            ctx,
            empty_since: Mutex::new(HashMap::new()),
            validating: Mutex::new(None),
            started: Instant::now(),
            drift: drift::CloudDrift::default(),
            replacing: Mutex::new(None),
            next_look: AtomicUsize::new(0),
            quiet: Mutex::new(None),
        }
    }

    /// Runs a pass every poll interval.
    pub async fn run(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.ctx.settings.disruption_poll_interval).await;
            let began = Instant::now();
            let runtime = &self.ctx.metrics.runtime;
            runtime.workers("disruption", 1);
            let pass = async { Ok::<_, std::convert::Infallible>(self.pass().await) };
            let _ = runtime.reconcile("disruption", pass).await;
            self.ctx
                .metrics
                .disruption
                .evaluation_duration
                .get_or_create(&vec![
                    ("reason", "all".to_string()),
                    ("consolidation_type", String::new()),
                ])
                .observe(began.elapsed().as_secs_f64());
        }
    }

    /// One pass: finds what may go and deletes it; returns the decisions
    /// acted on.
    pub async fn pass(&self) -> Vec<Decision> {
        let ctx = &self.ctx;
        let mut decisions = self.expire().await;
        let drifted = self.drift.mark(ctx).await;
        let candidates = candidates::gather(ctx, Timestamp::now()).await;
        ctx.state
            .activity
            .retain(|node| ctx.state.node(node).is_some());
        let mut empty = {
            let mut since = self.empty_since.lock().expect("empty_since");
            emptiness::eligible(ctx, &candidates.nodes, &mut since, Instant::now())
        };
        ctx.metrics
            .disruption
            .eligible_nodes
            .get_or_create(&vec![("reason", Reason::Empty.as_str().to_lowercase())])
            .set(empty.len() as i64);
        // A replacement under way finishes (or is given up) whatever else
        // happens: its new nodes are already paid for.
        let replacing = self.replacing.lock().expect("replacing").clone();
        if let Some(replacement) = replacing {
            decisions.extend(self.advance(&candidates, replacement).await);
            return decisions;
        }
        if candidates.pending_pods {
            // Pending pods may be about to land on an empty node; removing
            // it now would only launch its replacement.
            return decisions;
        }
        empty.sort_by(|a, b| b.price.total_cmp(&a.price));
        let chosen = self.within_budgets(&candidates, empty, Reason::Empty);
        for candidate in chosen {
            if let Some(decision) = self.remove_empty(candidate).await {
                decisions.push(decision);
            }
        }
        if !drifted.is_empty() {
            self.replace_drifted(&candidates, &drifted).await;
        } else if decisions.is_empty() {
            decisions.extend(self.consolidate(&candidates).await);
        }
        decisions
    }

    /// Deletes every NodeClaim past its `expireAfter`.
    async fn expire(&self) -> Vec<Decision> {
        let ctx = &self.ctx;
        let mut decisions = Vec::new();
        for (claim, age) in expired(ctx, Timestamp::now()) {
            let expire_after = claim.spec.template.expire_after.clone().unwrap_or_default();
            let note = format!(
                "Expired: {:.0?} old, expireAfter {expire_after}; deleting (its pods are provisioned anew)",
                age
            );
            let target = Target {
                claim: &claim,
                node: claim
                    .status
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default(),
                pool: crate::state::pool_label(claim.as_ref()),
                capacity_type: crate::state::label(
                    claim.as_ref(),
                    karpenter_api::labels::CAPACITY_TYPE,
                ),
                price: 0.0,
            };
            if let Some(decision) = self.disrupt(target, "expired", note).await {
                decisions.push(decision);
            }
        }
        decisions
    }

    /// The candidates each NodePool's budget for `reason` lets go now, in
    /// the order given. A NodePool with an unreadable budget lets none go.
    fn within_budgets<'a>(
        &self,
        candidates: &candidates::Candidates,
        eligible: Vec<&'a Candidate>,
        reason: Reason,
    ) -> Vec<&'a Candidate> {
        let now = Timestamp::now();
        let mut room: HashMap<&str, usize> = HashMap::new();
        for (name, pool) in &candidates.pools {
            let allowed = match budgets::allowed(&pool.pool, reason, pool.nodes, now) {
                Ok(allowed) => allowed,
                Err(e) => {
                    tracing::warn!(nodepool = %name, error = %e, "disruption blocked by an invalid budget");
                    0
                }
            };
            let left = allowed.saturating_sub(pool.disrupting);
            self.ctx
                .metrics
                .disruption
                .allowed_disruptions
                .get_or_create(&vec![
                    ("nodepool", name.clone()),
                    ("reason", reason.as_str().to_lowercase()),
                ])
                .set(i64::try_from(left).unwrap_or(i64::MAX));
            self.ctx
                .metrics
                .disruption
                .nodes_consuming_budgets
                .get_or_create(&vec![
                    ("nodepool", name.clone()),
                    ("reason", reason.as_str().to_lowercase()),
                ])
                .set(i64::try_from(pool.disrupting).unwrap_or(i64::MAX));
            room.insert(name, left);
        }
        eligible
            .into_iter()
            .filter(|c| match room.get_mut(c.pool.as_str()) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    true
                }
                _ => false,
            })
            .collect()
    }

    /// Deletes an empty candidate's NodeClaim after checking, against the
    /// cache as it is now, that it still qualifies.
    async fn remove_empty(&self, candidate: &Candidate) -> Option<Decision> {
        let ctx = &self.ctx;
        let claim = ctx.state.claim(&candidate.name())?;
        if crate::state::deleting(claim.as_ref()) || !emptiness::still_empty(ctx, &candidate.node) {
            return None;
        }
        let note = format!(
            "Empty: no workload pods for the NodePool's consolidateAfter; deleting, saving ${:.4}/h",
            candidate.price
        );
        let decision = self
            .disrupt(Target::of(candidate, &claim), "empty", note)
            .await?;
        self.decided(std::slice::from_ref(&decision), "delete", "empty", "");
        Some(decision)
    }

    /// Counts a voluntary decision carried out on `decisions` (one per
    /// command however many nodes it takes away, and one per NodePool it
    /// touches; expiration is forceful and not counted here).
    fn decided(
        &self,
        decisions: &[Decision],
        decision: &str,
        reason: &str,
        consolidation_type: &str,
    ) {
        if decisions.is_empty() {
            return;
        }
        let disruption = &self.ctx.metrics.disruption;
        let pools: std::collections::BTreeSet<&str> =
            decisions.iter().map(|d| d.pool.as_str()).collect();
        for pool in pools {
            disruption
                .decisions_by_nodepool
                .get_or_create(&vec![
                    ("nodepool", pool.to_string()),
                    ("decision", decision.to_string()),
                    ("reason", reason.to_string()),
                    ("consolidation_type", consolidation_type.to_string()),
                ])
                .inc();
        }
        disruption
            .decisions
            .get_or_create(&vec![
                ("decision", decision.to_string()),
                ("reason", reason.to_string()),
                ("consolidation_type", consolidation_type.to_string()),
            ])
            .inc();
    }

    /// Deletes the target's NodeClaim (termination drains it), explaining
    /// why in a log line and an event on the NodeClaim and the Node, and
    /// counts the node disrupted and its saving.
    async fn disrupt(&self, target: Target<'_>, reason: &str, note: String) -> Option<Decision> {
        let ctx = &self.ctx;
        let name = target.claim.metadata.name.clone().unwrap_or_default();
        if let Err(e) = delete_claim(ctx, target.claim, reason).await {
            tracing::warn!(nodeclaim = %name, error = %e, "could not delete a node chosen for disruption");
            return None;
        }
        tracing::info!(
            nodeclaim = %name,
            node = %target.node,
            nodepool = %target.pool,
            reason,
            saving_per_hour = target.price,
            "disrupting node: {note}"
        );
        ctx.event(target.claim, false, "DisruptionTerminating", note.clone());
        if let Some(node) = ctx.state.node(&target.node) {
            ctx.event(node.as_ref(), false, "DisruptionTerminating", note);
        }
        let metrics = &ctx.metrics;
        metrics
            .lifecycle
            .nodeclaims_disrupted
            .get_or_create(&vec![
                ("reason", reason.to_string()),
                ("nodepool", target.pool.clone()),
                ("capacity_type", target.capacity_type),
            ])
            .inc();
        metrics
            .disruption
            .savings
            .get_or_create(&vec![("nodepool", target.pool.clone())])
            .inc_by(target.price);
        Some(Decision {
            claim: name,
            node: target.node,
            pool: target.pool,
            reason: reason.to_string(),
            saving_per_hour: target.price,
        })
    }
}

/// A node to disrupt.
struct Target<'a> {
    claim: &'a karpenter_api::v1::NodeClaim,
    node: String,
    pool: String,
    capacity_type: String,
    price: f64,
}

impl<'a> Target<'a> {
    /// The candidate as a target, with its NodeClaim as the cache has it now.
    fn of(candidate: &Candidate, claim: &'a karpenter_api::v1::NodeClaim) -> Self {
        Target {
            claim,
            node: candidate.node.clone(),
            pool: candidate.pool.clone(),
            capacity_type: candidate.capacity_type.clone(),
            price: candidate.price,
        }
    }
}

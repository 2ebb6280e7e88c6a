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
//! - [`budgets`]: how many of a NodePool's nodes may be disrupted at once.
//!
//! A chosen node's NodeClaim is deleted; the termination controller then
//! taints, drains (PDBs honoured) and terminates it. Each decision is logged
//! and recorded as an event on the NodeClaim and the Node, with its reason
//! and the hourly saving.
//!
//! Not yet here (see issue #9): consolidation of under-used nodes, drift and
//! expiration replacements.

pub mod budgets;
mod candidates;
mod emptiness;

pub use budgets::Reason;
pub use candidates::do_not_disrupt;

use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::controllers::writes::delete_claim;
use candidates::Candidate;
use jiff::Timestamp;
use std::collections::HashMap;
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
    /// Why.
    pub reason: Reason,
    /// What the node cost per hour (the saving, as nothing replaces it).
    pub saving_per_hour: f64,
}

/// The disruption controller.
pub struct Disruption<C> {
    ctx: Arc<Context<C>>,
    /// NodeClaim name -> when it was first seen without workload pods.
    empty_since: Mutex<HashMap<String, Instant>>,
}

impl<C: CloudProvider + 'static> Disruption<C> {
    /// A disruption controller over `ctx`.
    pub fn new(ctx: Arc<Context<C>>) -> Self {
        Disruption {
            ctx,
            empty_since: Mutex::new(HashMap::new()),
        }
    }

    /// Runs a pass every poll interval.
    pub async fn run(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.ctx.settings.disruption_poll_interval).await;
            self.pass().await;
        }
    }

    /// One pass: finds what may go and deletes it; returns the decisions
    /// acted on.
    pub async fn pass(&self) -> Vec<Decision> {
        let ctx = &self.ctx;
        let candidates = candidates::gather(ctx, Timestamp::now()).await;
        ctx.state
            .activity
            .retain(|node| ctx.state.node(node).is_some());
        let empty = {
            let mut since = self.empty_since.lock().expect("empty_since");
            emptiness::eligible(ctx, &candidates.nodes, &mut since, Instant::now())
        };
        ctx.metrics
            .disruption_eligible_nodes
            .get_or_create(&vec![("reason", Reason::Empty.as_str().to_lowercase())])
            .set(empty.len() as i64);
        if candidates.pending_pods {
            // Pending pods may be about to land on an empty node; removing
            // it now would only launch its replacement.
            return Vec::new();
        }
        let chosen = self.within_budgets(&candidates, empty, Reason::Empty);
        let mut decisions = Vec::new();
        for candidate in chosen {
            if let Some(decision) = self.act(candidate, Reason::Empty).await {
                decisions.push(decision);
            }
        }
        decisions
    }

    /// The candidates each NodePool's budget for `reason` lets go now, most
    /// expensive first. A NodePool with an unreadable budget lets none go.
    fn within_budgets<'a>(
        &self,
        candidates: &candidates::Candidates,
        mut eligible: Vec<&'a Candidate>,
        reason: Reason,
    ) -> Vec<&'a Candidate> {
        eligible.sort_by(|a, b| b.price.total_cmp(&a.price));
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
                .allowed_disruptions
                .get_or_create(&vec![
                    ("nodepool", name.clone()),
                    ("reason", reason.as_str().to_lowercase()),
                ])
                .set(i64::try_from(left).unwrap_or(i64::MAX));
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

    /// Deletes the candidate's NodeClaim after checking, against the cache
    /// as it is now, that it still qualifies.
    async fn act(&self, candidate: &Candidate, reason: Reason) -> Option<Decision> {
        let ctx = &self.ctx;
        let claim = ctx.state.claim(&candidate.claim.metadata.name.clone()?)?;
        if crate::state::deleting(claim.as_ref()) || !emptiness::still_empty(ctx, &candidate.node) {
            return None;
        }
        let reason_label = reason.as_str().to_lowercase();
        let note = format!(
            "{reason}: no workload pods for the NodePool's consolidateAfter; deleting, saving ${:.4}/h",
            candidate.price
        );
        if let Err(e) = delete_claim(ctx, &claim, &reason_label).await {
            tracing::warn!(nodeclaim = %candidate.name(), error = %e, "could not delete a node chosen for disruption");
            return None;
        }
        tracing::info!(
            nodeclaim = %candidate.name(),
            node = %candidate.node,
            nodepool = %candidate.pool,
            reason = %reason,
            saving_per_hour = candidate.price,
            "disrupting node"
        );
        ctx.event(claim.as_ref(), false, "DisruptionTerminating", note.clone());
        if let Some(node) = ctx.state.node(&candidate.node) {
            ctx.event(node.as_ref(), false, "DisruptionTerminating", note);
        }
        let metrics = &ctx.metrics;
        metrics
            .disruption_decisions
            .get_or_create(&vec![
                ("decision", "delete".to_string()),
                ("reason", reason_label.clone()),
                ("consolidation_type", String::new()),
            ])
            .inc();
        metrics
            .nodeclaims_disrupted
            .get_or_create(&vec![
                ("reason", reason_label),
                ("nodepool", candidate.pool.clone()),
                ("capacity_type", candidate.capacity_type.clone()),
            ])
            .inc();
        metrics
            .disruption_savings
            .get_or_create(&vec![("nodepool", candidate.pool.clone())])
            .inc_by(candidate.price);
        Some(Decision {
            claim: candidate.name(),
            node: candidate.node.clone(),
            pool: candidate.pool.clone(),
            reason,
            saving_per_hour: candidate.price,
        })
    }
}

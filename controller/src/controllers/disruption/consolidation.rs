//! Consolidation under `WhenEmptyOrUnderutilized`: which nodes are
//! candidates and in what order. The decisions themselves are worked out
//! in [`command`](super::command).
//!
//! A node is a candidate once its pods have not changed for the NodePool's
//! `consolidateAfter` (timed from its last pod event, as emptiness).
//! Candidates are ordered by the disruption moving their pods causes
//! (each pod counts 1, more with a higher `controller.kubernetes.io/pod-deletion-cost`
//! or priority) per dollar their node costs an hour: cheap to disrupt and
//! expensive to keep goes first. A decision is validated again after
//! [`validation_delay`] against the cluster as it is then, and dropped if
//! anything changed its answer.

use super::balanced::{Balanced, NODE_BASE_COST, PoolTotals};
use super::candidates::{Candidate, Candidates, workload};
use super::command::{self, Action, Command, MULTI_NODE_MAX, Movable, Rules};
use super::replace::Why;
use super::world::World;
use super::{Decision, Disruption, Reason, Target};
use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::state::Changes;
use karpenter_api::labels::CAPACITY_TYPE_SPOT;
use karpenter_api::v1::{CONSOLIDATION_BALANCED, CONSOLIDATION_WHEN_EMPTY};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Candidates one single-node look covers (each is a solve against every
/// node); the next pass goes on from there.
pub const CANDIDATES_PER_PASS: usize = 16;

/// How long a decision waits before it is validated and acted on: one and a
/// half poll intervals (upstream's 15 s at the default 10 s).
pub fn validation_delay(poll: Duration) -> Duration {
    poll * 3 / 2
}

/// The cluster as it was when a look found nothing to consolidate: if
/// nothing has changed since and every candidate has been looked at, the
/// answer would be the same (each look solves against every node, so a
/// still cluster is not looked at again and again).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Quiet {
    changes: Changes,
    eligible: usize,
    /// Fruitless looks in a row at this same cluster.
    looks: usize,
}

impl Quiet {
    /// Whether a look at this cluster would find nothing again.
    fn settled(&self, changes: Changes, eligible: usize) -> bool {
        self.changes == changes
            && self.eligible == eligible
            && self.looks * CANDIDATES_PER_PASS >= eligible
    }

    /// One more fruitless look, at `changes` with `eligible` candidates.
    fn after(last: Option<Quiet>, changes: Changes, eligible: usize) -> Quiet {
        let looks = match last {
            Some(q) if q.changes == changes && q.eligible == eligible => q.looks + 1,
            _ => 1,
        };
        Quiet {
            changes,
            eligible,
            looks,
        }
    }
}

/// A NodePool's consolidation policy (upstream's default when unset).
fn policy<'a>(candidates: &'a Candidates, pool: &str) -> &'a str {
    candidates
        .pools
        .get(pool)
        .and_then(|p| p.pool.spec.disruption.as_ref())
        .and_then(|d| d.consolidation_policy.as_deref())
        .unwrap_or(karpenter_api::defaults::CONSOLIDATION_POLICY)
}

/// What makes a replacement worth it, from the settings, and the Balanced
/// NodePools' totals (their candidates' prices, all their nodes' disruption).
pub fn rules<C: CloudProvider>(ctx: &Context<C>, candidates: &Candidates) -> Rules {
    let mut totals: BTreeMap<String, PoolTotals> = candidates
        .pools
        .iter()
        .filter(|(name, _)| policy(candidates, name) == CONSOLIDATION_BALANCED)
        .map(|(name, pool)| {
            let totals = PoolTotals {
                cost: 0.0,
                disruption: pool.disruption,
            };
            (name.clone(), totals)
        })
        .collect();
    for c in &candidates.nodes {
        if let Some(t) = totals.get_mut(&c.pool) {
            t.cost += c.price;
        }
    }
    Rules {
        min_saving: ctx.settings.consolidation_min_saving_per_hour,
        spot_to_spot: ctx.settings.feature_enabled("SpotToSpotConsolidation"),
        balanced: (!totals.is_empty()).then(|| Arc::new(Balanced::new(totals))),
    }
}

/// Nodes with workload pods whose NodePool consolidates under-used nodes
/// and whose pods have been still for its `consolidateAfter`, cheapest to
/// disrupt per dollar first. `started` stands in for the last pod event of
/// a node none was seen for.
pub fn underutilized<'a, C: CloudProvider>(
    ctx: &Context<C>,
    candidates: &'a [Candidate],
    started: Instant,
    now: Instant,
) -> Vec<&'a Candidate> {
    let mut out: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| c.workload_pods > 0)
        .filter(|c| {
            let Some(pool) = ctx.state.pool(&c.pool) else {
                return false;
            };
            let policy = pool
                .spec
                .disruption
                .as_ref()
                .and_then(|d| d.consolidation_policy.as_deref());
            if policy == Some(CONSOLIDATION_WHEN_EMPTY) {
                return false;
            }
            let Some(after) = super::emptiness::consolidate_after(ctx, &c.pool) else {
                return false;
            };
            let last = ctx
                .state
                .activity
                .last_pod_event(&c.node)
                .unwrap_or(started);
            now.duration_since(last) >= after
        })
        .collect();
    out.sort_by(|a, b| {
        disruption_per_dollar(a)
            .total_cmp(&disruption_per_dollar(b))
            .then(b.price.total_cmp(&a.price))
    });
    out
}

/// How much disruption removing the node causes per dollar an hour it costs
/// (a node of unknown price goes last).
fn disruption_per_dollar(candidate: &Candidate) -> f64 {
    if candidate.price > 0.0 {
        candidate.disruption_cost / candidate.price
    } else {
        f64::INFINITY
    }
}

/// The candidate as the decision search sees it; the error says why its
/// pods cannot be simulated.
pub fn movable<C: CloudProvider>(
    ctx: &Context<C>,
    candidate: &Candidate,
) -> Result<Movable, String> {
    Ok(Movable {
        claim: candidate.name(),
        node: candidate.node.clone(),
        price: candidate.price,
        spot: candidate.capacity_type == CAPACITY_TYPE_SPOT,
        pods: workload(ctx, &candidate.node)?,
        pool: candidate.pool.clone(),
        disruption: NODE_BASE_COST + candidate.disruption_cost,
    })
}

impl<C: CloudProvider + 'static> Disruption<C> {
    /// Validates and acts on the decision made at least a validation delay
    /// ago, or makes one.
    pub(super) async fn consolidate(&self, candidates: &Candidates) -> Vec<Decision> {
        let ctx = &self.ctx;
        let now = Instant::now();
        let rules = rules(ctx, candidates);
        let eligible: Vec<&Candidate> = underutilized(ctx, &candidates.nodes, self.started, now)
            .into_iter()
            .filter(|c| {
                rules.balanced.as_ref().is_none_or(|b| {
                    b.can_pass(&c.pool, c.price, NODE_BASE_COST + c.disruption_cost)
                })
            })
            .collect();
        let eligible = self.within_budgets(candidates, eligible, Reason::Underutilized);
        let delay = validation_delay(ctx.settings.disruption_poll_interval);
        let waiting = self.validating.lock().expect("validating").clone();
        let find = |names: &[String]| -> Option<Vec<&Candidate>> {
            names
                .iter()
                .map(|n| eligible.iter().find(|c| &c.name() == n).copied())
                .collect()
        };
        match waiting {
            Some((names, since)) if now.duration_since(since) < delay => {
                // Still waiting, unless a node of it is no candidate now.
                if find(&names).is_none() {
                    *self.validating.lock().expect("validating") = None;
                }
                Vec::new()
            }
            Some((names, _)) => {
                *self.validating.lock().expect("validating") = None;
                let Some(set) = find(&names) else {
                    tracing::info!(nodeclaims = ?names, "consolidation dropped on validation: a node is no candidate now");
                    return Vec::new();
                };
                let world = World::now(ctx).await;
                let validated = set
                    .iter()
                    .map(|c| movable(ctx, c))
                    .collect::<Result<Vec<_>, _>>()
                    .and_then(|movables| {
                        let refs: Vec<&Movable> = movables.iter().collect();
                        command::evaluate(&world, &refs, &rules).map_err(String::from)
                    });
                self.record_scores(candidates, &rules, validated.as_ref().ok());
                match validated {
                    Ok(command) => self.act(&set, command).await,
                    Err(why) => {
                        tracing::info!(nodeclaims = ?names, reason = %why, "consolidation dropped on validation");
                        Vec::new()
                    }
                }
            }
            None if eligible.is_empty() => Vec::new(),
            None => {
                let changes = *ctx.state.subscribe().borrow();
                let last = *self.quiet.lock().expect("quiet");
                if last.is_some_and(|q| q.settled(changes, eligible.len())) {
                    return Vec::new();
                }
                let world = World::now(ctx).await;
                let decided = self.decide(&world, &eligible, &rules);
                self.record_scores(candidates, &rules, decided.as_ref());
                *self.quiet.lock().expect("quiet") = match &decided {
                    Some(_) => None,
                    None => Some(Quiet::after(last, changes, eligible.len())),
                };
                if let Some(command) = decided {
                    tracing::info!(nodeclaims = ?command.claims, kind = command.kind(), saving_per_hour = command.saving, "consolidation candidates; validating in {delay:?}");
                    *self.validating.lock().expect("validating") = Some((command.claims, now));
                }
                Vec::new()
            }
        }
    }

    /// A decision over `eligible` (in order): multi-node over the first
    /// [`MULTI_NODE_MAX`], else single-node over a bounded window that
    /// resumes where the last pass stopped (at 1k nodes every look is a
    /// solve).
    fn decide(&self, world: &World, eligible: &[&Candidate], rules: &Rules) -> Option<Command> {
        let ctx = &self.ctx;
        let usable = |c: &&Candidate| movable(ctx, c).ok();
        let multi: Vec<Movable> = eligible
            .iter()
            .take(MULTI_NODE_MAX)
            .filter_map(usable)
            .collect();
        let start = self.next_look.load(Ordering::Relaxed) % eligible.len();
        let looked = eligible.len().min(CANDIDATES_PER_PASS);
        self.next_look.store(start + looked, Ordering::Relaxed);
        let single: Vec<Movable> = eligible
            .iter()
            .cycle()
            .skip(start)
            .take(looked)
            .filter_map(usable)
            .collect();
        let multi: Vec<&Movable> = multi.iter().collect();
        command::decide(world, &multi, &single, rules)
    }

    /// `karpenter_consolidation_score` and `karpenter_consolidation_moves_total`
    /// for the moves the Balanced pools scored, and the decided move's
    /// other pools (approved without a score).
    fn record_scores(&self, candidates: &Candidates, rules: &Rules, decided: Option<&Command>) {
        let metrics = &self.ctx.metrics;
        let labels = |decision: &str, pool: &str| {
            vec![
                ("decision", decision.to_string()),
                ("nodepool", pool.to_string()),
                ("policy", policy(candidates, pool).to_string()),
            ]
        };
        let balanced = rules.balanced.as_deref();
        for score in balanced.map(Balanced::take_scores).unwrap_or_default() {
            let decision = if score.approved {
                "approved"
            } else {
                "rejected"
            };
            let series = labels(decision, &score.pool);
            metrics
                .disruption
                .consolidation_moves
                .get_or_create(&series)
                .inc();
            metrics
                .disruption
                .consolidation_score
                .get_or_create(&series)
                .observe(score.value);
        }
        let pools: std::collections::BTreeSet<&str> = decided
            .iter()
            .flat_map(|c| c.claims.iter())
            .filter_map(|claim| candidates.nodes.iter().find(|c| &c.name() == claim))
            .map(|c| c.pool.as_str())
            .filter(|pool| balanced.is_none_or(|b| !b.scores_pool(pool)))
            .collect();
        for pool in pools {
            let series = labels("approved", pool);
            metrics
                .disruption
                .consolidation_moves
                .get_or_create(&series)
                .inc();
        }
    }

    /// Carries the validated command out: deletes the nodes, or launches
    /// their replacement (the nodes go once it is Initialized).
    async fn act(&self, set: &[&Candidate], command: Command) -> Vec<Decision> {
        let nodes = set.len();
        let kind = command.kind();
        match command.action {
            Action::Delete => {
                let mut decisions = Vec::new();
                for candidate in set {
                    let note = if nodes > 1 {
                        format!(
                            "Underutilized: its {} pods fit on the other nodes, consolidated with {} more ({} pods in all, saving ${:.4}/h together); deleting",
                            candidate.workload_pods,
                            nodes - 1,
                            command.pods,
                            command.saving
                        )
                    } else {
                        format!(
                            "Underutilized: its {} pods fit on the other nodes; deleting, saving ${:.4}/h",
                            candidate.workload_pods, candidate.price
                        )
                    };
                    decisions.extend(self.remove_underutilized(candidate, note).await);
                }
                self.decided(&decisions, "delete", "underutilized", kind);
                decisions
            }
            Action::Replace(planned) => {
                let price: f64 = set.iter().map(|c| c.price).sum();
                let why = Why {
                    reason: "underutilized".into(),
                    detail: format!(
                        "Underutilized: the {} pods of {nodes} node(s) fit on one cheaper node (${:.4}/h instead of ${price:.4}/h)",
                        command.pods, planned.price
                    ),
                    consolidation_type: kind,
                };
                self.replace(set, &[planned], why).await;
                Vec::new()
            }
        }
    }

    /// Deletes an under-used candidate whose pods fit elsewhere.
    async fn remove_underutilized(&self, candidate: &Candidate, note: String) -> Option<Decision> {
        let claim = self.ctx.state.claim(&candidate.name())?;
        if crate::state::deleting(claim.as_ref()) {
            return None;
        }
        self.disrupt(Target::of(candidate, &claim), "underutilized", note)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_still_cluster_is_settled_once_every_candidate_was_looked_at() {
        let at = Changes { pods: 7, other: 3 };
        let first = Quiet::after(None, at, 20);
        assert!(!first.settled(at, 20), "16 of 20 candidates looked at");
        let second = Quiet::after(Some(first), at, 20);
        assert!(second.settled(at, 20));
        assert!(
            !second.settled(Changes { pods: 8, other: 3 }, 20),
            "a pod changed"
        );
        assert!(!second.settled(at, 21), "a node became a candidate");
        let moved = Quiet::after(Some(second), Changes { pods: 8, other: 3 }, 20);
        assert_eq!(moved.looks, 1);
    }
}

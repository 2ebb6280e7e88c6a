//! Consolidation under `WhenEmptyOrUnderutilized`, single node: a node
//! whose workload pods all fit on the other nodes as they are is removed;
//! otherwise, if one cheaper node would hold them, it replaces the node
//! (launched and Initialized first). The cheapest to disrupt goes first.
//!
//! Less churn than upstream: a replacement must save at least
//! `CONSOLIDATION_MIN_SAVING_PER_HOUR` (so never the same instance type at
//! the same price), and a spot node is replaced by another only with the
//! `SpotToSpotConsolidation` feature gate.
//!
//! A node is considered once its pods have not changed for the NodePool's
//! `consolidateAfter` (timed from its last pod event, as emptiness). A
//! decision is validated again after [`validation_delay`] against the
//! cluster as it is then, and dropped if anything changed its answer.

use super::candidates::Candidate;
use super::replace::{Launch, World};
use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::scheduling::{NewClaim, OfferingFilter};
use karpenter_api::v1::CONSOLIDATION_WHEN_EMPTY;
use std::time::{Duration, Instant};

/// Candidates one pass looks at (each is a solve against every node); the
/// next pass goes on from there.
pub const CANDIDATES_PER_PASS: usize = 16;

/// How long a decision waits before it is validated and acted on: one and a
/// half poll intervals (upstream's 15 s at the default 10 s).
pub fn validation_delay(poll: Duration) -> Duration {
    poll * 3 / 2
}

/// Nodes with workload pods whose NodePool consolidates under-used nodes
/// and whose pods have been still for its `consolidateAfter`, cheapest to
/// disrupt first (fewest pods, then the most expensive). `started` stands in
/// for the last pod event of a node none was seen for.
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
        a.workload_pods
            .cmp(&b.workload_pods)
            .then(b.price.total_cmp(&a.price))
    });
    out
}

/// One new node that would hold every workload pod of the candidate's node
/// (with the other nodes as they are) and save at least `min_saving` per
/// hour: its instance types cut to those that do. The error says why there
/// is none.
pub fn cheaper_replacement<C: CloudProvider>(
    ctx: &Context<C>,
    world: &World,
    candidate: &Candidate,
    min_saving: f64,
) -> Result<NewClaim, String> {
    if candidate.capacity_type == karpenter_api::labels::CAPACITY_TYPE_SPOT
        && !ctx.settings.feature_enabled("SpotToSpotConsolidation")
    {
        return Err("a spot node is replaced only with SpotToSpotConsolidation".into());
    }
    let ceiling = candidate.price - min_saving;
    let planned = world.place(ctx, candidate, Launch::CheaperThan(ceiling))?;
    let [planned] = planned.as_slice() else {
        return Err(format!("its pods need {} new nodes", planned.len()));
    };
    let pool = world
        .pools()
        .iter()
        .find(|p| p.name == planned.pool)
        .ok_or("its NodePool is gone")?;
    let filter = OfferingFilter::of(&planned.requirements);
    let mut cheaper: Vec<(String, f64)> = planned
        .instance_types
        .iter()
        .filter_map(|name| {
            let option = pool.candidates.iter().find(|c| &c.name == name)?;
            let price = filter.cheapest(option)?.price;
            (price < ceiling).then(|| (name.clone(), price))
        })
        .collect();
    cheaper.sort_by(|a, b| a.1.total_cmp(&b.1));
    let Some(&(_, price)) = cheaper.first() else {
        return Err(format!(
            "no option saves ${min_saving:.4}/h on ${:.4}/h",
            candidate.price
        ));
    };
    let mut planned = planned.clone();
    planned.instance_types = cheaper.into_iter().map(|(name, _)| name).collect();
    planned.price = price;
    Ok(planned)
}

/// Whether every workload pod on the candidate's node fits on the other
/// nodes as they are now, without launching one; the error says why not.
pub fn fits_elsewhere<C: CloudProvider>(
    ctx: &Context<C>,
    world: &World,
    candidate: &Candidate,
) -> Result<(), String> {
    world.place(ctx, candidate, Launch::Nothing).map(|_| ())
}

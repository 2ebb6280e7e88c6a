//! Consolidation under `WhenEmptyOrUnderutilized`, single node, delete only:
//! a node whose workload pods all fit on the other nodes as they are (no new
//! node launched) is removed, the cheapest to disrupt first.
//!
//! A node is considered once its pods have not changed for the NodePool's
//! `consolidateAfter` (timed from its last pod event, as emptiness). A
//! decision is validated again after [`validation_delay`] against the
//! cluster as it is then, and dropped if anything changed its answer.

use super::candidates::{Candidate, is_mirror};
use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::controllers::provisioning::{existing_nodes, is_active, is_daemon_pod, pod_infos};
use crate::scheduling::solve;
use karpenter_api::v1::CONSOLIDATION_WHEN_EMPTY;
use std::time::{Duration, Instant};

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

/// Whether every workload pod on the candidate's node fits on the other
/// nodes as they are now, without launching one; the error says why not.
pub fn fits_elsewhere<C: CloudProvider>(
    ctx: &Context<C>,
    candidate: &Candidate,
) -> Result<(), String> {
    let pods: Vec<_> = ctx
        .state
        .pods_on(&candidate.node)
        .into_iter()
        .filter(|p| is_active(p) && !is_daemon_pod(p) && !is_mirror(p))
        .collect();
    let infos = pod_infos(ctx, &pods);
    if infos.len() != pods.len() {
        return Err("a pod on it cannot be scheduled by the engine".into());
    }
    let claims = ctx.state.claims.state();
    let mut nodes = existing_nodes(ctx, &[], &claims);
    nodes.retain(|n| n.name != candidate.node);
    let solution = solve(&infos, nodes, Vec::new());
    match solution.unschedulable.first() {
        Some((pod, why)) => Err(format!("{pod} fits on no other node: {why}")),
        None => Ok(()),
    }
}

//! Emptiness: a node without workload pods (DaemonSet, static and finished
//! pods do not count) for its NodePool's `consolidateAfter` may go.
//!
//! How long a node has been empty is timed from the later of its last pod
//! event and when this replica first saw it empty (both as this replica saw
//! them, never earlier than they happened): a new leader starts the clocks
//! afresh, so after a fail-over a node waits up to one more
//! `consolidateAfter`, never less.

use super::candidates::Candidate;
use crate::cloud::CloudProvider;
use crate::controllers::Context;
use karpenter_api::duration::{NillableDuration, parse_nillable};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Upstream's default `consolidateAfter`.
const DEFAULT_CONSOLIDATE_AFTER: Duration = Duration::ZERO;

/// The candidates that have been empty for their NodePool's
/// `consolidateAfter`; `since` (NodeClaim name -> first seen empty) is
/// updated to the candidates that are empty now.
pub fn eligible<'a, C: CloudProvider>(
    ctx: &Context<C>,
    candidates: &'a [Candidate],
    since: &mut HashMap<String, Instant>,
    now: Instant,
) -> Vec<&'a Candidate> {
    let mut still_empty = HashMap::new();
    let mut out = Vec::new();
    for candidate in candidates.iter().filter(|c| c.workload_pods == 0) {
        let name = candidate.name();
        let first = since.get(&name).copied().unwrap_or(now);
        still_empty.insert(name, first);
        // A pod that left just now: empty only since then.
        let first = ctx
            .state
            .activity
            .last_pod_event(&candidate.node)
            .map_or(first, |event| event.max(first));
        let Some(after) = consolidate_after(ctx, &candidate.pool) else {
            continue;
        };
        if now.duration_since(first) >= after {
            out.push(candidate);
        }
    }
    *since = still_empty;
    out
}

/// The NodePool's `consolidateAfter`; `None` for `Never` (or a value the
/// API server should have refused, which must not allow anything).
pub(super) fn consolidate_after<C: CloudProvider>(
    ctx: &Context<C>,
    pool: &str,
) -> Option<Duration> {
    let pool = ctx.state.pool(pool)?;
    let text = pool
        .spec
        .disruption
        .as_ref()
        .and_then(|d| d.consolidate_after.as_deref());
    match text.map(parse_nillable) {
        None => Some(DEFAULT_CONSOLIDATE_AFTER),
        Some(Ok(NillableDuration::After(after))) => Some(after),
        Some(Ok(NillableDuration::Never)) => None,
        Some(Err(e)) => {
            tracing::warn!(nodepool = %pool.metadata.name.as_deref().unwrap_or_default(), error = %e, "invalid consolidateAfter; emptiness disabled");
            None
        }
    }
}

/// Whether the node still runs no workload pods, by the cache as it is now.
pub fn still_empty<C: CloudProvider>(ctx: &Context<C>, node: &str) -> bool {
    !ctx.state
        .pods_on(node)
        .iter()
        .any(|p| super::candidates::is_workload(p))
}

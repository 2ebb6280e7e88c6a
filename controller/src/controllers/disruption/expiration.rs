//! Expiration: a NodeClaim older than its `expireAfter` (set from the
//! NodePool's template when it was created; `Never` turns it off) is
//! deleted. As upstream, expiration is forceful: budgets and
//! `do-not-disrupt` do not hold it back, and no replacement is launched
//! first; the drain still honours PDBs until the NodeClaim's
//! `terminationGracePeriod`, and the evicted pods are provisioned anew.

use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::state::deleting;
use jiff::Timestamp;
use karpenter_api::duration::{NillableDuration, parse_nillable};
use karpenter_api::v1::NodeClaim;
use std::sync::Arc;
use std::time::Duration;

/// The NodeClaims whose `expireAfter` has passed at `now`, with how old
/// they are.
pub fn expired<C: CloudProvider>(
    ctx: &Context<C>,
    now: Timestamp,
) -> Vec<(Arc<NodeClaim>, Duration)> {
    ctx.state
        .claims
        .state()
        .into_iter()
        .filter(|c| !deleting(c.as_ref()))
        .filter_map(|claim| {
            let text = claim.spec.template.expire_after.as_deref()?;
            let Ok(NillableDuration::After(limit)) = parse_nillable(text) else {
                return None;
            };
            let created = claim.metadata.creation_timestamp.as_ref()?.0;
            let age = now.duration_since(created);
            let age = Duration::try_from(age).ok()?;
            (age >= limit).then_some((claim, age))
        })
        .collect()
}

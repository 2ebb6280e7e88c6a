//! Drift: a NodeClaim that no longer matches what its NodePool and
//! EC2NodeClass would launch today gets the `Drifted` condition, with the
//! reason:
//!
//! - `NodePoolDrifted`: the NodePool's template hash (labels, annotations,
//!   taints, node class, lifetimes) differs from the one the claim was made
//!   from (same hash version only, as upstream).
//! - `NodeClassDrift`: the same for the EC2NodeClass's hash.
//! - `RequirementsDrifted`: one of the claim's labels is no longer allowed
//!   by the NodePool's requirements.
//! - the cloud provider's reason (`AMIDrift`, subnets, security groups):
//!   asked at most every [`CLOUD_CHECK_POLLS`] poll
//!   intervals per claim (a minute by default), since on AWS it is an API
//!   call.
//!
//! A claim that stops drifting (the change was reverted) loses the condition.

use super::candidates::{Candidate, Candidates, workload};
use super::replace::Why;
use super::world::{Launch, World};
use super::{Disruption, Reason};
use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::controllers::hash::class_hash;
use crate::controllers::lifecycle::is_true;
use crate::controllers::writes::update_claim_status;
use crate::state::{deleting, pool_label};
use karpenter_api::labels;
use karpenter_api::requirements::Requirements;
use karpenter_api::v1::{
    EC2NODECLASS_HASH_VERSION, NODEPOOL_HASH_VERSION, NodeClaim, nodeclaim_conditions as cond,
};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// How many poll intervals pass between asking the cloud provider whether
/// a claim drifted.
pub const CLOUD_CHECK_POLLS: u32 = 6;

/// Cloud drift answers by NodeClaim name, and when they were asked.
#[derive(Default)]
pub struct CloudDrift {
    asked: Mutex<HashMap<String, (Instant, Option<String>)>>,
}

/// Why the claim no longer matches its NodePool, if it does not.
fn pool_drift<C: CloudProvider>(ctx: &Context<C>, claim: &NodeClaim) -> Option<String> {
    let pool = ctx.state.pool(&pool_label(claim))?;
    let annotations = claim.metadata.annotations.as_ref();
    let get = |key: &str| annotations.and_then(|a| a.get(key)).map(String::as_str);
    // Only a hash of this version compares; the hash controller re-stamps
    // claims of another (upstream's `v3`) instead of drifting them.
    let same_version = get(labels::NODEPOOL_HASH_VERSION_ANNOTATION) == Some(NODEPOOL_HASH_VERSION);
    let hash = pool.template_hash();
    if same_version
        && let Some(claimed) = get(labels::NODEPOOL_HASH_ANNOTATION)
        && claimed != hash
    {
        return Some(format!(
            "NodePoolDrifted: the NodePool's template changed (hash {claimed} -> {hash})"
        ));
    }
    if let Some(class) = ctx.state.class_of_claim(claim)
        && get(labels::EC2NODECLASS_HASH_VERSION_ANNOTATION) == Some(EC2NODECLASS_HASH_VERSION)
        && let Some(claimed) = get(labels::EC2NODECLASS_HASH_ANNOTATION)
    {
        let hash = class_hash(&class);
        if claimed != hash {
            return Some(format!(
                "NodeClassDrift: the EC2NodeClass changed (hash {claimed} -> {hash})"
            ));
        }
    }
    let requirements = Requirements::from_api(&pool.spec.template.spec.requirements).ok()?;
    let claim_labels = claim.metadata.labels.clone().unwrap_or_default();
    requirements.iter().find_map(|r| {
        let value = claim_labels.get(r.key())?;
        (!r.has(value)).then(|| {
            format!(
                "RequirementsDrifted: {}={value} is no longer allowed by the NodePool",
                r.key()
            )
        })
    })
}

impl CloudDrift {
    /// The cloud provider's drift reason for the claim, asking again only
    /// when the last answer is older than [`CLOUD_CHECK_POLLS`] polls.
    async fn reason<C: CloudProvider>(
        &self,
        ctx: &Context<C>,
        claim: &NodeClaim,
    ) -> Option<String> {
        let name = claim.metadata.name.clone()?;
        if let Some((at, answer)) = self.asked.lock().expect("asked").get(&name)
            && at.elapsed() < ctx.settings.disruption_poll_interval * CLOUD_CHECK_POLLS
        {
            return answer.clone();
        }
        let class = ctx.state.class_of_claim(claim)?;
        let answer = match ctx
            .metrics
            .cloud_call("IsDrifted", ctx.cloud.is_drifted(claim, &class))
            .await
        {
            Ok(answer) => answer,
            Err(e) => {
                tracing::debug!(nodeclaim = %name, error = %e, "drift check failed");
                return None;
            }
        };
        self.asked
            .lock()
            .expect("asked")
            .insert(name, (Instant::now(), answer.clone()));
        answer
    }

    /// Forgets claims that are gone.
    fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.asked
            .lock()
            .expect("asked")
            .retain(|name, _| keep(name));
    }

    /// Sets or clears `Drifted` on every initialized NodeClaim not being
    /// deleted; returns the drifted ones' names with their reasons.
    pub async fn mark<C: CloudProvider>(&self, ctx: &Context<C>) -> HashMap<String, String> {
        let mut drifted = HashMap::new();
        let claims = ctx.state.claims.state();
        self.retain(|name| {
            claims
                .iter()
                .any(|c| c.metadata.name.as_deref() == Some(name))
        });
        for claim in claims {
            if deleting(claim.as_ref()) || !is_true(&claim, cond::INITIALIZED) {
                continue;
            }
            let reason = match pool_drift(ctx, &claim) {
                Some(reason) => Some(reason),
                None => self.reason(ctx, &claim).await,
            };
            let was = is_true(&claim, cond::DRIFTED);
            let name = claim.metadata.name.clone().unwrap_or_default();
            let result = match &reason {
                Some(reason) => {
                    let kind = reason.split(':').next().unwrap_or("Drifted");
                    update_claim_status(
                        ctx,
                        &claim,
                        serde_json::json!({}),
                        &[(cond::DRIFTED, true, kind, reason)],
                    )
                    .await
                }
                None if was => {
                    update_claim_status(
                        ctx,
                        &claim,
                        serde_json::json!({}),
                        &[(cond::DRIFTED, false, "NotDrifted", "")],
                    )
                    .await
                }
                None => Ok(()),
            };
            if let Err(e) = result {
                tracing::warn!(nodeclaim = %name, error = %e, "could not record drift");
            }
            if let Some(reason) = reason {
                if !was {
                    tracing::info!(nodeclaim = %name, %reason, "drifted");
                }
                drifted.insert(name, reason);
            }
        }
        drifted
    }
}

impl<C: CloudProvider + 'static> Disruption<C> {
    /// Starts replacing the first drifted node its NodePool's budget lets
    /// go (the most expensive first).
    pub(super) async fn replace_drifted(
        &self,
        candidates: &Candidates,
        drifted: &HashMap<String, String>,
    ) {
        let ctx = &self.ctx;
        let mut eligible: Vec<&Candidate> = candidates
            .nodes
            .iter()
            .filter(|c| drifted.contains_key(&c.name()))
            .collect();
        eligible.sort_by(|a, b| b.price.total_cmp(&a.price));
        let Some(&candidate) = self
            .within_budgets(candidates, eligible, Reason::Drifted)
            .first()
        else {
            return;
        };
        let why = Why {
            reason: "drifted".into(),
            detail: format!("Drifted: {}", drifted[&candidate.name()]),
            consolidation_type: "",
        };
        let world = World::now(ctx).await;
        let placed = workload(ctx, &candidate.node).and_then(|pods| {
            world
                .place(&pods, &[candidate.node.as_str()], Launch::Any)
                .map_err(String::from)
        });
        match placed {
            Ok(placed) => self.replace(&[candidate], &placed.claims, why).await,
            Err(e) => {
                tracing::info!(nodeclaim = %candidate.name(), reason = %e, "drifted node cannot be replaced now");
            }
        }
    }
}

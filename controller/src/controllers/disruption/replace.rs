//! Replacements: before nodes with pods go for a reason that is not an
//! emergency (drift, consolidation onto a cheaper node), the NodeClaims
//! their pods need elsewhere are launched, and the nodes are deleted (then
//! tainted and drained by termination) only once every replacement is
//! Initialized. A replacement that fails (deleted,
//! say because its launch found no capacity, or not Initialized within
//! [`REPLACEMENT_TIMEOUT`]) is abandoned: the other replacements are deleted
//! and the old nodes are left untouched and untainted.

use super::candidates::{Candidate, Candidates};
use super::{Decision, Disruption, Target};
use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::controllers::lifecycle::is_true;
use crate::controllers::provisioning::create_nodeclaim;
use crate::scheduling::NewClaim;
use crate::state::deleting;
use karpenter_api::v1::{NodeClaim, nodeclaim_conditions as cond};
use kube::Api;
use kube::api::DeleteParams;
use std::time::{Duration, Instant};

/// How long replacements may take to be Initialized before they are given up.
pub const REPLACEMENT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// How long a created replacement may be missing from the cache (the
/// NodeClaim watch can lag) before it counts as gone.
const UNSEEN_GRACE: Duration = Duration::from_secs(30);

/// Why a node is replaced.
#[derive(Debug, Clone)]
pub struct Why {
    /// As metrics label it (`drifted`, `underutilized`).
    pub reason: String,
    /// In words, for the log line and the events.
    pub detail: String,
    /// `single` or `multi` for consolidation, empty otherwise.
    pub consolidation_type: &'static str,
}

/// Nodes being replaced.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// The NodeClaims to delete once their replacements are ready.
    pub old: Vec<String>,
    /// Why.
    pub why: Why,
    /// The replacement NodeClaims.
    pub new: Vec<String>,
    /// When they were created.
    pub started: Instant,
}

/// Where a replacement stands.
#[derive(Debug, PartialEq)]
pub enum Progress {
    /// Still launching.
    Waiting,
    /// Every replacement is Initialized.
    Ready,
    /// A replacement failed; the reason.
    Failed(String),
}

/// Creates the planned replacements for the NodeClaims `old`. On a
/// failure the ones created are deleted again and the error says what
/// failed.
pub async fn start<C: CloudProvider>(
    ctx: &Context<C>,
    old: Vec<String>,
    planned: &[NewClaim],
    why: Why,
) -> Result<Replacement, String> {
    let mut replacement = Replacement {
        old,
        why,
        new: Vec::new(),
        started: Instant::now(),
    };
    for claim in planned {
        match create_nodeclaim(ctx, claim, &replacement.why.reason).await {
            Ok(Some(created)) => replacement
                .new
                .push(created.metadata.name.unwrap_or_default()),
            Ok(None) => {}
            Err(e) => {
                abandon(ctx, &replacement).await;
                return Err(format!("creating a replacement failed: {e}"));
            }
        }
    }
    Ok(replacement)
}

/// Where the replacement stands, by the cache.
pub fn progress<C: CloudProvider>(ctx: &Context<C>, replacement: &Replacement) -> Progress {
    let age = replacement.started.elapsed();
    let mut ready = true;
    for name in &replacement.new {
        match ctx.state.claim(name) {
            None if age > UNSEEN_GRACE => {
                return Progress::Failed(format!("replacement {name} is gone"));
            }
            None => ready = false,
            Some(claim) if deleting(claim.as_ref()) => {
                return Progress::Failed(format!("replacement {name} is being deleted"));
            }
            Some(claim) => ready &= is_true(&claim, cond::INITIALIZED),
        }
    }
    match (ready, age > REPLACEMENT_TIMEOUT) {
        (true, _) => Progress::Ready,
        (false, true) => Progress::Failed(format!(
            "replacements not initialized within {REPLACEMENT_TIMEOUT:?}"
        )),
        (false, false) => Progress::Waiting,
    }
}

/// Deletes the replacements (by name: the cache may not show them yet);
/// the old nodes were never touched.
pub async fn abandon<C: CloudProvider>(ctx: &Context<C>, replacement: &Replacement) {
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    for name in &replacement.new {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                tracing::warn!(nodeclaim = %name, error = %e, "could not delete an abandoned replacement");
            }
        }
    }
}

impl<C: CloudProvider + 'static> Disruption<C> {
    /// Advances the replacement under way: deletes the old nodes once every
    /// replacement is Initialized, or gives the replacements up when one
    /// failed (the old nodes are left as they were).
    pub(super) async fn advance(
        &self,
        candidates: &Candidates,
        replacement: Replacement,
    ) -> Vec<Decision> {
        let ctx = &self.ctx;
        match progress(ctx, &replacement) {
            Progress::Waiting => Vec::new(),
            Progress::Failed(why) => {
                *self.replacing.lock().expect("replacing") = None;
                abandon(ctx, &replacement).await;
                self.queue_failed(&replacement.why);
                for old in &replacement.old {
                    tracing::warn!(nodeclaim = %old, reason = %why, "replacement failed; the node is left as it was");
                    if let Some(old) = ctx.state.claim(old) {
                        ctx.event(
                            old.as_ref(),
                            true,
                            "DisruptionBlocked",
                            format!("replacement failed ({why}); node left as it was"),
                        );
                    }
                }
                Vec::new()
            }
            Progress::Ready => {
                *self.replacing.lock().expect("replacing") = None;
                let by = if replacement.new.is_empty() {
                    "the other nodes".to_string()
                } else {
                    replacement.new.join(", ")
                };
                let why = &replacement.why;
                let note = format!("{}; replaced by {by} (Initialized); deleting", why.detail);
                let mut decisions = Vec::new();
                for old in &replacement.old {
                    let candidate = candidates.nodes.iter().find(|c| &c.name() == old);
                    let (Some(candidate), Some(claim)) = (candidate, ctx.state.claim(old)) else {
                        tracing::info!(nodeclaim = %old, "no longer a candidate once its replacement was ready; left as it is");
                        continue;
                    };
                    decisions.extend(
                        self.disrupt(Target::of(candidate, &claim), &why.reason, note.clone())
                            .await,
                    );
                }
                self.decided(&decisions, "replace", &why.reason, why.consolidation_type);
                decisions
            }
        }
    }

    /// Launches the replacements for the nodes `old` and remembers them.
    pub(super) async fn replace(&self, old: &[&Candidate], planned: &[NewClaim], why: Why) {
        let ctx = &self.ctx;
        let detail = why.detail.clone();
        let names: Vec<String> = old.iter().map(|c| c.name()).collect();
        let counted = why.clone();
        match start(ctx, names.clone(), planned, why).await {
            Ok(replacement) => {
                tracing::info!(nodeclaims = ?names, replacements = ?replacement.new, "{detail}; launching replacements");
                *self.replacing.lock().expect("replacing") = Some(replacement);
            }
            Err(e) => {
                tracing::warn!(nodeclaims = ?names, error = %e, "could not launch replacements");
                self.queue_failed(&counted);
            }
        }
    }

    /// Counts a replacing command that failed and was given up
    /// (`karpenter_voluntary_disruption_queue_failures_total`, as upstream's
    /// orchestration queue counts a command it drops).
    fn queue_failed(&self, why: &Why) {
        self.ctx
            .metrics
            .disruption
            .queue_failures
            .get_or_create(&vec![
                ("decision", "replace".to_string()),
                ("reason", why.reason.clone()),
                ("consolidation_type", why.consolidation_type.to_string()),
            ])
            .inc();
    }
}

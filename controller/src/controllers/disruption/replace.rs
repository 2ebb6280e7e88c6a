//! Replacements: before a node with pods goes for a reason that is not an
//! emergency (drift), the NodeClaims its pods need elsewhere are launched,
//! and the node is deleted (then tainted and drained by termination) only
//! once every replacement is Initialized. A replacement that fails (deleted,
//! say because its launch found no capacity, or not Initialized within
//! [`REPLACEMENT_TIMEOUT`]) is abandoned: the other replacements are deleted
//! and the old node is left untouched and untainted.

use super::candidates::{Candidate, workload};
use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::controllers::lifecycle::is_true;
use crate::controllers::provisioning::{create_nodeclaim, existing_nodes, pools};
use crate::scheduling::{ExistingNode, NewClaim, Pool, solve};
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
    /// `single` for consolidation, empty otherwise.
    pub consolidation_type: &'static str,
}

/// A node being replaced.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// The NodeClaim to delete once its replacements are ready.
    pub old: String,
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

/// The cluster as the scheduling engine sees it: the registered nodes with
/// what is left on them, and the NodePools. Built once per pass and shared
/// by every candidate the pass looks at (building it reads every pod).
pub struct World {
    nodes: Vec<ExistingNode>,
    pools: Vec<Pool>,
}

impl World {
    /// The cluster now. NodeClaims still launching are left out: a node
    /// that may never come is no place to move pods to.
    pub async fn now<C: CloudProvider>(ctx: &Context<C>) -> Self {
        let claims = ctx.state.claims.state();
        World {
            nodes: existing_nodes(ctx, &[], &claims),
            pools: pools(ctx, &claims).await,
        }
    }

    /// The NodePools.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// Where the candidate's workload pods would go: onto the other nodes
    /// and, with `launch`, new NodeClaims. The error says why they cannot
    /// all be placed.
    pub fn place<C: CloudProvider>(
        &self,
        ctx: &Context<C>,
        candidate: &Candidate,
        launch: bool,
    ) -> Result<Vec<NewClaim>, String> {
        let infos = workload(ctx, &candidate.node)?;
        let nodes = self
            .nodes
            .iter()
            .filter(|n| n.name != candidate.node)
            .cloned()
            .collect();
        let pools = if launch {
            self.pools.clone()
        } else {
            Vec::new()
        };
        let solution = solve(&infos, nodes, pools);
        match solution.unschedulable.first() {
            Some((pod, why)) => Err(format!("{pod} fits nowhere: {why}")),
            None => Ok(solution.claims),
        }
    }
}

/// Creates the planned replacements for the candidate. On a failure the
/// ones created are deleted again and the error says what failed.
pub async fn start<C: CloudProvider>(
    ctx: &Context<C>,
    candidate: &Candidate,
    planned: &[NewClaim],
    why: Why,
) -> Result<Replacement, String> {
    let mut replacement = Replacement {
        old: candidate.name(),
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
/// the old node was never touched.
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

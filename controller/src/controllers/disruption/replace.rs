//! Replacements: before a node with pods goes for a reason that is not an
//! emergency (drift, consolidation onto a cheaper node), the NodeClaims its
//! pods need elsewhere are launched,
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
use crate::scheduling::{ExistingNode, NewClaim, PodInfo, Pool, solve};
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

/// What a placement may launch for the pods that do not fit elsewhere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Launch {
    /// Nothing: the other nodes must hold them.
    Nothing,
    /// Whatever the NodePools allow.
    Any,
    /// Only if an instance type that holds them costs less than this per hour.
    CheaperThan(f64),
}

/// The cluster as the scheduling engine sees it: the registered nodes with
/// what is left on them, and the NodePools. Built once per pass and shared
/// by every candidate the pass looks at (building it reads every pod).
pub struct World {
    nodes: Vec<ExistingNode>,
    pools: Vec<Pool>,
    /// CPU, memory and pod slots left on all nodes together.
    free: Room,
}

/// CPU (milli), memory and pod slots, for quick bounds before a solve.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Room {
    cpu_milli: i64,
    memory: i64,
    pods: i64,
}

impl Room {
    /// What is left on a node (nothing where it is over-committed).
    fn left_on(node: &ExistingNode) -> Room {
        Room {
            cpu_milli: node.available.cpu_milli.max(0),
            memory: node.available.memory.max(0),
            pods: node.available.pods.max(0),
        }
    }

    /// What the pods ask for.
    fn asked_by(pods: &[PodInfo]) -> Room {
        pods.iter().fold(Room::default(), |room, pod| Room {
            cpu_milli: room.cpu_milli + pod.requests.cpu_milli,
            memory: room.memory + pod.requests.memory,
            pods: room.pods + 1,
        })
    }

    fn holds(&self, asked: &Room) -> bool {
        asked.cpu_milli <= self.cpu_milli && asked.memory <= self.memory && asked.pods <= self.pods
    }
}

impl World {
    /// The cluster now. NodeClaims still launching are left out: a node
    /// that may never come is no place to move pods to.
    pub async fn now<C: CloudProvider>(ctx: &Context<C>) -> Self {
        let claims = ctx.state.claims.state();
        let nodes = existing_nodes(ctx, &[], &claims);
        let free = nodes
            .iter()
            .map(Room::left_on)
            .fold(Room::default(), |a, b| Room {
                cpu_milli: a.cpu_milli + b.cpu_milli,
                memory: a.memory + b.memory,
                pods: a.pods + b.pods,
            });
        World {
            nodes,
            pools: pools(ctx, &claims).await,
            free,
        }
    }

    /// The NodePools.
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// The lowest hourly price of an instance type any NodePool offers that
    /// has room for `asked` on its own (a bound: the engine may need more).
    fn cheapest_for(&self, asked: &Room) -> Option<f64> {
        self.pools
            .iter()
            .flat_map(|p| &p.candidates)
            .filter(|c| {
                let a = &c.allocatable;
                Room {
                    cpu_milli: a.cpu_milli,
                    memory: a.memory,
                    pods: a.pods,
                }
                .holds(asked)
            })
            .map(|c| c.lowest_price())
            .min_by(f64::total_cmp)
    }

    /// Where the candidate's workload pods would go: onto the other nodes
    /// and, as `launch` allows, new NodeClaims. The error says why they
    /// cannot all be placed.
    pub fn place<C: CloudProvider>(
        &self,
        ctx: &Context<C>,
        candidate: &Candidate,
        launch: Launch,
    ) -> Result<Vec<NewClaim>, String> {
        let infos = workload(ctx, &candidate.node)?;
        let asked = Room::asked_by(&infos);
        if launch == Launch::Nothing {
            // A bound first: most nodes of a busy cluster fail it, and it
            // saves copying every node for a solve.
            let own = self
                .nodes
                .iter()
                .find(|n| n.name == candidate.node)
                .map(Room::left_on)
                .unwrap_or_default();
            let elsewhere = Room {
                cpu_milli: self.free.cpu_milli - own.cpu_milli,
                memory: self.free.memory - own.memory,
                pods: self.free.pods - own.pods,
            };
            if !elsewhere.holds(&asked) {
                return Err("the other nodes have too little room left".into());
            }
        } else if let Launch::CheaperThan(ceiling) = launch
            && self
                .cheapest_for(&asked)
                .is_none_or(|floor| floor >= ceiling)
        {
            return Err(format!(
                "no instance type that holds its pods costs less than ${ceiling:.4}/h"
            ));
        }
        let nodes = self
            .nodes
            .iter()
            .filter(|n| n.name != candidate.node)
            .cloned()
            .collect();
        let pools = match launch {
            Launch::Nothing => Vec::new(),
            Launch::Any | Launch::CheaperThan(_) => self.pools.clone(),
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

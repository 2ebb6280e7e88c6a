//! Consolidation decisions, worked out against a [`World`] without any API
//! call: which nodes could go together, and whether their pods fit on the
//! other nodes as they are (delete) or need one cheaper node (replace).
//!
//! Two searches, both over candidates ordered cheapest to disrupt first:
//!
//! - [`multi_node`]: the longest prefix (of at most [`MULTI_NODE_MAX`], at
//!   least two) whose nodes can all go at once, found by binary search as
//!   upstream does: each step is one solve, so 100 candidates cost about
//!   seven.
//! - [`single_node`]: one node at a time, for what the multi-node search
//!   misses (its prefixes fail on the first node that cannot go).
//!
//! Under `consolidationPolicy: Balanced` a move must also score high enough
//! in each Balanced NodePool it touches ([`super::balanced`]).
//!
//! Less churn than upstream: a replacement must save at least
//! [`Rules::min_saving`] per hour over the nodes it replaces (so a node is
//! never replaced by the same instance type at the same price), and a set
//! of spot nodes only is replaced only when [`Rules::spot_to_spot`] allows
//! it (a set with an on-demand node may be replaced by spot capacity, as
//! upstream allows on-demand to spot).

use super::Refusal;
use super::balanced::{Balanced, PoolShare};
use super::world::{Launch, World};
use crate::scheduling::{NewClaim, OfferingFilter, PodInfo};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Most candidates one multi-node search looks at (upstream's number).
pub const MULTI_NODE_MAX: usize = 100;

/// A node consolidation may take away, with what it would move.
#[derive(Debug, Clone)]
pub struct Movable {
    /// Its NodeClaim.
    pub claim: String,
    /// Its Node.
    pub node: String,
    /// What it costs per hour.
    pub price: f64,
    /// Whether it runs on spot capacity.
    pub spot: bool,
    /// Its workload pods (what a drain would move).
    pub pods: Vec<PodInfo>,
    /// Its NodePool.
    pub pool: String,
    /// What disrupting it costs: 1 for the node, plus its pods' eviction costs.
    pub disruption: f64,
}

/// What happens to the nodes a command takes away.
#[derive(Debug, Clone)]
pub enum Action {
    /// Their pods fit on the other nodes as they are: delete them.
    Delete,
    /// Their pods need this one new node, cheaper than they are together.
    Replace(NewClaim),
}

/// A consolidation decision.
#[derive(Debug, Clone)]
pub struct Command {
    /// The NodeClaims that go.
    pub claims: Vec<String>,
    /// Deleted, or replaced by one cheaper node.
    pub action: Action,
    /// What the cluster saves per hour.
    pub saving: f64,
    /// How many pods move.
    pub pods: usize,
    /// The pods that move onto the other nodes: (`namespace/name`, node).
    pub moves: Vec<(String, String)>,
}

impl Command {
    /// `single` or `multi`, as metrics label the kind of consolidation.
    pub fn kind(&self) -> &'static str {
        if self.claims.len() > 1 {
            "multi"
        } else {
            "single"
        }
    }
}

/// What makes a replacement worth its disruption.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The least a replacement must save per hour.
    pub min_saving: f64,
    /// Whether sets of spot nodes only may be replaced.
    pub spot_to_spot: bool,
    /// The Balanced NodePools' scoring, when there are any.
    pub balanced: Option<Arc<Balanced>>,
}

impl Rules {
    /// Whether the Balanced pools among `set`'s approve a move saving `saving`.
    fn balanced_approve(&self, set: &[&Movable], saving: f64) -> Result<(), Refusal> {
        let Some(balanced) = &self.balanced else {
            return Ok(());
        };
        let mut shares: BTreeMap<String, PoolShare> = BTreeMap::new();
        for m in set {
            let share = shares.entry(m.pool.clone()).or_default();
            share.price += m.price;
            share.disruption += m.disruption;
        }
        balanced.approve(saving, &shares)
    }
}

/// Whether the nodes in `set` can go together: deleted when their pods fit
/// on the other nodes, else replaced by one node cheaper (by at least the
/// minimum saving) than all of them. The error says why not.
pub fn evaluate(world: &World, set: &[&Movable], rules: &Rules) -> Result<Command, Refusal> {
    let pods: Vec<PodInfo> = set.iter().flat_map(|m| m.pods.iter().cloned()).collect();
    let leaving: Vec<&str> = set.iter().map(|m| m.node.as_str()).collect();
    let price: f64 = set.iter().map(|m| m.price).sum();
    let command = |action, saving, moves| Command {
        claims: set.iter().map(|m| m.claim.clone()).collect(),
        action,
        saving,
        pods: pods.len(),
        moves,
    };
    let no_room = match world.place(&pods, &leaving, Launch::Nothing) {
        Ok(placed) => {
            rules.balanced_approve(set, price)?;
            return Ok(command(Action::Delete, price, placed.nominations));
        }
        Err(why) => why,
    };
    if set.iter().all(|m| m.spot) && !rules.spot_to_spot {
        return Err(format!(
            "{no_room}; spot nodes are replaced only with SpotToSpotConsolidation"
        )
        .into());
    }
    let ceiling = price - rules.min_saving;
    let placed = world.place(&pods, &leaving, Launch::OneCheaperThan(ceiling))?;
    let [planned] = placed.claims.as_slice() else {
        return Err(format!("their pods need {} new nodes", placed.claims.len()).into());
    };
    let cheaper = cheaper_than(world, planned, ceiling).ok_or_else(|| {
        format!(
            "no option saves ${:.4}/h on ${price:.4}/h",
            rules.min_saving
        )
    })?;
    let saving = price - cheaper.price;
    rules.balanced_approve(set, saving)?;
    Ok(command(
        Action::Replace(cheaper),
        saving,
        placed.nominations,
    ))
}

/// The planned claim with its instance types cut to those whose cheapest
/// allowed offering costs less than `ceiling`, cheapest first; `None` when
/// none does.
fn cheaper_than(world: &World, planned: &NewClaim, ceiling: f64) -> Option<NewClaim> {
    let pool = world.pools().iter().find(|p| p.name == planned.pool)?;
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
    let &(_, price) = cheaper.first()?;
    let mut planned = planned.clone();
    planned.instance_types = cheaper.into_iter().map(|(name, _)| name).collect();
    planned.price = price;
    Some(planned)
}

/// The most nodes, from the front of `ordered`, that can go together (two
/// at least), by binary search over the prefix length.
pub fn multi_node(world: &World, ordered: &[&Movable], rules: &Rules) -> Option<Command> {
    let mut low = 2;
    let mut high = ordered.len().min(MULTI_NODE_MAX);
    let mut best = None;
    while low <= high {
        let mid = low + (high - low) / 2;
        match evaluate(world, &ordered[..mid], rules) {
            Ok(command) => {
                best = Some(command);
                low = mid + 1;
            }
            Err(_) => high = mid - 1,
        }
    }
    best
}

/// The first of `ordered` that can go on its own.
pub fn single_node<'a>(
    world: &World,
    ordered: impl IntoIterator<Item = &'a Movable>,
    rules: &Rules,
) -> Option<Command> {
    ordered
        .into_iter()
        .find_map(|m| evaluate(world, &[m], rules).ok())
}

/// A pass's decision: the most nodes from the front of `multi` that can go
/// together, else the first of `single` that can go on its own.
pub fn decide<'a>(
    world: &World,
    multi: &[&Movable],
    single: impl IntoIterator<Item = &'a Movable>,
    rules: &Rules,
) -> Option<Command> {
    multi_node(world, multi, rules).or_else(|| single_node(world, single, rules))
}

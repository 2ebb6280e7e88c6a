//! The cluster as the scheduling engine sees it when disruption asks
//! "where would these pods go?": the registered nodes with what is left on
//! them, and the NodePools to launch from. Built once per pass and shared
//! by every question the pass asks (building it reads every pod); the
//! questions themselves need no API, so benchmarks ask them too.

use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::controllers::provisioning::{existing_nodes, pools};
use crate::scheduling::{ExistingNode, NewClaim, PodInfo, Pool, Resources, Solution, solve_on};

/// What a placement may launch for the pods that do not fit elsewhere.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Launch {
    /// Nothing: the other nodes must hold them.
    Nothing,
    /// Whatever the NodePools allow.
    Any,
    /// At most one new node, and only if an instance type that holds what
    /// goes onto it costs less than this per hour.
    OneCheaperThan(f64),
}

/// The registered nodes and the NodePools.
pub struct World {
    nodes: Vec<ExistingNode>,
    pools: Vec<Pool>,
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

    /// The least CPU and the least memory any of the pods asks for (each on
    /// its own): a node with less room left than this holds none of them.
    fn smallest_of(pods: &[PodInfo]) -> Room {
        let least = |f: fn(&PodInfo) -> i64| pods.iter().map(f).min().unwrap_or(0);
        Room {
            cpu_milli: least(|p| p.requests.cpu_milli),
            memory: least(|p| p.requests.memory),
            pods: i64::from(!pods.is_empty()),
        }
    }

    fn plus(self, other: Room) -> Room {
        Room {
            cpu_milli: self.cpu_milli + other.cpu_milli,
            memory: self.memory + other.memory,
            pods: self.pods + other.pods,
        }
    }

    /// What is left of `self` once `other` is taken (never below nothing).
    fn less(self, other: Room) -> Room {
        Room {
            cpu_milli: (self.cpu_milli - other.cpu_milli).max(0),
            memory: (self.memory - other.memory).max(0),
            pods: (self.pods - other.pods).max(0),
        }
    }

    fn holds(&self, asked: &Room) -> bool {
        asked.cpu_milli <= self.cpu_milli && asked.memory <= self.memory && asked.pods <= self.pods
    }
}

impl World {
    /// A world of these nodes and NodePools.
    pub fn new(nodes: Vec<ExistingNode>, pools: Vec<Pool>) -> Self {
        World { nodes, pools }
    }

    /// The cluster now. NodeClaims still launching are left out: a node
    /// that may never come is no place to move pods to.
    pub async fn now<C: CloudProvider>(ctx: &Context<C>) -> Self {
        let claims = ctx.state.claims.state();
        let nodes = existing_nodes(ctx, &[], &claims);
        World::new(nodes, pools(ctx, &claims).await)
    }

    /// The nodes.
    pub fn nodes(&self) -> &[ExistingNode] {
        &self.nodes
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

    /// Where `pods` would go once the nodes named in `leaving` are gone:
    /// onto the other nodes (the solution's nominations) and, as `launch`
    /// allows, new NodeClaims. The error says why they cannot all be placed.
    pub fn place(
        &self,
        pods: &[PodInfo],
        leaving: &[&str],
        launch: Launch,
    ) -> Result<Solution, super::Refusal> {
        let asked = Room::asked_by(pods);
        // Bounds first: most questions in a busy cluster fail them, and they
        // save a solve against every node. Room counts only on nodes that
        // could take the smallest pod (a full cluster's crumbs hold none).
        let others: Vec<&ExistingNode> = self
            .nodes
            .iter()
            .filter(|n| !leaving.contains(&n.name.as_str()))
            .collect();
        let smallest = Room::smallest_of(pods);
        let elsewhere = others
            .iter()
            .map(|n| Room::left_on(n))
            .filter(|room| room.holds(&smallest))
            .fold(Room::default(), Room::plus);
        match launch {
            Launch::Nothing if !elsewhere.holds(&asked) => {
                return Err("the other nodes have too little room left".into());
            }
            Launch::OneCheaperThan(ceiling)
                if self
                    .cheapest_for(&asked.less(elsewhere))
                    .is_none_or(|floor| floor >= ceiling) =>
            {
                return Err(format!(
                    "no instance type that holds what does not fit elsewhere costs less than ${ceiling:.4}/h"
                )
                .into());
            }
            _ => {}
        }
        let pools = match launch {
            Launch::Nothing => Vec::new(),
            Launch::Any | Launch::OneCheaperThan(_) => self.pools.clone(),
        };
        let mut solution = solve_on(pods, &others, pools);
        if matches!(launch, Launch::OneCheaperThan(_)) && solution.claims.len() > 1 {
            // Several small nodes can cost less than one holding them all
            // (small types are often cheaper per CPU); solve again with
            // only the types that can hold everything those would.
            solution = solve_on(pods, &others, self.pools_holding(&solution.claims));
        }
        match solution.unschedulable.first() {
            Some((pod, why)) => Err(format!("{pod} fits nowhere: {why}").into()),
            None => Ok(solution),
        }
    }

    /// The NodePools cut to the instance types with room for everything
    /// `claims` would hold together.
    fn pools_holding(&self, claims: &[NewClaim]) -> Vec<Pool> {
        let mut together = Resources::default();
        for claim in claims {
            together.add(&claim.requests);
        }
        let mut pools = self.pools.clone();
        for pool in &mut pools {
            pool.candidates.retain(|c| together.fits_in(&c.allocatable));
        }
        pools
    }
}

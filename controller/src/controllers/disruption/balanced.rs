//! `consolidationPolicy: Balanced`, with upstream v1.14's scoring: a move
//! that disrupts occupied nodes is made only when the share of its NodePool's
//! hourly cost it saves is at least half the share of the pool's disruption
//! it causes.
//!
//! - A node's disruption cost is 1 (the node itself) plus the eviction costs
//!   of the pods a drain would move ([`super::eviction_cost`]).
//! - A pool's totals: the hourly prices of its candidate nodes (upstream
//!   uses its cluster-wide cost tracker and falls back to the same sum) and
//!   the disruption costs of all its nodes.
//! - score = (saving / pool cost) / (move's disruption / pool disruption);
//!   approved when score >= 1 / [`BALANCED_K`]. A move across pools is
//!   scored in each Balanced pool with the saving split by the pools' share
//!   of the price of the nodes that go; every Balanced pool must approve.
//!   Pools under other policies are not scored.
//!
//! Empty nodes are not scored (emptiness removes them, as upstream).

use super::Refusal;
use karpenter_api::v1::BALANCED_K;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Upstream's per-node base disruption cost.
pub const NODE_BASE_COST: f64 = 1.0;

/// A Balanced NodePool's totals, the denominators of its scores.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PoolTotals {
    /// Hourly price of its nodes.
    pub cost: f64,
    /// Disruption cost of its nodes.
    pub disruption: f64,
}

/// One scored move in one pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// The NodePool.
    pub pool: String,
    /// (saving / pool cost) / (disruption / pool disruption); infinite for a
    /// move that disrupts nothing, 0 for one that saves nothing.
    pub value: f64,
    /// Whether the score reaches the threshold.
    pub approved: bool,
}

/// The part of a move that falls in one pool: the price of its nodes there
/// and their disruption cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolShare {
    /// Hourly price of the move's nodes in the pool.
    pub price: f64,
    /// Disruption cost of the move's nodes in the pool.
    pub disruption: f64,
}

/// The Balanced pools' totals, and the scores of the moves looked at (for
/// the `karpenter_consolidation_*` metrics, taken by [`Balanced::take_scores`]).
#[derive(Debug, Default)]
pub struct Balanced {
    totals: BTreeMap<String, PoolTotals>,
    scores: Mutex<Vec<Score>>,
}

/// The threshold a score must reach.
pub fn threshold() -> f64 {
    1.0 / f64::from(BALANCED_K)
}

/// A move's score in a pool; `None` when the pool's totals are zero (nothing
/// to measure against: the move is refused, as upstream refuses it).
pub fn score(saving: f64, disruption: f64, totals: PoolTotals) -> Option<f64> {
    if totals.cost <= 0.0 || totals.disruption <= 0.0 {
        return None;
    }
    let saving_fraction = saving / totals.cost;
    let disruption_fraction = disruption / totals.disruption;
    Some(if saving_fraction <= 0.0 {
        0.0
    } else if disruption_fraction == 0.0 {
        f64::INFINITY
    } else {
        saving_fraction / disruption_fraction
    })
}

impl Balanced {
    /// Scoring for the pools in `totals` (the Balanced ones).
    pub fn new(totals: BTreeMap<String, PoolTotals>) -> Self {
        Balanced {
            totals,
            scores: Mutex::new(Vec::new()),
        }
    }

    /// Whether `pool` is scored.
    pub fn scores_pool(&self, pool: &str) -> bool {
        self.totals.contains_key(pool)
    }

    /// Whether deleting a node outright (the best any move on it can do)
    /// would pass; candidates that cannot are not looked at (upstream's
    /// pre-filter). Unscored pools always pass.
    pub fn can_pass(&self, pool: &str, price: f64, disruption: f64) -> bool {
        match self.totals.get(pool) {
            None => true,
            Some(totals) if totals.cost <= 0.0 => true,
            Some(&totals) => score(price, disruption, totals).is_some_and(|s| s >= threshold()),
        }
    }

    /// Scores a move saving `saving` an hour whose nodes fall in the pools
    /// of `shares`; `Err` says which pool refused it and why.
    pub fn approve(
        &self,
        saving: f64,
        shares: &BTreeMap<String, PoolShare>,
    ) -> Result<(), Refusal> {
        let total_price: f64 = shares.values().map(|s| s.price).sum();
        let mut refusals = Vec::new();
        for (pool, share) in shares {
            let Some(&totals) = self.totals.get(pool) else {
                continue;
            };
            let pool_saving = if shares.len() > 1 && total_price > 0.0 {
                saving * share.price / total_price
            } else {
                saving
            };
            let value = score(pool_saving, share.disruption, totals);
            let approved = value.is_some_and(|v| v >= threshold());
            self.scores.lock().expect("scores").push(Score {
                pool: pool.clone(),
                value: value.unwrap_or(0.0),
                approved,
            });
            if !approved {
                refusals.push(format!(
                    "NodePool {pool} is Balanced: saving ${pool_saving:.4}/h of ${:.4}/h for {:.1} of its {:.1} disruption scores {:.2}, under {:.2}",
                    totals.cost,
                    share.disruption,
                    totals.disruption,
                    value.unwrap_or(0.0),
                    threshold()
                ));
            }
        }
        if refusals.is_empty() {
            Ok(())
        } else {
            Err(Refusal(refusals.join("; ")))
        }
    }

    /// The scores recorded since the last call.
    pub fn take_scores(&self) -> Vec<Score> {
        std::mem::take(&mut *self.scores.lock().expect("scores"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(cost: f64, disruption: f64) -> PoolTotals {
        PoolTotals { cost, disruption }
    }

    #[test]
    fn a_move_is_approved_when_its_saving_share_is_half_its_disruption_share() {
        // 10 nodes at $1/h with 5 pods each: cost 10, disruption 60.
        let pool = totals(10.0, 60.0);
        // Deleting one node (1 + 5 pods): saves 10% for 10% of the disruption.
        assert_eq!(score(1.0, 6.0, pool), Some(1.0));
        // Replacing it by one at $0.60/h: 4% for 10% scores 0.4, refused.
        let s = score(0.4, 6.0, pool).unwrap();
        assert!((s - 0.4).abs() < 1e-9 && s < threshold());
        // By one at $0.50/h: 5% for 10%, exactly the threshold, approved.
        assert!(score(0.5, 6.0, pool).unwrap() >= threshold());
        assert_eq!(score(0.0, 6.0, pool), Some(0.0));
        assert_eq!(score(1.0, 0.0, pool), Some(f64::INFINITY));
        assert_eq!(score(1.0, 6.0, totals(0.0, 60.0)), None);
    }

    #[test]
    fn every_balanced_pool_of_a_move_must_approve_its_share() {
        let balanced = Balanced::new(BTreeMap::from([
            ("a".to_string(), totals(10.0, 60.0)),
            ("b".to_string(), totals(2.0, 60.0)),
        ]));
        let share = |price, disruption| PoolShare { price, disruption };
        // Pool c is not Balanced: its share is not scored.
        let shares = BTreeMap::from([
            ("a".to_string(), share(1.0, 6.0)),
            ("c".to_string(), share(1.0, 40.0)),
        ]);
        // $1/h saved, half of it attributed to a: 5% for 10%: approved.
        assert_eq!(balanced.approve(1.0, &shares), Ok(()));
        let shares = BTreeMap::from([
            ("a".to_string(), share(1.0, 6.0)),
            ("b".to_string(), share(1.0, 30.0)),
        ]);
        // b: $0.50 of $2 (25%) for 50% of its disruption: 0.5, approved;
        // a: 5% for 10%: approved.
        assert_eq!(balanced.approve(1.0, &shares), Ok(()));
        // Saving $0.80: both score 0.4.
        let refused = balanced.approve(0.8, &shares).unwrap_err();
        assert!(refused.0.starts_with("NodePool a is Balanced"), "{refused}");
        assert!(refused.0.contains("; NodePool b is Balanced"), "{refused}");
        let scores = balanced.take_scores();
        assert_eq!(scores.len(), 5);
        assert_eq!(scores.iter().filter(|s| !s.approved).count(), 2);
        assert!(balanced.take_scores().is_empty());
    }

    #[test]
    fn the_pre_filter_passes_what_a_delete_would_pass() {
        let balanced = Balanced::new(BTreeMap::from([("a".to_string(), totals(10.0, 60.0))]));
        assert!(balanced.can_pass("a", 1.0, 6.0));
        assert!(!balanced.can_pass("a", 0.2, 6.0));
        assert!(balanced.can_pass("other", 0.0, 100.0));
    }
}

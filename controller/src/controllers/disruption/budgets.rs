//! Disruption budgets: how many of a NodePool's nodes may be disrupted at
//! once for a reason, by upstream's rules.
//!
//! - A budget without `reasons` applies to every reason.
//! - `nodes` is a count (`5`) or a percentage of the pool's nodes (`10%`,
//!   rounded up).
//! - A budget with `schedule` + `duration` applies only from each scheduled
//!   time (cron, UTC) until `duration` later; one without applies always.
//! - The most restrictive applicable budget wins; without any the pool's
//!   default (`nodes: 10%`) applies.
//! - A budget that cannot be read (bad count, schedule or duration) allows
//!   nothing: a typo must block disruption, never open the gates.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use karpenter_api::v1::{Budget, NodePool};
use std::fmt;

/// Why a node is disrupted, as budgets name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The node runs no workload pods.
    Empty,
    /// Its pods fit elsewhere, or on a cheaper node.
    Underutilized,
    /// It no longer matches its NodePool or EC2NodeClass.
    Drifted,
}

impl Reason {
    /// The name budgets and metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Empty => "Empty",
            Reason::Underutilized => "Underutilized",
            Reason::Drifted => "Drifted",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The budget a NodePool without budgets gets (upstream's default).
const DEFAULT_NODES: &str = "10%";

/// How many of `pool`'s `nodes` may be disrupted at once for `reason` at
/// `now` (nodes already being disrupted count against it). An unreadable
/// budget yields the error and allows nothing.
pub fn allowed(
    pool: &NodePool,
    reason: Reason,
    nodes: usize,
    now: Timestamp,
) -> Result<usize, karpenter_api::Invalid> {
    let budgets = pool
        .spec
        .disruption
        .as_ref()
        .and_then(|d| d.budgets.as_ref());
    let Some(budgets) = budgets.filter(|b| !b.is_empty()) else {
        return Ok(node_count(DEFAULT_NODES, nodes)?);
    };
    let mut allowed = usize::MAX;
    for (i, budget) in budgets.iter().enumerate() {
        let applies = budget
            .reasons
            .as_ref()
            .is_none_or(|r| r.iter().any(|r| r == reason.as_str()));
        if !applies {
            continue;
        }
        let limit = active(budget, now)
            .and_then(|active| {
                if active {
                    node_count(budget.nodes.as_deref().unwrap_or(DEFAULT_NODES), nodes)
                } else {
                    Ok(usize::MAX)
                }
            })
            .map_err(|e| format!("spec.disruption.budgets[{i}]: {e}"))?;
        allowed = allowed.min(limit);
    }
    Ok(allowed)
}

/// Whether `budget` applies at `now`: always without a schedule, else from
/// a scheduled time until `duration` after it.
fn active(budget: &Budget, now: Timestamp) -> Result<bool, String> {
    let (schedule, duration) = match (&budget.schedule, &budget.duration) {
        (None, None) => return Ok(true),
        (Some(schedule), Some(duration)) => (schedule, duration),
        _ => return Err("schedule and duration must be set together".into()),
    };
    let cron = karpenter_api::schedule::parse(schedule).map_err(|e| format!("schedule: {e}"))?;
    let duration =
        karpenter_api::duration::parse_budget(duration).map_err(|e| format!("duration: {e}"))?;
    let Ok(last) = cron.find_previous_occurrence(&now.to_zoned(TimeZone::UTC), true) else {
        // No scheduled time ever came before now.
        return Ok(false);
    };
    let since = now.duration_since(last.timestamp());
    Ok(!since.is_negative() && since.unsigned_abs() < duration)
}

/// A budget's `nodes` as a count of `total`: a number, or a percentage
/// rounded up.
fn node_count(nodes: &str, total: usize) -> Result<usize, String> {
    let rule = "nodes: must be a count such as 5 or a percentage from 0% to 100%";
    match nodes.strip_suffix('%') {
        Some(percent) => {
            let percent: usize = percent
                .parse()
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| format!("{rule} (got {nodes:?})"))?;
            Ok((total * percent).div_ceil(100))
        }
        None => nodes.parse().map_err(|_| format!("{rule} (got {nodes:?})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pool(budgets: serde_json::Value) -> NodePool {
        serde_json::from_value(json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
            "metadata": {"name": "p"},
            "spec": {
                "template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"}, "requirements": []}},
                "disruption": {"budgets": budgets},
            },
        }))
        .unwrap()
    }

    fn on(day: i8, hour: i8, minute: i8) -> Timestamp {
        jiff::civil::date(2026, 11, day)
            .at(hour, minute, 0, 0)
            .to_zoned(TimeZone::UTC)
            .unwrap()
            .timestamp()
    }

    /// A time on Monday 2026-11-23.
    fn at(hour: i8, minute: i8) -> Timestamp {
        on(23, hour, minute)
    }

    #[test]
    fn without_budgets_ten_percent_rounded_up() {
        let p = pool(json!([]));
        assert_eq!(allowed(&p, Reason::Empty, 0, at(12, 0)), Ok(0));
        assert_eq!(allowed(&p, Reason::Empty, 1, at(12, 0)), Ok(1));
        assert_eq!(allowed(&p, Reason::Empty, 25, at(12, 0)), Ok(3));
    }

    #[test]
    fn the_most_restrictive_applicable_budget_wins() {
        let p = pool(json!([
            {"nodes": "50%"},
            {"nodes": "3"},
            {"nodes": "1", "reasons": ["Drifted"]},
        ]));
        assert_eq!(allowed(&p, Reason::Empty, 20, at(12, 0)), Ok(3));
        assert_eq!(allowed(&p, Reason::Drifted, 20, at(12, 0)), Ok(1));
        assert_eq!(allowed(&p, Reason::Underutilized, 4, at(12, 0)), Ok(2));
    }

    #[test]
    fn a_scheduled_budget_applies_only_inside_its_window() {
        // Nothing on weekdays from 09:00 for 8 hours.
        let p = pool(json!([
            {"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h"},
            {"nodes": "100%"},
        ]));
        assert_eq!(allowed(&p, Reason::Empty, 10, at(8, 59)), Ok(10));
        assert_eq!(allowed(&p, Reason::Empty, 10, at(9, 0)), Ok(0));
        assert_eq!(allowed(&p, Reason::Empty, 10, at(16, 59)), Ok(0));
        assert_eq!(allowed(&p, Reason::Empty, 10, at(17, 0)), Ok(10));
        let sunday = on(22, 12, 0);
        assert_eq!(allowed(&p, Reason::Empty, 10, sunday), Ok(10));
    }

    #[test]
    fn an_unreadable_budget_blocks_and_says_which() {
        for (budget, field) in [
            (json!({"nodes": "ten"}), "nodes"),
            (json!({"nodes": "150%"}), "nodes"),
            (
                json!({"nodes": "1", "schedule": "61 * * * *", "duration": "1h"}),
                "schedule",
            ),
            (
                json!({"nodes": "1", "schedule": "@daily", "duration": "1d"}),
                "duration",
            ),
            (json!({"nodes": "1", "schedule": "@daily"}), "together"),
        ] {
            let p = pool(json!([budget, {"nodes": "100%"}]));
            let error = allowed(&p, Reason::Empty, 10, at(12, 0)).unwrap_err();
            assert!(
                error.0.starts_with("spec.disruption.budgets[0]") && error.0.contains(field),
                "{error}"
            );
        }
        // A budget for another reason is not read for this one.
        let p = pool(json!([{"nodes": "ten", "reasons": ["Drifted"]}]));
        assert_eq!(allowed(&p, Reason::Empty, 10, at(12, 0)), Ok(usize::MAX));
    }
}

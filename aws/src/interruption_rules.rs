//! The EventBridge rules that feed the interruption queue: one per event
//! kind the controller's interruption parser understands (upstream's five).
//! The bootstrap creates them, the controller's tests against moto too; a
//! test beside the parser (`controllers::interruption` in
//! `karpenter-controller`) checks every rule delivers a kind it reads.

use serde_json::{Value, json};

/// One EventBridge rule with the interruption queue as its target.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRule {
    /// Appended to the rule name (`Karpenter-<cluster>-<suffix>`).
    pub suffix: &'static str,
    /// What the rule is for, as its description.
    pub description: &'static str,
    /// The event pattern.
    pub pattern: Value,
}

impl EventRule {
    /// The rule's name for a cluster, within EventBridge's 64 characters
    /// (a long cluster name is shortened, keeping the suffix whole).
    pub fn name(&self, cluster: &str) -> String {
        let budget = 64 - "Karpenter--".len() - self.suffix.len();
        let cluster: String = cluster.chars().take(budget).collect();
        format!("Karpenter-{cluster}-{}", self.suffix)
    }
}

/// The five rules: AWS Health scheduled changes and the four `aws.ec2` kinds.
pub fn event_rules() -> Vec<EventRule> {
    let ec2 = |detail_type: &str| json!({"source": ["aws.ec2"], "detail-type": [detail_type]});
    vec![
        EventRule {
            suffix: "ScheduledChange",
            description: "AWS Health scheduled changes for EC2 instances",
            pattern: json!({"source": ["aws.health"], "detail-type": ["AWS Health Event"]}),
        },
        EventRule {
            suffix: "SpotInterruption",
            description: "EC2 spot interruption warnings (two minutes' notice)",
            pattern: ec2("EC2 Spot Instance Interruption Warning"),
        },
        EventRule {
            suffix: "Rebalance",
            description: "EC2 instance rebalance recommendations",
            pattern: ec2("EC2 Instance Rebalance Recommendation"),
        },
        EventRule {
            suffix: "InstanceStateChange",
            description: "EC2 instance state changes",
            pattern: ec2("EC2 Instance State-change Notification"),
        },
        EventRule {
            suffix: "CapacityReservationInterruption",
            description: "EC2 capacity reservation interruption warnings",
            pattern: ec2("EC2 Capacity Reservation Instance Interruption Warning"),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_eventbridge_limits() {
        let long = "c".repeat(100);
        for rule in event_rules() {
            let name = rule.name(&long);
            assert!(name.len() <= 64, "{name}");
            assert!(name.ends_with(rule.suffix));
            assert_eq!(rule.name("demo"), format!("Karpenter-demo-{}", rule.suffix));
        }
    }
}

//! Voluntary disruption (budgets, decisions, consolidation) and interruption.

use super::{Counters, FloatCounters, Gauges, Histograms, Registrar, duration_buckets};
use prometheus_client::metrics::histogram::Histogram;

/// Upstream's buckets around the Balanced threshold (0.5).
fn score_buckets() -> Histogram {
    Histogram::new([0.1, 0.25, 0.33, 0.5, 1.0, 2.0, 5.0, 10.0])
}

/// Disruption and interruption metrics.
pub struct DisruptionMetrics {
    /// `karpenter_voluntary_disruption_decisions_total{decision,reason,consolidation_type}`.
    pub decisions: Counters,
    /// `karpenter_voluntary_disruption_decisions_by_nodepool_total{nodepool,decision,reason,consolidation_type}`.
    pub decisions_by_nodepool: Counters,
    /// `karpenter_voluntary_disruption_eligible_nodes{reason}`.
    pub eligible_nodes: Gauges,
    /// `karpenter_voluntary_disruption_decision_evaluation_duration_seconds{reason,consolidation_type}`.
    pub evaluation_duration: Histograms,
    /// `karpenter_voluntary_disruption_consolidation_timeouts_total{consolidation_type}`.
    pub consolidation_timeouts: Counters,
    /// `karpenter_voluntary_disruption_failed_validations_total{consolidation_type}`:
    /// decisions dropped when validated again.
    pub failed_validations: Counters,
    /// `karpenter_voluntary_disruption_queue_failures_total{decision,reason,consolidation_type}`:
    /// decisions whose execution failed (a replacement that never initialized).
    pub queue_failures: Counters,
    /// `karpenter_nodepools_allowed_disruptions{nodepool,reason}`.
    pub allowed_disruptions: Gauges,
    /// `karpenter_nodepools_nodes_consuming_budgets{nodepool,reason}`: nodes being disrupted.
    pub nodes_consuming_budgets: Gauges,
    /// `karpenter_consolidation_moves_total{decision,nodepool,policy}`.
    pub consolidation_moves: Counters,
    /// `karpenter_consolidation_score{decision,nodepool,policy}`: Balanced scores.
    pub consolidation_score: Histograms,
    /// `karpenter_disruption_estimated_savings_dollars_per_hour_total{nodepool}`
    /// (not upstream): hourly prices of the nodes disruption removed.
    pub savings: FloatCounters,
    /// `karpenter_interruption_received_messages_total{message_type}`.
    pub interruption_received: Counters,
    /// `karpenter_interruption_deleted_messages_total`.
    pub interruption_deleted: Counters,
    /// `karpenter_interruption_message_queue_duration_seconds`: sent to handled.
    pub interruption_queue_duration: Histograms,
    /// `karpenter_interruption_instance_status_unhealthy_total{category}`:
    /// EC2 scheduled-change and status events (`instance`, `system`).
    pub instance_status_unhealthy: Counters,
}

impl DisruptionMetrics {
    /// Registers the group.
    pub fn register(r: &mut Registrar) -> Self {
        DisruptionMetrics {
            decisions: r.counter(
                "karpenter_voluntary_disruption_decisions",
                "Number of disruption decisions performed, by decision, reason and consolidation type",
                &["decision", "reason", "consolidation_type"],
            ),
            decisions_by_nodepool: r.counter(
                "karpenter_voluntary_disruption_decisions_by_nodepool",
                "Number of disruption decisions performed, by NodePool, decision, reason and consolidation type",
                &["nodepool", "decision", "reason", "consolidation_type"],
            ),
            eligible_nodes: r.gauge(
                "karpenter_voluntary_disruption_eligible_nodes",
                "Number of nodes eligible for disruption by Karpenter, by disruption reason",
                &["reason"],
            ),
            evaluation_duration: r.histogram(
                "karpenter_voluntary_disruption_decision_evaluation_duration_seconds",
                "Duration of the disruption decision evaluation process in seconds",
                &["reason", "consolidation_type"],
                duration_buckets,
            ),
            consolidation_timeouts: r.counter(
                "karpenter_voluntary_disruption_consolidation_timeouts",
                "Number of times the consolidation algorithm has reached a timeout, by consolidation type",
                &["consolidation_type"],
            ),
            failed_validations: r.counter(
                "karpenter_voluntary_disruption_failed_validations",
                "Number of candidates that were selected for disruption but failed validation",
                &["consolidation_type"],
            ),
            queue_failures: r.counter(
                "karpenter_voluntary_disruption_queue_failures",
                "The number of times that an enqueued disruption decision failed",
                &["decision", "reason", "consolidation_type"],
            ),
            allowed_disruptions: r.gauge(
                "karpenter_nodepools_allowed_disruptions",
                "The number of nodes for a given NodePool that can be concurrently disrupting, by reason",
                &["nodepool", "reason"],
            ),
            nodes_consuming_budgets: r.gauge(
                "karpenter_nodepools_nodes_consuming_budgets",
                "The number of nodes for a given NodePool that are being disrupted, by reason",
                &["nodepool", "reason"],
            ),
            consolidation_moves: r.counter(
                "karpenter_consolidation_moves",
                "Number of consolidation moves, by decision, NodePool and policy",
                &["decision", "nodepool", "policy"],
            ),
            consolidation_score: r.histogram(
                "karpenter_consolidation_score",
                "Score of Balanced consolidation moves, by decision, NodePool and policy",
                &["decision", "nodepool", "policy"],
                score_buckets,
            ),
            savings: r.float_counter(
                "karpenter_disruption_estimated_savings_dollars_per_hour",
                "Hourly prices of the nodes disruption removed, by NodePool",
                &["nodepool"],
            ),
            interruption_received: r.counter(
                "karpenter_interruption_received_messages",
                "Count of messages received from the SQS queue, by message type",
                &["message_type"],
            ),
            interruption_deleted: r.counter(
                "karpenter_interruption_deleted_messages",
                "Count of messages deleted from the SQS queue",
                &[],
            ),
            interruption_queue_duration: r.histogram(
                "karpenter_interruption_message_queue_duration_seconds",
                "Amount of time an interruption message is on the queue before it is processed by karpenter",
                &[],
                duration_buckets,
            ),
            instance_status_unhealthy: r.counter(
                "karpenter_interruption_instance_status_unhealthy",
                "Count of unhealthy instance status events, by category",
                &["category"],
            ),
        }
    }
}

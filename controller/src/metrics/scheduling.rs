//! The scheduler: how long a scheduling round takes, what waits, what cannot schedule.

use super::{Gauges, Histograms, Registrar, duration_buckets};

/// The `controller` label value of the provisioner's scheduler.
pub const PROVISIONER: &str = "provisioner";

/// Scheduler metrics.
pub struct SchedulingMetrics {
    /// `karpenter_scheduler_scheduling_duration_seconds{controller}`: one scheduling round.
    pub duration: Histograms,
    /// `karpenter_scheduler_queue_depth{controller,scheduling_id}`: pods waiting in the round.
    pub queue_depth: Gauges,
    /// `karpenter_scheduler_unfinished_work_seconds{controller,scheduling_id}`: how long the round has run.
    pub unfinished_work: super::FloatGauges,
    /// `karpenter_scheduler_unschedulable_pods_count{controller}`: pods the last round could place nowhere.
    pub unschedulable_pods: Gauges,
    /// `karpenter_scheduler_ignored_pods_count`: pending pods the provisioner does not consider.
    pub ignored_pods: Gauges,
    /// `karpenter_scheduler_pending_pods_by_effective_zone_count{controller,zone}`.
    pub pending_pods_by_zone: Gauges,
    /// `karpenter_pods_scheduling_decision_duration_seconds`: pod seen to scheduling decision.
    pub decision_duration: Histograms,
}

impl SchedulingMetrics {
    /// Registers the group.
    pub fn register(r: &mut Registrar) -> Self {
        SchedulingMetrics {
            duration: r.histogram(
                "karpenter_scheduler_scheduling_duration_seconds",
                "Duration of the scheduling simulation used for deprovisioning and provisioning decisions",
                &["controller"],
                duration_buckets,
            ),
            queue_depth: r.gauge(
                "karpenter_scheduler_queue_depth",
                "The number of pods currently waiting to be scheduled",
                &["controller", "scheduling_id"],
            ),
            unfinished_work: r.float_gauge(
                "karpenter_scheduler_unfinished_work_seconds",
                "How many seconds of work has been done that is in progress and hasn't been considered in the scheduling duration",
                &["controller", "scheduling_id"],
            ),
            unschedulable_pods: r.gauge(
                "karpenter_scheduler_unschedulable_pods_count",
                "The number of unschedulable pods in the last scheduling round",
                &["controller"],
            ),
            ignored_pods: r.gauge(
                "karpenter_scheduler_ignored_pods_count",
                "Number of pods ignored during scheduling by Karpenter",
                &[],
            ),
            pending_pods_by_zone: r.gauge(
                "karpenter_scheduler_pending_pods_by_effective_zone_count",
                "The number of pending pods by the zone their requirements allow (any when unconstrained)",
                &["controller", "zone"],
            ),
            decision_duration: r.histogram(
                "karpenter_pods_scheduling_decision_duration_seconds",
                "The time from when Karpenter first sees a pending pod until it decides where it goes",
                &[],
                duration_buckets,
            ),
        }
    }
}

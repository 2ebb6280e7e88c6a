//! NodeClaims, Nodes and pods from creation to termination.

use super::summary::Summaries;
use super::{Counters, Histograms, Registrar, duration_buckets};
use super::{seconds_to_17_minutes, seconds_to_34_minutes};
use prometheus_client::metrics::histogram::Histogram;

/// 15 minutes to 30 days (upstream's node lifetime buckets).
fn lifetime_buckets() -> Histogram {
    const HOUR: f64 = 3600.0;
    const DAY: f64 = 24.0 * HOUR;
    Histogram::new([
        0.25 * HOUR,
        0.5 * HOUR,
        0.75 * HOUR,
        HOUR,
        2.0 * HOUR,
        4.0 * HOUR,
        6.0 * HOUR,
        8.0 * HOUR,
        10.0 * HOUR,
        12.0 * HOUR,
        16.0 * HOUR,
        20.0 * HOUR,
        DAY,
        2.0 * DAY,
        3.0 * DAY,
        5.0 * DAY,
        10.0 * DAY,
        15.0 * DAY,
        20.0 * DAY,
        25.0 * DAY,
        30.0 * DAY,
    ])
}

/// NodeClaim, Node and pod lifecycle metrics.
pub struct LifecycleMetrics {
    /// `karpenter_nodeclaims_created_total{reason,nodepool,min_values_relaxed}`
    /// (`reason`: `provisioned`, or the disruption reason of a replacement).
    pub nodeclaims_created: Counters,
    /// `karpenter_nodeclaims_terminated_total{nodepool,capacity_type,zone}`.
    pub nodeclaims_terminated: Counters,
    /// `karpenter_nodeclaims_disrupted_total{reason,nodepool,capacity_type}`.
    pub nodeclaims_disrupted: Counters,
    /// `karpenter_nodeclaims_termination_duration_seconds{nodepool}`: deletion to finalizer removed.
    pub nodeclaims_termination_duration: Histograms,
    /// `karpenter_nodeclaims_instance_termination_duration_seconds{nodepool}`:
    /// terminate call to the instance gone.
    pub nodeclaims_instance_termination_duration: Histograms,
    /// `karpenter_nodeclaims_unhealthy_disrupted_total{condition,nodepool,capacity_type,image_id}`:
    /// node repair, which this project refuses (`NodeRepair`), so always empty.
    pub nodeclaims_unhealthy_disrupted: Counters,
    /// `karpenter_nodes_created_total{nodepool,zone}`: Nodes that registered.
    pub nodes_created: Counters,
    /// `karpenter_nodes_terminated_total{nodepool,zone}`.
    pub nodes_terminated: Counters,
    /// `karpenter_nodes_drained_total{nodepool}`.
    pub nodes_drained: Counters,
    /// `karpenter_nodes_termination_duration_seconds{nodepool}`: deletion to finalizer removed.
    pub nodes_termination_duration: Summaries,
    /// `karpenter_nodes_lifetime_duration_seconds{nodepool}`: creation to termination.
    pub nodes_lifetime_duration: Histograms,
    /// `karpenter_pods_startup_duration_seconds`: pod creation to Running.
    pub pods_startup_duration: Summaries,
    /// `karpenter_pods_bound_duration_seconds`: pod creation to bound.
    pub pods_bound_duration: Histograms,
    /// `karpenter_pods_provisioning_bound_duration_seconds`: for pods Karpenter provisioned for.
    pub pods_provisioning_bound_duration: Histograms,
    /// `karpenter_pods_provisioning_startup_duration_seconds`: likewise, to Running.
    pub pods_provisioning_startup_duration: Histograms,
    /// `karpenter_pods_drained_total{reason}`: pods evicted by a drain.
    pub pods_drained: Counters,
    /// `karpenter_pods_eviction_requests_total{code}`: eviction calls by HTTP status.
    pub pods_eviction_requests: Counters,
}

impl LifecycleMetrics {
    /// Registers the group.
    pub fn register(r: &mut Registrar) -> Self {
        LifecycleMetrics {
            nodeclaims_created: r.counter(
                "karpenter_nodeclaims_created",
                "Number of nodeclaims created in total by Karpenter, by reason, NodePool and whether minValues were relaxed",
                &["reason", "nodepool", "min_values_relaxed"],
            ),
            nodeclaims_terminated: r.counter(
                "karpenter_nodeclaims_terminated",
                "Number of nodeclaims terminated in total by Karpenter, by NodePool, capacity type and zone",
                &["nodepool", "capacity_type", "zone"],
            ),
            nodeclaims_disrupted: r.counter(
                "karpenter_nodeclaims_disrupted",
                "Number of nodeclaims disrupted in total by Karpenter, by reason, NodePool and capacity type",
                &["reason", "nodepool", "capacity_type"],
            ),
            nodeclaims_termination_duration: r.histogram(
                "karpenter_nodeclaims_termination_duration_seconds",
                "Duration of NodeClaim termination, from deletion to the finalizer's removal",
                &["nodepool"],
                seconds_to_34_minutes,
            ),
            nodeclaims_instance_termination_duration: r.histogram(
                "karpenter_nodeclaims_instance_termination_duration_seconds",
                "Duration of the cloud provider instance's termination",
                &["nodepool"],
                seconds_to_17_minutes,
            ),
            nodeclaims_unhealthy_disrupted: r.counter(
                "karpenter_nodeclaims_unhealthy_disrupted",
                "Number of unhealthy nodeclaims disrupted by node repair (not built here: always empty)",
                &["condition", "nodepool", "capacity_type", "image_id"],
            ),
            nodes_created: r.counter(
                "karpenter_nodes_created",
                "Number of nodes created in total by Karpenter, by NodePool and zone",
                &["nodepool", "zone"],
            ),
            nodes_terminated: r.counter(
                "karpenter_nodes_terminated",
                "Number of nodes terminated in total by Karpenter, by NodePool and zone",
                &["nodepool", "zone"],
            ),
            nodes_drained: r.counter(
                "karpenter_nodes_drained",
                "Number of nodes drained in total by Karpenter, by NodePool",
                &["nodepool"],
            ),
            nodes_termination_duration: r.summary(
                "karpenter_nodes_termination_duration_seconds",
                "The time taken between a node's deletion request and the removal of its finalizer",
                &["nodepool"],
            ),
            nodes_lifetime_duration: r.histogram(
                "karpenter_nodes_lifetime_duration_seconds",
                "The lifetime duration of the nodes since creation",
                &["nodepool"],
                lifetime_buckets,
            ),
            pods_startup_duration: r.summary(
                "karpenter_pods_startup_duration_seconds",
                "The time from pod creation until the pod is running",
                &[],
            ),
            pods_bound_duration: r.histogram(
                "karpenter_pods_bound_duration_seconds",
                "The time from pod creation until the pod is bound",
                &[],
                duration_buckets,
            ),
            pods_provisioning_bound_duration: r.histogram(
                "karpenter_pods_provisioning_bound_duration_seconds",
                "The time from when Karpenter first thinks the pod can schedule until it binds",
                &[],
                duration_buckets,
            ),
            pods_provisioning_startup_duration: r.histogram(
                "karpenter_pods_provisioning_startup_duration_seconds",
                "The time from when Karpenter first thinks the pod can schedule until the pod is running",
                &[],
                duration_buckets,
            ),
            pods_drained: r.counter(
                "karpenter_pods_drained",
                "Number of pods drained in total by Karpenter, by reason",
                &["reason"],
            ),
            pods_eviction_requests: r.counter(
                "karpenter_pods_eviction_requests",
                "The number of pod eviction requests, by HTTP response code",
                &["code"],
            ),
        }
    }
}

//! Gauges recomputed from the cluster state (upstream's metrics
//! controllers): every node's resources, the cluster's utilization, each
//! NodePool's usage and limits, every pod's state, and whether the state is
//! synced. [`StateMetrics::replace`] swaps a whole family's series at once,
//! so a deleted node or pod leaves no stale series behind.

use super::{FloatCounters, FloatGauges, Gauges, Labels, Registrar};
use karpenter_api::labels;

/// The well-known labels node series carry, each with its label name: the
/// name part in snake case (`topology.kubernetes.io/zone` -> `zone`), as
/// upstream names them (computed once).
pub fn node_label_keys() -> Vec<(&'static str, &'static str)> {
    static KEYS: std::sync::OnceLock<Vec<(&'static str, &'static str)>> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(well_known_label_names).clone()
}

fn well_known_label_names() -> Vec<(&'static str, &'static str)> {
    let mut keys: Vec<&'static str> = labels::CORE_WELL_KNOWN.to_vec();
    keys.extend(labels::AWS_WELL_KNOWN);
    keys.extend([
        labels::INSTANCE_TENANCY,
        labels::CAPACITY_RESERVATION_INTERRUPTIBLE,
        labels::PLACEMENT_GROUP_ID,
        labels::PLACEMENT_GROUP_PARTITION,
    ]);
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for key in keys {
        let name = metric_label_name(key);
        if !out.iter().any(|(_, n)| *n == name) {
            out.push((key, name));
        }
    }
    out
}

/// `karpenter.k8s.aws/instance-cpu` -> `instance_cpu`, as a static name
/// (called once per well-known label).
fn metric_label_name(key: &'static str) -> &'static str {
    let name = key.rsplit('/').next().unwrap_or(key);
    if name.contains('-') {
        Box::leak(name.replace('-', "_").into_boxed_str())
    } else {
        name
    }
}

/// The node-series label names, without and with `resource_type` (computed once).
fn node_label_names(with_resource: bool) -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let mut names: Vec<&'static str> = node_label_keys().into_iter().map(|(_, n)| n).collect();
        names.extend(["node_name", "node_phase", "managed", "resource_type"]);
        names
    });
    if with_resource {
        names
    } else {
        &names[..names.len() - 1]
    }
}

/// The pod-series label names (upstream's `pods_state`).
pub const POD_LABELS: &[&str] = &[
    "name",
    "namespace",
    "owner",
    "node",
    "scheduled",
    "nodepool",
    "zone",
    "arch",
    "capacity_type",
    "instance_type",
    "phase",
    "ready",
    "managed",
];

/// Gauges of the cluster state.
pub struct StateMetrics {
    /// `karpenter_nodes_allocatable{<node labels>,resource_type}`.
    pub nodes_allocatable: FloatGauges,
    /// `karpenter_nodes_system_overhead`: capacity minus allocatable.
    pub nodes_system_overhead: FloatGauges,
    /// `karpenter_nodes_total_pod_requests`: requests of the node's pods (DaemonSet pods too).
    pub nodes_pod_requests: FloatGauges,
    /// `karpenter_nodes_total_pod_limits`.
    pub nodes_pod_limits: FloatGauges,
    /// `karpenter_nodes_total_daemon_requests`: requests of its DaemonSet pods.
    pub nodes_daemon_requests: FloatGauges,
    /// `karpenter_nodes_total_daemon_limits`.
    pub nodes_daemon_limits: FloatGauges,
    /// `karpenter_nodes_current_lifetime_seconds{<node labels>}`.
    pub nodes_lifetime: FloatGauges,
    /// `karpenter_cluster_utilization_percent{resource_type}`: pod requests over allocatable.
    pub cluster_utilization: FloatGauges,
    /// `karpenter_cluster_state_node_count`.
    pub node_count: Gauges,
    /// `karpenter_cluster_state_synced`: 1 once every cache has listed.
    pub synced: Gauges,
    /// `karpenter_cluster_state_unsynced_time_seconds`: how long it has not been.
    pub unsynced_time: FloatGauges,
    /// `karpenter_nodepools_usage{resource_type,nodepool}`.
    pub nodepools_usage: FloatGauges,
    /// `karpenter_nodepools_limit{resource_type,nodepool}`.
    pub nodepools_limit: FloatGauges,
    /// `karpenter_nodepools_cost_total{nodepool}`: hourly price of the pool's nodes.
    pub nodepools_cost: FloatGauges,
    /// `karpenter_nodepools_cost_tracker_errors_total{nodepool}`: nodes whose price is unknown.
    pub nodepools_cost_errors: FloatCounters,
    /// `karpenter_pods_state{<pod labels>}`.
    pub pods_state: Gauges,
    /// `karpenter_pods_unbound_time_seconds{name,namespace}`: pending pods, since creation.
    pub pods_unbound_time: FloatGauges,
    /// `karpenter_pods_unstarted_time_seconds{name,namespace}`: bound, not yet running.
    pub pods_unstarted_time: FloatGauges,
    /// `karpenter_pods_provisioning_unbound_time_seconds{name,namespace}`: since Karpenter first saw it pending.
    pub pods_provisioning_unbound_time: FloatGauges,
    /// `karpenter_pods_provisioning_unstarted_time_seconds{name,namespace}`.
    pub pods_provisioning_unstarted_time: FloatGauges,
    /// `karpenter_pods_provisioning_scheduling_undecided_time_seconds{name,namespace}`:
    /// pending pods no scheduling round has decided yet.
    pub pods_scheduling_undecided_time: FloatGauges,
    /// `karpenter_ec2nodeclasses_userdata_bytes{nodeclass}`: size of the last user data generated.
    pub userdata_bytes: Gauges,
}

impl StateMetrics {
    /// Registers the group.
    pub fn register(r: &mut Registrar) -> Self {
        let node = node_label_names(false);
        let node_resource = node_label_names(true);
        let pod_time = &["name", "namespace"];
        let pool_resource = &["resource_type", "nodepool"];
        StateMetrics {
            nodes_allocatable: r.float_gauge(
                "karpenter_nodes_allocatable",
                "Node allocatable are the resources allocatable by nodes",
                node_resource,
            ),
            nodes_system_overhead: r.float_gauge(
                "karpenter_nodes_system_overhead",
                "Node system daemon overhead are the resources reserved for system overhead, the difference between the node's capacity and allocatable values are reported by the status",
                node_resource,
            ),
            nodes_pod_requests: r.float_gauge(
                "karpenter_nodes_total_pod_requests",
                "Node total pod requests are the resources requested by pods bound to nodes, including the DaemonSet pods",
                node_resource,
            ),
            nodes_pod_limits: r.float_gauge(
                "karpenter_nodes_total_pod_limits",
                "Node total pod limits are the resources specified by pod limits, including the DaemonSet pods",
                node_resource,
            ),
            nodes_daemon_requests: r.float_gauge(
                "karpenter_nodes_total_daemon_requests",
                "Node total daemon requests are the resource requested by DaemonSet pods bound to nodes",
                node_resource,
            ),
            nodes_daemon_limits: r.float_gauge(
                "karpenter_nodes_total_daemon_limits",
                "Node total daemon limits are the resources specified by DaemonSet pod limits",
                node_resource,
            ),
            nodes_lifetime: r.float_gauge(
                "karpenter_nodes_current_lifetime_seconds",
                "Node age in seconds",
                node,
            ),
            cluster_utilization: r.float_gauge(
                "karpenter_cluster_utilization_percent",
                "Utilization of allocatable resources by pod requests",
                &["resource_type"],
            ),
            node_count: r.gauge(
                "karpenter_cluster_state_node_count",
                "Current count of nodes in cluster state",
                &[],
            ),
            synced: r.gauge(
                "karpenter_cluster_state_synced",
                "Returns 1 if cluster state is synced and 0 otherwise",
                &[],
            ),
            unsynced_time: r.float_gauge(
                "karpenter_cluster_state_unsynced_time_seconds",
                "The time for which cluster state is not synced",
                &[],
            ),
            nodepools_usage: r.float_gauge(
                "karpenter_nodepools_usage",
                "The amount of resources that have been provisioned for a NodePool",
                pool_resource,
            ),
            nodepools_limit: r.float_gauge(
                "karpenter_nodepools_limit",
                "Limits specified on the NodePool that restrict the quantity of resources provisioned",
                pool_resource,
            ),
            nodepools_cost: r.float_gauge(
                "karpenter_nodepools_cost_total",
                "The hourly price of a NodePool's nodes",
                &["nodepool"],
            ),
            nodepools_cost_errors: r.float_counter(
                "karpenter_nodepools_cost_tracker_errors",
                "Nodes of a NodePool whose price could not be found",
                &["nodepool"],
            ),
            pods_state: r.gauge(
                "karpenter_pods_state",
                "Pod state is the current state of pods",
                POD_LABELS,
            ),
            pods_unbound_time: r.float_gauge(
                "karpenter_pods_unbound_time_seconds",
                "The time from pod creation until the pod is bound",
                pod_time,
            ),
            pods_unstarted_time: r.float_gauge(
                "karpenter_pods_unstarted_time_seconds",
                "The time from pod creation until the pod is running",
                pod_time,
            ),
            pods_provisioning_unbound_time: r.float_gauge(
                "karpenter_pods_provisioning_unbound_time_seconds",
                "The time from when Karpenter first thinks the pod can schedule until it binds",
                pod_time,
            ),
            pods_provisioning_unstarted_time: r.float_gauge(
                "karpenter_pods_provisioning_unstarted_time_seconds",
                "The time from when Karpenter first thinks the pod can schedule until the pod is running",
                pod_time,
            ),
            pods_scheduling_undecided_time: r.float_gauge(
                "karpenter_pods_provisioning_scheduling_undecided_time_seconds",
                "The time from when Karpenter has seen a pod without making a scheduling decision for it",
                pod_time,
            ),
            userdata_bytes: r.gauge(
                "karpenter_ec2nodeclasses_userdata_bytes",
                "The size of the user data Karpenter generated for an EC2NodeClass",
                &["nodeclass"],
            ),
        }
    }
}

/// Replaces every series of a float-gauge family with `series`.
pub fn replace(family: &FloatGauges, series: impl IntoIterator<Item = (Labels, f64)>) {
    family.clear();
    for (labels, value) in series {
        family.get_or_create(&labels).set(value);
    }
}

/// Replaces every series of a gauge family with `series`.
pub fn replace_whole(family: &Gauges, series: impl IntoIterator<Item = (Labels, i64)>) {
    family.clear();
    for (labels, value) in series {
        family.get_or_create(&labels).set(value);
    }
}

/// `ephemeral-storage` -> `ephemeral_storage`, as upstream labels resources.
pub fn resource_label(resource: &str) -> String {
    resource.to_lowercase().replace('-', "_")
}

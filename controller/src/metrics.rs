//! Prometheus metrics under upstream Karpenter's names, so dashboards and
//! alerts carry over: NodeClaims and Nodes created and terminated, pod startup
//! and scheduling durations, interruption messages, cloud-provider calls.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

/// Label pairs of one series.
pub type Labels = Vec<(&'static str, String)>;

type Counters = Family<Labels, Counter>;
type Gauges = Family<Labels, Gauge>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

fn duration_buckets() -> Histogram {
    // 5 ms .. ~80 s
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

fn startup_buckets() -> Histogram {
    // 1 s .. ~17 min
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    /// Every family's exposed name and type, as registered.
    families: Vec<(String, &'static str)>,
    /// The `provider` label of cloud-provider metrics (`aws`, `simulated`).
    provider: &'static str,
    /// `karpenter_nodeclaims_created_total{reason,nodepool,capacity_type}`.
    pub nodeclaims_created: Counters,
    /// `karpenter_nodeclaims_terminated_total{reason,nodepool,capacity_type}`.
    pub nodeclaims_terminated: Counters,
    /// `karpenter_nodes_created_total{nodepool}`.
    pub nodes_created: Counters,
    /// `karpenter_nodes_terminated_total{nodepool}`.
    pub nodes_terminated: Counters,
    /// `karpenter_pods_startup_duration_seconds`: pod creation to Running.
    pub pods_startup_duration: Histogram,
    /// `karpenter_provisioner_scheduling_duration_seconds`.
    pub scheduling_duration: Histogram,
    /// `karpenter_interruption_received_messages_total{message_type}`.
    pub interruption_received: Counters,
    /// `karpenter_interruption_deleted_messages_total`.
    pub interruption_deleted: Counter,
    /// `karpenter_interruption_message_queue_duration_seconds`: sent to handled.
    pub interruption_queue_duration: Histogram,
    /// `karpenter_interruption_actions_performed_total{action}`.
    pub interruption_actions: Counters,
    /// `karpenter_cloudprovider_duration_seconds{method,provider}`.
    pub cloudprovider_duration: Histograms,
    /// `karpenter_cloudprovider_errors_total{method,provider,error}`.
    pub cloudprovider_errors: Counters,
    /// `karpenter_pods_evicted_total{reason}` (not upstream: evictions by outcome).
    pub pods_evicted: Counters,
    /// `karpenter_leader` (not upstream): 1 while this replica leads.
    pub leader: Gauge,
    /// `karpenter_voluntary_disruption_decisions_total{decision,reason,consolidation_type}`.
    pub disruption_decisions: Counters,
    /// `karpenter_voluntary_disruption_eligible_nodes{reason}`.
    pub disruption_eligible_nodes: Gauges,
    /// `karpenter_nodepools_allowed_disruptions{nodepool,reason}`.
    pub allowed_disruptions: Gauges,
    /// `karpenter_nodeclaims_disrupted_total{reason,nodepool,capacity_type}`.
    pub nodeclaims_disrupted: Counters,
    /// `karpenter_voluntary_disruption_decision_evaluation_duration_seconds`:
    /// one disruption pass, from the caches to the decisions.
    pub disruption_evaluation_duration: Histogram,
    /// `karpenter_disruption_estimated_savings_dollars_per_hour_total{nodepool}`
    /// (not upstream): hourly prices of the nodes disruption removed.
    pub disruption_savings: Family<Labels, Counter<f64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new("aws")
    }
}

impl Metrics {
    /// A registry with every metric registered; `provider` labels cloud calls.
    pub fn new(provider: &'static str) -> Self {
        let mut registry = Registry::default();
        let m = Metrics {
            registry: Registry::default(),
            families: Vec::new(),
            provider,
            nodeclaims_created: Counters::default(),
            nodeclaims_terminated: Counters::default(),
            nodes_created: Counters::default(),
            nodes_terminated: Counters::default(),
            pods_startup_duration: startup_buckets(),
            scheduling_duration: duration_buckets(),
            interruption_received: Counters::default(),
            interruption_deleted: Counter::default(),
            interruption_queue_duration: duration_buckets(),
            interruption_actions: Counters::default(),
            cloudprovider_duration: Histograms::new_with_constructor(duration_buckets),
            cloudprovider_errors: Counters::default(),
            pods_evicted: Counters::default(),
            leader: Gauge::default(),
            disruption_decisions: Counters::default(),
            disruption_eligible_nodes: Gauges::default(),
            allowed_disruptions: Gauges::default(),
            nodeclaims_disrupted: Counters::default(),
            disruption_savings: Family::default(),
            disruption_evaluation_duration: duration_buckets(),
        };
        let mut families = Vec::new();
        // Registers a family and remembers its exposed name and type (a
        // family without series yet is not in the text output).
        macro_rules! reg {
            ($name:expr, $help:expr, $kind:expr, $metric:expr) => {{
                let exposed = if $kind == "counter" {
                    format!("{}_total", $name)
                } else {
                    $name.to_string()
                };
                families.push((exposed, $kind));
                registry.register($name, $help, $metric);
            }};
        }
        reg!(
            "karpenter_nodeclaims_created",
            "NodeClaims created, by reason and NodePool",
            "counter",
            m.nodeclaims_created.clone()
        );
        reg!(
            "karpenter_nodeclaims_terminated",
            "NodeClaims terminated, by reason and NodePool",
            "counter",
            m.nodeclaims_terminated.clone()
        );
        reg!(
            "karpenter_nodes_created",
            "Nodes that registered",
            "counter",
            m.nodes_created.clone()
        );
        reg!(
            "karpenter_nodes_terminated",
            "Nodes terminated",
            "counter",
            m.nodes_terminated.clone()
        );
        reg!(
            "karpenter_pods_startup_duration_seconds",
            "Time from pod creation until the pod is running",
            "histogram",
            m.pods_startup_duration.clone()
        );
        reg!(
            "karpenter_provisioner_scheduling_duration_seconds",
            "Duration of one scheduling simulation",
            "histogram",
            m.scheduling_duration.clone()
        );
        reg!(
            "karpenter_interruption_received_messages",
            "Interruption messages received, by type",
            "counter",
            m.interruption_received.clone()
        );
        reg!(
            "karpenter_interruption_deleted_messages",
            "Interruption messages deleted from the queue",
            "counter",
            m.interruption_deleted.clone()
        );
        reg!(
            "karpenter_interruption_message_queue_duration_seconds",
            "Time from the event until the controller handled its message",
            "histogram",
            m.interruption_queue_duration.clone()
        );
        reg!(
            "karpenter_interruption_actions_performed",
            "Actions taken on interruption messages",
            "counter",
            m.interruption_actions.clone()
        );
        reg!(
            "karpenter_cloudprovider_duration_seconds",
            "Duration of cloud-provider calls",
            "histogram",
            m.cloudprovider_duration.clone()
        );
        reg!(
            "karpenter_cloudprovider_errors",
            "Cloud-provider calls that failed",
            "counter",
            m.cloudprovider_errors.clone()
        );
        reg!(
            "karpenter_pods_evicted",
            "Pod evictions requested while draining, by outcome",
            "counter",
            m.pods_evicted.clone()
        );
        reg!(
            "karpenter_leader",
            "1 while this replica holds the leader Lease",
            "gauge",
            m.leader.clone()
        );
        reg!(
            "karpenter_voluntary_disruption_decisions",
            "Disruption decisions acted on, by decision, reason and consolidation type",
            "counter",
            m.disruption_decisions.clone()
        );
        reg!(
            "karpenter_voluntary_disruption_eligible_nodes",
            "Nodes that may be disrupted now, by reason",
            "gauge",
            m.disruption_eligible_nodes.clone()
        );
        reg!(
            "karpenter_nodepools_allowed_disruptions",
            "Nodes a NodePool's budgets let be disrupted now, by reason",
            "gauge",
            m.allowed_disruptions.clone()
        );
        reg!(
            "karpenter_nodeclaims_disrupted",
            "NodeClaims disrupted, by reason, NodePool and capacity type",
            "counter",
            m.nodeclaims_disrupted.clone()
        );
        reg!(
            "karpenter_voluntary_disruption_decision_evaluation_duration_seconds",
            "Time one disruption pass takes to reach its decisions",
            "histogram",
            m.disruption_evaluation_duration.clone()
        );
        reg!(
            "karpenter_disruption_estimated_savings_dollars_per_hour",
            "Hourly prices of the nodes disruption removed, by NodePool",
            "counter",
            m.disruption_savings.clone()
        );
        Metrics {
            registry,
            families,
            ..m
        }
    }

    /// Every metric family: its exposed name (counters end `_total`) and
    /// type, whether or not it has series yet.
    pub fn families(&self) -> &[(String, &'static str)] {
        &self.families
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Times a cloud-provider call and counts its error, if any.
    pub async fn cloud_call<T, E: std::fmt::Debug>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let start = Instant::now();
        let result = call.await;
        self.cloudprovider_duration
            .get_or_create(&vec![
                ("method", method.into()),
                ("provider", self.provider.into()),
            ])
            .observe(start.elapsed().as_secs_f64());
        if let Err(e) = &result {
            let kind = format!("{e:?}");
            let kind = kind.split(['(', ' ', '{']).next().unwrap_or("Unknown");
            self.cloudprovider_errors
                .get_or_create(&vec![
                    ("method", method.into()),
                    ("provider", self.provider.into()),
                    ("error", kind.to_string()),
                ])
                .inc();
        }
        result
    }
}

/// Metrics shared by every controller.
pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn exposes_upstream_names() {
        let m = Metrics::new("aws");
        m.nodeclaims_created
            .get_or_create(&vec![
                ("reason", "provisioning".into()),
                ("nodepool", "default".into()),
            ])
            .inc();
        let _ = m
            .cloud_call("Create", async {
                Err::<(), _>(crate::cloud::CloudError::NotFound("i-1".into()))
            })
            .await;
        let text = m.encode();
        assert!(
            text.contains(
                "karpenter_nodeclaims_created_total{reason=\"provisioning\",nodepool=\"default\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("karpenter_cloudprovider_errors_total{method=\"Create\",provider=\"aws\",error=\"NotFound\"} 1"),
            "{text}"
        );
        assert!(text.contains("karpenter_provisioner_scheduling_duration_seconds_bucket"));
    }
}

//! Prometheus metrics under upstream Karpenter's names, types and labels, so
//! dashboards and alerts carry over. One group per concern:
//!
//! - [`lifecycle`]: NodeClaims, Nodes and pods from creation to termination;
//! - [`scheduling`]: the scheduler's queue and durations;
//! - [`disruption`]: voluntary disruption, consolidation and interruption;
//! - [`cloud`]: cloud-provider calls, launch failures, instance types;
//! - [`state`]: gauges recomputed from the cluster state every few seconds
//!   (nodes, NodePools, pods, cluster utilization).
//!
//! `controller/tests/upstream_contract.rs` compares every family's name,
//! type and label names with upstream v1.14.1's.

pub mod cloud;
pub mod disruption;
pub mod lifecycle;
pub mod runtime;
pub mod scheduling;
pub mod state;
pub mod summary;

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
use summary::Summaries;

/// Label pairs of one series.
pub type Labels = Vec<(&'static str, String)>;

/// A counter family.
pub type Counters = Family<Labels, Counter>;
/// A counter family with fractional values.
pub type FloatCounters = Family<Labels, Counter<f64, AtomicU64>>;
/// A gauge family with whole values.
pub type Gauges = Family<Labels, Gauge>;
/// A gauge family with fractional values.
pub type FloatGauges = Family<Labels, Gauge<f64, AtomicU64>>;
/// A histogram family.
pub type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// Upstream's duration buckets (controller-runtime's, up to 10 minutes).
pub fn duration_buckets() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
        0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0,
        15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 120.0, 150.0, 300.0, 450.0, 600.0,
    ])
}

/// 1 s, 2 s, ... about 17 minutes (upstream's NodeClaim instance termination).
pub fn seconds_to_17_minutes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

/// 1 s, 2 s, ... about 34 minutes (upstream's NodeClaim termination).
pub fn seconds_to_34_minutes() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 12))
}

/// One registered family: its exposed name (counters end `_total`), type
/// and label names.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyInfo {
    /// The name as scraped.
    pub name: String,
    /// `counter`, `gauge`, `histogram` or `summary`.
    pub kind: &'static str,
    /// Its label names, in order.
    pub labels: Vec<&'static str>,
}

/// Registers families and remembers what it registered.
pub struct Registrar {
    registry: Registry,
    families: Vec<FamilyInfo>,
    summaries: Vec<(String, String, Summaries)>,
}

impl Registrar {
    fn note(&mut self, name: String, kind: &'static str, labels: &[&'static str]) {
        self.families.push(FamilyInfo {
            name,
            kind,
            labels: labels.to_vec(),
        });
    }

    /// A counter family named `name` (scraped as `name_total`).
    pub fn counter(&mut self, name: &str, help: &str, labels: &[&'static str]) -> Counters {
        let family = Counters::default();
        self.note(format!("{name}_total"), "counter", labels);
        self.registry.register(name, help, family.clone());
        family
    }

    /// A counter family with fractional values.
    pub fn float_counter(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&'static str],
    ) -> FloatCounters {
        let family = FloatCounters::default();
        self.note(format!("{name}_total"), "counter", labels);
        self.registry.register(name, help, family.clone());
        family
    }

    /// A gauge family with whole values.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[&'static str]) -> Gauges {
        let family = Gauges::default();
        self.note(name.to_string(), "gauge", labels);
        self.registry.register(name, help, family.clone());
        family
    }

    /// A gauge family with fractional values.
    pub fn float_gauge(&mut self, name: &str, help: &str, labels: &[&'static str]) -> FloatGauges {
        let family = FloatGauges::default();
        self.note(name.to_string(), "gauge", labels);
        self.registry.register(name, help, family.clone());
        family
    }

    /// A histogram family with `buckets`.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[&'static str],
        buckets: fn() -> Histogram,
    ) -> Histograms {
        let family = Histograms::new_with_constructor(buckets);
        self.note(name.to_string(), "histogram", labels);
        self.registry.register(name, help, family.clone());
        family
    }

    /// A summary family ([`summary`]).
    pub fn summary(&mut self, name: &str, help: &str, labels: &[&'static str]) -> Summaries {
        let family = Summaries::default();
        self.note(name.to_string(), "summary", labels);
        self.summaries
            .push((name.to_string(), help.to_string(), family.clone()));
        family
    }
}

/// Every metric the controller exports.
pub struct Metrics {
    registry: Registry,
    families: Vec<FamilyInfo>,
    summaries: Vec<(String, String, Summaries)>,
    /// The `provider` label of cloud-provider metrics (`aws`, `simulated`).
    provider: &'static str,
    /// NodeClaims, Nodes and pods from creation to termination.
    pub lifecycle: lifecycle::LifecycleMetrics,
    /// The scheduler.
    pub scheduling: scheduling::SchedulingMetrics,
    /// Voluntary disruption and interruption.
    pub disruption: disruption::DisruptionMetrics,
    /// Cloud-provider calls and instance types.
    pub cloud: cloud::CloudMetrics,
    /// Gauges recomputed from the cluster state.
    pub state: state::StateMetrics,
    /// controller-runtime's reconcile families.
    pub runtime: runtime::RuntimeMetrics,
    /// `leader_election_master_status{name}`: 1 while this replica leads
    /// (controller-runtime's family, which upstream's alerts use).
    pub leader: Gauges,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new("aws")
    }
}

/// The Lease name upstream's leader election reports in `leader_election_master_status`.
pub const LEADER_ELECTION_NAME: &str = "karpenter-leader-election";

impl Metrics {
    /// A registry with every metric registered; `provider` labels cloud calls.
    pub fn new(provider: &'static str) -> Self {
        let mut r = Registrar {
            registry: Registry::default(),
            families: Vec::new(),
            summaries: Vec::new(),
        };
        let build_info = r.gauge(
            "karpenter_build_info",
            "A metric with a constant '1' value labeled by version from which karpenter was built",
            &["version", "goversion", "goarch", "commit"],
        );
        build_info
            .get_or_create(&vec![
                ("version", env!("CARGO_PKG_VERSION").to_string()),
                // Not Go: the Rust edition's toolchain floor stands in.
                (
                    "goversion",
                    format!("rust{}", env!("CARGO_PKG_RUST_VERSION")),
                ),
                ("goarch", std::env::consts::ARCH.to_string()),
                ("commit", env!("KARPENTER_COMMIT").to_string()),
            ])
            .set(1);
        let lifecycle = lifecycle::LifecycleMetrics::register(&mut r);
        let scheduling = scheduling::SchedulingMetrics::register(&mut r);
        let disruption = disruption::DisruptionMetrics::register(&mut r);
        let cloud = cloud::CloudMetrics::register(&mut r);
        let state = state::StateMetrics::register(&mut r);
        let runtime = runtime::RuntimeMetrics::register(&mut r);
        let leader = r.gauge(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name.",
            &["name"],
        );
        Metrics {
            registry: r.registry,
            families: r.families,
            summaries: r.summaries,
            provider,
            lifecycle,
            scheduling,
            disruption,
            cloud,
            state,
            runtime,
            leader,
        }
    }

    /// Every metric family, whether or not it has series yet.
    pub fn families(&self) -> &[FamilyInfo] {
        &self.families
    }

    /// Whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader
            .get_or_create(&vec![("name", LEADER_ELECTION_NAME.to_string())])
            .set(i64::from(leading));
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        let mut summaries = String::new();
        for (name, help, family) in &self.summaries {
            family.encode(name, help, &mut summaries);
        }
        match out.strip_suffix("# EOF\n") {
            Some(body) => format!("{body}{summaries}# EOF\n"),
            None => out + &summaries,
        }
    }

    /// Times a cloud-provider call and counts its error, if any.
    pub async fn cloud_call<T, E: std::fmt::Debug>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let start = Instant::now();
        let result = call.await;
        let labels = |extra: Option<String>| {
            let mut l = vec![
                ("controller", "cloudprovider".to_string()),
                ("method", method.to_string()),
                ("provider", self.provider.to_string()),
            ];
            l.extend(extra.map(|e| ("error", e)));
            l
        };
        self.cloud
            .duration
            .get_or_create(&labels(None))
            .observe(start.elapsed().as_secs_f64());
        if let Err(e) = &result {
            let kind = format!("{e:?}");
            let kind = kind.split(['(', ' ', '{']).next().unwrap_or("Unknown");
            self.cloud
                .errors
                .get_or_create(&labels(Some(kind.to_string())))
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
        m.lifecycle
            .nodeclaims_created
            .get_or_create(&vec![
                ("reason", "provisioned".into()),
                ("nodepool", "default".into()),
                ("min_values_relaxed", "false".into()),
            ])
            .inc();
        let _ = m
            .cloud_call("Create", async {
                Err::<(), _>(crate::cloud::CloudError::NotFound("i-1".into()))
            })
            .await;
        m.lifecycle.pods_startup_duration.observe(&Vec::new(), 12.0);
        m.set_leader(true);
        let text = m.encode();
        for expected in [
            "karpenter_nodeclaims_created_total{reason=\"provisioned\",nodepool=\"default\",min_values_relaxed=\"false\"} 1",
            "karpenter_cloudprovider_errors_total{controller=\"cloudprovider\",method=\"Create\",provider=\"aws\",error=\"NotFound\"} 1",
            "karpenter_pods_startup_duration_seconds{quantile=\"0.5\"} 12",
            "leader_election_master_status{name=\"karpenter-leader-election\"} 1",
            "karpenter_build_info{version=",
        ] {
            assert!(text.contains(expected), "{expected} in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        let names: Vec<&str> = m.families().iter().map(|f| f.name.as_str()).collect();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(names.len(), unique.len(), "a family registered twice");
    }
}

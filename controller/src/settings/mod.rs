//! Controller settings, by upstream Karpenter's environment names (flags as
//! well), validated once at start so a bad value stops the process with a
//! message naming the setting and the rule.

use clap::{Args, ValueEnum};
use std::time::Duration;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log pipelines).
    Json,
    /// Human-readable text.
    Text,
}

/// Which cloud the controller launches capacity in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CloudKind {
    /// EC2 through the AWS SDK (production).
    Aws,
    /// The in-process simulated EC2, which registers a Node for every
    /// instance it starts (like upstream's kwok provider; for load tests).
    /// Served by `karpenter-sim run`; the production binary refuses it.
    Simulated,
}

/// Every setting the controller reads.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Name of the EKS cluster (tags, discovery, user data).
    #[arg(long, env = "CLUSTER_NAME", default_value = "")]
    pub cluster_name: String,
    /// The API server endpoint nodes join (discovered from EKS when empty).
    #[arg(long, env = "CLUSTER_ENDPOINT", default_value = "")]
    pub cluster_endpoint: String,
    /// The cluster CA bundle (base64) nodes trust.
    #[arg(long, env = "CLUSTER_CA_BUNDLE", default_value = "")]
    pub cluster_ca_bundle: String,
    /// SQS queue name for interruption messages; empty disables interruption handling.
    #[arg(long, env = "INTERRUPTION_QUEUE", default_value = "")]
    pub interruption_queue: String,
    /// Close a provisioning batch after this long without a new pending pod.
    #[arg(long, env = "BATCH_IDLE_DURATION", default_value = "1s", value_parser = parse_duration)]
    pub batch_idle_duration: Duration,
    /// Close a provisioning batch after this long at most.
    #[arg(long, env = "BATCH_MAX_DURATION", default_value = "10s", value_parser = parse_duration)]
    pub batch_max_duration: Duration,
    /// Feature gates, `Name=true,Other=false` (upstream's syntax and defaults).
    #[arg(
        long,
        env = "FEATURE_GATES",
        default_value = "NodeRepair=false,ReservedCapacity=true,SpotToSpotConsolidation=false,NodeOverlay=false,StaticCapacity=false,CapacityBuffer=false"
    )]
    pub feature_gates: String,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Port of the Prometheus `/metrics` endpoint.
    #[arg(long, env = "METRICS_PORT", default_value_t = 8080)]
    pub metrics_port: u16,
    /// Port of `/healthz` and `/readyz`.
    #[arg(long, env = "HEALTH_PROBE_PORT", default_value_t = 8081)]
    pub health_probe_port: u16,
    /// Run without leader election (a single replica).
    #[arg(long, env = "DISABLE_LEADER_ELECTION", default_value_t = false)]
    pub disable_leader_election: bool,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "SYSTEM_NAMESPACE", default_value = "kube-system")]
    pub system_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(
        long,
        env = "LEADER_ELECTION_NAME",
        default_value = "karpenter-leader-election"
    )]
    pub leader_election_name: String,
    /// How long a leader holds the Lease without renewing it.
    #[arg(long, env = "LEADER_ELECTION_LEASE_DURATION", default_value = "10s", value_parser = parse_duration)]
    pub leader_election_lease_duration: Duration,
    /// This replica's identity in the Lease (the pod name).
    #[arg(long, env = "POD_NAME", default_value = "")]
    pub pod_name: String,
    /// Fraction of memory the hypervisor keeps (allocatable arithmetic).
    #[arg(long, env = "VM_MEMORY_OVERHEAD_PERCENT", default_value_t = 0.075)]
    pub vm_memory_overhead_percent: f64,
    /// No Internet egress: use the embedded price list instead of the Pricing API.
    #[arg(long, env = "ISOLATED_VPC", default_value_t = false)]
    pub isolated_vpc: bool,
    /// Opt-in (not upstream): replace a node on a rebalance recommendation
    /// as on a spot interruption, instead of only recording an event.
    #[arg(
        long,
        env = "INTERRUPTION_REPLACE_ON_REBALANCE",
        default_value_t = false
    )]
    pub replace_on_rebalance: bool,
    /// The least hourly saving (USD) that makes replacing a node with a
    /// cheaper one worth its disruption (not upstream, which replaces for
    /// any saving and churns for cents).
    #[arg(
        long,
        env = "CONSOLIDATION_MIN_SAVING_PER_HOUR",
        default_value_t = 0.01
    )]
    pub consolidation_min_saving_per_hour: f64,
    /// How often disruption looks for nodes to remove (not upstream, which
    /// polls every 10 s too; tests shorten it).
    #[arg(long, env = "DISRUPTION_POLL_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub disruption_poll_interval: Duration,
    /// Which cloud to launch in.
    #[arg(long, env = "CLOUD_PROVIDER", value_enum, default_value = "aws")]
    pub cloud_provider: CloudKind,
    /// Namespace of the leader-election Lease (empty: `SYSTEM_NAMESPACE`).
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE", default_value = "")]
    pub leader_election_namespace: String,
    /// Requests per second the Kubernetes client makes at most, sustained.
    #[arg(long, env = "KUBE_CLIENT_QPS", default_value_t = 200)]
    pub kube_client_qps: u32,
    /// Requests the Kubernetes client may make at once above `KUBE_CLIENT_QPS`.
    #[arg(long, env = "KUBE_CLIENT_BURST", default_value_t = 300)]
    pub kube_client_burst: u32,
    /// Where logs go: `stdout`, `stderr` or a file path.
    #[arg(long, env = "LOG_OUTPUT_PATHS", default_value = "stdout")]
    pub log_output_paths: String,
    /// Where the logger's own errors go: `stderr`, `stdout` or a file path.
    #[arg(long, env = "LOG_ERROR_OUTPUT_PATHS", default_value = "stderr")]
    pub log_error_output_paths: String,
    /// Network interfaces per node kept out of pod networking: fewer pods
    /// fit under the ENI limit.
    #[arg(long, env = "RESERVED_ENIS", default_value_t = 0)]
    pub reserved_enis: u32,
    /// How often an EC2NodeClass's AMIs are resolved again.
    #[arg(long, env = "AMI_REFRESH_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub ami_refresh_interval: Duration,
    /// How often an EC2NodeClass's subnets and security groups are resolved again.
    #[arg(long, env = "SUBNET_REFRESH_INTERVAL", default_value = "1m", value_parser = parse_duration)]
    pub subnet_refresh_interval: Duration,
    /// The controller's CPU request in millicores: sizes the worker
    /// threads, as upstream sizes `GOMAXPROCS` with it.
    #[arg(long, env = "CPU_REQUESTS", default_value_t = 1000)]
    pub cpu_requests: u32,
    /// Upstream's Go soft memory limit in bytes (`-1`: none). There is no
    /// garbage collector to tune here: accepted, and the start log says so.
    #[arg(long, env = "MEMORY_LIMIT", default_value_t = -1, allow_negative_numbers = true)]
    pub memory_limit: i64,
    /// `Strict`: a NodePool's `minValues` must be met. (`BestEffort`, which
    /// relaxes them, is refused: not supported yet.)
    #[arg(long, env = "MIN_VALUES_POLICY", default_value = "Strict")]
    pub min_values_policy: String,
    /// `Respect`: preferred affinities and topology spreads are honoured
    /// when possible. (`Ignore` is refused: not supported yet.)
    #[arg(long, env = "PREFERENCE_POLICY", default_value = "Respect")]
    pub preference_policy: String,
    /// Upstream validates NodeClasses with EC2 dry runs; none are made
    /// here, so both values behave as `true`.
    #[arg(long, env = "DISABLE_DRY_RUN", default_value_t = false, action = clap::ArgAction::Set)]
    pub disable_dry_run: bool,
    /// Upstream warms controllers before leadership; nothing to warm here,
    /// so both values behave alike.
    #[arg(long, env = "DISABLE_CONTROLLER_WARMUP", default_value_t = true, action = clap::ArgAction::Set)]
    pub disable_controller_warmup: bool,
    /// Upstream's cluster-state metrics switch; accepted, both values behave alike.
    #[arg(long, env = "DISABLE_CLUSTER_STATE_OBSERVABILITY", default_value_t = false, action = clap::ArgAction::Set)]
    pub disable_cluster_state_observability: bool,
    /// The cluster runs an EKS control plane: its Kubernetes version comes
    /// from `eks:DescribeCluster` instead of the API server.
    #[arg(long, env = "EKS_CONTROL_PLANE", default_value_t = false, action = clap::ArgAction::Set)]
    pub eks_control_plane: bool,
    /// Go profiling endpoints; `true` is refused: there are none here.
    #[arg(long, env = "ENABLE_PROFILING", default_value_t = false, action = clap::ArgAction::Set)]
    pub enable_profiling: bool,
    /// Avoid zones under an ARC zonal shift; `true` is refused: not supported yet.
    #[arg(long, env = "ENABLE_ZONAL_SHIFT", default_value_t = false, action = clap::ArgAction::Set)]
    pub enable_zonal_shift: bool,
    /// Pods' dynamic resource (DRA) claims are ignored when scheduling;
    /// `false` is refused: DRA scheduling is not supported yet.
    #[arg(long, env = "IGNORE_DRA_REQUESTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub ignore_dra_requests: bool,
    /// The controller's Service name (upstream names its webhook and
    /// metrics Service with it); accepted, nothing here uses it.
    #[arg(long, env = "KARPENTER_SERVICE", default_value = "")]
    pub karpenter_service: String,
}

mod validate;
pub use validate::{FEATURE_GATES, UNSUPPORTED};

/// A setting that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {setting}: {rule}")]
pub struct SettingsError {
    /// The environment name of the setting.
    pub setting: &'static str,
    /// The rule it broke, with the value.
    pub rule: String,
}

/// Go's duration syntax, as upstream's flags take it (`500ms`, `1.5s`, `1h30m`).
fn parse_duration(text: &str) -> Result<Duration, karpenter_api::Invalid> {
    karpenter_api::duration::parse_go(text)
}

impl Settings {
    /// Settings with every default, for tests and the demo (`cluster` named).
    pub fn defaults(cluster: &str) -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            settings: Settings,
        }
        let mut settings = Wrapper::parse_from(["karpenter-controller"]).settings;
        settings.cluster_name = cluster.to_string();
        settings
    }

    /// The controller-wide settings of the node arithmetic.
    pub fn node_overheads(&self) -> crate::catalog::NodeOverheads {
        crate::catalog::NodeOverheads {
            vm_memory_overhead_percent: self.vm_memory_overhead_percent,
            reserved_enis: self.reserved_enis,
        }
    }

    /// The namespace of the leader-election Lease.
    pub fn lease_namespace(&self) -> &str {
        if self.leader_election_namespace.is_empty() {
            &self.system_namespace
        } else {
            &self.leader_election_namespace
        }
    }

    /// Worker threads: `CPU_REQUESTS` rounded up to whole CPUs, at least one.
    pub fn worker_threads(&self) -> usize {
        (self.cpu_requests as usize).div_ceil(1000).max(1)
    }

    /// How often a NodeClass is resolved again: the shorter of the AMI and
    /// subnet refresh intervals.
    pub fn nodeclass_refresh(&self) -> Duration {
        self.ami_refresh_interval.min(self.subnet_refresh_interval)
    }

    /// This replica's identity for leader election.
    pub fn identity(&self) -> String {
        if self.pod_name.is_empty() {
            format!("karpenter-{}", std::process::id())
        } else {
            self.pod_name.clone()
        }
    }
}

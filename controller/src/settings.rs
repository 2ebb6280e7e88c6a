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
    /// Feature gates, `Name=true,Other=false` (upstream's syntax).
    #[arg(long, env = "FEATURE_GATES", default_value = "")]
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
}

/// A setting that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("setting {setting}: {rule}")]
pub struct SettingsError {
    /// The environment name of the setting.
    pub setting: &'static str,
    /// The rule it broke, with the value.
    pub rule: String,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    karpenter_api::duration::parse(text)
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

    /// Checks every rule; the first broken one is returned.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let fail = |setting, rule: String| Err(SettingsError { setting, rule });
        if self.cluster_name.is_empty() {
            return fail(
                "CLUSTER_NAME",
                "is required (the EKS cluster's name)".into(),
            );
        }
        if self.cluster_name.len() > 100 {
            return fail("CLUSTER_NAME", "must be at most 100 characters".into());
        }
        if self.batch_idle_duration.is_zero() {
            return fail("BATCH_IDLE_DURATION", "must be greater than 0s".into());
        }
        let saving = self.consolidation_min_saving_per_hour;
        if saving.is_nan() || saving < 0.0 {
            return fail(
                "CONSOLIDATION_MIN_SAVING_PER_HOUR",
                format!(
                    "must be a number >= 0 (got {})",
                    self.consolidation_min_saving_per_hour
                ),
            );
        }
        if self.disruption_poll_interval.is_zero() {
            return fail("DISRUPTION_POLL_INTERVAL", "must be greater than 0s".into());
        }
        if self.batch_max_duration < self.batch_idle_duration {
            return fail(
                "BATCH_MAX_DURATION",
                format!(
                    "must be at least BATCH_IDLE_DURATION ({:?}), got {:?}",
                    self.batch_idle_duration, self.batch_max_duration
                ),
            );
        }
        if !self.interruption_queue.is_empty()
            && (self.interruption_queue.len() > 80
                || !self
                    .interruption_queue
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        {
            return fail(
                "INTERRUPTION_QUEUE",
                format!(
                    "{:?} is not an SQS queue name (1-80 of A-Z a-z 0-9 - _)",
                    self.interruption_queue
                ),
            );
        }
        if self.metrics_port != 0 && self.metrics_port == self.health_probe_port {
            return fail(
                "HEALTH_PROBE_PORT",
                format!("must differ from METRICS_PORT ({})", self.metrics_port),
            );
        }
        if !(0.0..1.0).contains(&self.vm_memory_overhead_percent) {
            return fail(
                "VM_MEMORY_OVERHEAD_PERCENT",
                format!("must be in [0, 1), got {}", self.vm_memory_overhead_percent),
            );
        }
        if self.leader_election_lease_duration < Duration::from_secs(2) {
            return fail(
                "LEADER_ELECTION_LEASE_DURATION",
                "must be at least 2s".into(),
            );
        }
        if !self.cluster_ca_bundle.is_empty() {
            use base64::Engine;
            if base64::engine::general_purpose::STANDARD
                .decode(&self.cluster_ca_bundle)
                .is_err()
            {
                return fail("CLUSTER_CA_BUNDLE", "must be base64".into());
            }
        }
        self.feature_gates_parsed().map(|_| ())
    }

    /// `FEATURE_GATES` as (name, enabled) pairs.
    pub fn feature_gates_parsed(&self) -> Result<Vec<(String, bool)>, SettingsError> {
        self.feature_gates
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(|gate| {
                let (name, value) = gate.split_once('=').ok_or_else(|| SettingsError {
                    setting: "FEATURE_GATES",
                    rule: format!("{gate:?} is not Name=true|false"),
                })?;
                let enabled = value.parse::<bool>().map_err(|_| SettingsError {
                    setting: "FEATURE_GATES",
                    rule: format!("{name}: {value:?} is not true or false"),
                })?;
                Ok((name.to_string(), enabled))
            })
            .collect()
    }

    /// Whether a feature gate is on.
    pub fn feature_enabled(&self, name: &str) -> bool {
        self.feature_gates_parsed()
            .unwrap_or_default()
            .iter()
            .any(|(n, on)| n == name && *on)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_upstreams() {
        let s = Settings::defaults("demo");
        assert_eq!(s.batch_idle_duration, Duration::from_secs(1));
        assert_eq!(s.batch_max_duration, Duration::from_secs(10));
        assert_eq!((s.metrics_port, s.health_probe_port), (8080, 8081));
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let mut s = Settings::defaults("");
        assert_eq!(s.validate().unwrap_err().setting, "CLUSTER_NAME");
        s.cluster_name = "demo".into();
        s.batch_max_duration = Duration::from_millis(500);
        let err = s.validate().unwrap_err();
        assert_eq!(err.setting, "BATCH_MAX_DURATION");
        assert!(
            err.to_string().contains("at least BATCH_IDLE_DURATION"),
            "{err}"
        );
        s.batch_max_duration = Duration::from_secs(10);
        s.interruption_queue = "Karpenter demo".into();
        assert_eq!(s.validate().unwrap_err().setting, "INTERRUPTION_QUEUE");
        s.interruption_queue = "Karpenter-demo".into();
        s.feature_gates = "SpotToSpotConsolidation=yes".into();
        let err = s.validate().unwrap_err();
        assert_eq!(err.setting, "FEATURE_GATES");
        assert!(err.rule.contains("SpotToSpotConsolidation"), "{err}");
        s.feature_gates = "SpotToSpotConsolidation=true".into();
        assert!(s.feature_enabled("SpotToSpotConsolidation"));
        s.health_probe_port = 8080;
        assert_eq!(s.validate().unwrap_err().setting, "HEALTH_PROBE_PORT");
        s.health_probe_port = 8081;
        for bad in [-0.5, f64::NAN] {
            s.consolidation_min_saving_per_hour = bad;
            let err = s.validate().unwrap_err();
            assert_eq!(err.setting, "CONSOLIDATION_MIN_SAVING_PER_HOUR", "{err}");
        }
        s.consolidation_min_saving_per_hour = 0.0;
        s.disruption_poll_interval = Duration::ZERO;
        assert_eq!(
            s.validate().unwrap_err().setting,
            "DISRUPTION_POLL_INTERVAL"
        );
    }
}

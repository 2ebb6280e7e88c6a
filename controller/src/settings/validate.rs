//! The rules settings must follow, and upstream's feature gates and
//! settings this project refuses instead of ignoring.

use super::{Settings, SettingsError};
use std::time::Duration;

/// Upstream's feature gates: name, upstream's default, and whether this
/// project has the behaviour (a gate it lacks may only be `false`).
pub const FEATURE_GATES: &[(&str, bool, bool)] = &[
    ("NodeRepair", false, false),
    ("ReservedCapacity", true, true),
    ("SpotToSpotConsolidation", false, true),
    ("NodeOverlay", false, false),
    ("StaticCapacity", false, false),
    ("CapacityBuffer", false, false),
];

/// Upstream settings accepted only at their default (the value refused,
/// and why): listed in the README.
pub const UNSUPPORTED: &[(&str, &str, &str)] = &[
    (
        "MIN_VALUES_POLICY",
        "BestEffort",
        "minValues are always strict",
    ),
    (
        "PREFERENCE_POLICY",
        "Ignore",
        "preferences are always respected",
    ),
    ("ENABLE_PROFILING", "true", "no Go profiling endpoints"),
    (
        "ENABLE_ZONAL_SHIFT",
        "true",
        "ARC zonal shifts are not read",
    ),
    ("IGNORE_DRA_REQUESTS", "false", "no DRA scheduling"),
    (
        "FEATURE_GATES",
        "NodeRepair, NodeOverlay, StaticCapacity, CapacityBuffer =true",
        "those features are not built",
    ),
];

impl Settings {
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
        self.check_upstream_only()?;
        self.check_log_paths()?;
        for (name, enabled) in self.feature_gates_parsed()? {
            let Some((_, _, supported)) = FEATURE_GATES.iter().find(|(n, _, _)| *n == name) else {
                let known: Vec<&str> = FEATURE_GATES.iter().map(|(n, _, _)| *n).collect();
                return fail(
                    "FEATURE_GATES",
                    format!(
                        "unknown feature gate {name:?} (upstream's: {})",
                        known.join(", ")
                    ),
                );
            };
            if enabled && !supported {
                return fail(
                    "FEATURE_GATES",
                    format!(
                        "{name}=true asks for behaviour this project does not have yet; leave it false"
                    ),
                );
            }
        }
        Ok(())
    }

    /// Upstream settings whose non-default value asks for behaviour this
    /// project does not have: refused, never silently ignored.
    fn check_upstream_only(&self) -> Result<(), SettingsError> {
        let refused = |setting: &'static str, value: &str| {
            Err(SettingsError {
                setting,
                rule: format!(
                    "{value} asks for behaviour this project does not have yet (see README, \"Upstream settings not supported\")"
                ),
            })
        };
        match self.min_values_policy.as_str() {
            "Strict" => {}
            "BestEffort" => return refused("MIN_VALUES_POLICY", "BestEffort"),
            other => {
                return Err(SettingsError {
                    setting: "MIN_VALUES_POLICY",
                    rule: format!("must be Strict or BestEffort, got {other:?}"),
                });
            }
        }
        match self.preference_policy.as_str() {
            "Respect" => {}
            "Ignore" => return refused("PREFERENCE_POLICY", "Ignore"),
            other => {
                return Err(SettingsError {
                    setting: "PREFERENCE_POLICY",
                    rule: format!("must be Respect or Ignore, got {other:?}"),
                });
            }
        }
        for (setting, asked) in [
            ("ENABLE_PROFILING", self.enable_profiling),
            ("ENABLE_ZONAL_SHIFT", self.enable_zonal_shift),
            ("IGNORE_DRA_REQUESTS", !self.ignore_dra_requests),
        ] {
            if asked {
                let value = if setting == "IGNORE_DRA_REQUESTS" {
                    "false"
                } else {
                    "true"
                };
                return refused(setting, value);
            }
        }
        if self.kube_client_qps == 0 {
            return Err(SettingsError {
                setting: "KUBE_CLIENT_QPS",
                rule: "must be greater than 0".into(),
            });
        }
        if self.kube_client_burst == 0 {
            return Err(SettingsError {
                setting: "KUBE_CLIENT_BURST",
                rule: "must be at least 1".into(),
            });
        }
        for (setting, interval) in [
            ("AMI_REFRESH_INTERVAL", self.ami_refresh_interval),
            ("SUBNET_REFRESH_INTERVAL", self.subnet_refresh_interval),
        ] {
            if interval < Duration::from_secs(1) {
                return Err(SettingsError {
                    setting,
                    rule: format!("must be at least 1s, got {interval:?}"),
                });
            }
        }
        if self.cpu_requests == 0 {
            return Err(SettingsError {
                setting: "CPU_REQUESTS",
                rule: "must be greater than 0 (millicores)".into(),
            });
        }
        Ok(())
    }

    /// One output each: `stdout`, `stderr` or a file path (upstream takes a
    /// comma-separated list; more than one is refused here).
    fn check_log_paths(&self) -> Result<(), SettingsError> {
        for (setting, value) in [
            ("LOG_OUTPUT_PATHS", &self.log_output_paths),
            ("LOG_ERROR_OUTPUT_PATHS", &self.log_error_output_paths),
        ] {
            let paths: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            if paths.len() != 1 {
                return Err(SettingsError {
                    setting,
                    rule: format!(
                        "must name one output (stdout, stderr or a file path), got {value:?}"
                    ),
                });
            }
        }
        Ok(())
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

    /// Settings as upstream's chart sets them through the environment.
    fn from_env(pairs: &[(&str, &str)]) -> Result<Settings, String> {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            settings: Settings,
        }
        let mut args = vec![
            "karpenter-controller".to_string(),
            "--cluster-name=demo".into(),
        ];
        for (name, value) in pairs {
            let flag = name.to_lowercase().replace('_', "-");
            args.push(format!("--{flag}={value}"));
        }
        Wrapper::try_parse_from(args)
            .map(|w| w.settings)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn go_durations_as_upstream_takes_them() {
        let s = from_env(&[
            ("BATCH_IDLE_DURATION", "500ms"),
            ("BATCH_MAX_DURATION", "1.5s"),
        ])
        .unwrap();
        assert_eq!(s.batch_idle_duration, Duration::from_millis(500));
        assert_eq!(s.batch_max_duration, Duration::from_millis(1500));
        assert_eq!(s.validate(), Ok(()));
        assert!(from_env(&[("BATCH_IDLE_DURATION", "1d")]).is_err());
    }

    #[test]
    fn upstream_settings_asking_for_missing_behaviour_are_refused_by_name() {
        for (setting, value) in [
            ("MIN_VALUES_POLICY", "BestEffort"),
            ("PREFERENCE_POLICY", "Ignore"),
            ("ENABLE_PROFILING", "true"),
            ("ENABLE_ZONAL_SHIFT", "true"),
            ("IGNORE_DRA_REQUESTS", "false"),
            ("FEATURE_GATES", "NodeRepair=true"),
            (
                "FEATURE_GATES",
                "NodeOverlay=true,SpotToSpotConsolidation=true",
            ),
        ] {
            let s = from_env(&[(setting, value)]).unwrap();
            let err = s.validate().unwrap_err();
            assert_eq!(err.setting, setting, "{setting}={value}: {err}");
            assert!(err.rule.contains("does not have yet"), "{err}");
        }
        let err = from_env(&[("FEATURE_GATES", "Teleport=true")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.rule.contains("unknown feature gate"), "{err}");
        let err = from_env(&[("MIN_VALUES_POLICY", "Lenient")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.rule.contains("Strict or BestEffort"), "{err}");
    }

    #[test]
    fn upstream_defaults_and_accepted_values_pass() {
        let s = from_env(&[
            ("FEATURE_GATES", "NodeRepair=false,ReservedCapacity=true,SpotToSpotConsolidation=false,NodeOverlay=false,StaticCapacity=false,CapacityBuffer=false"),
            ("LEADER_ELECTION_NAMESPACE", "karpenter"),
            ("KUBE_CLIENT_QPS", "50"),
            ("KUBE_CLIENT_BURST", "100"),
            ("RESERVED_ENIS", "1"),
            ("MEMORY_LIMIT", "1073741824"),
            ("CPU_REQUESTS", "1500"),
            ("DISABLE_DRY_RUN", "true"),
            ("DISABLE_CONTROLLER_WARMUP", "false"),
            ("AMI_REFRESH_INTERVAL", "5m"),
        ])
        .unwrap();
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.lease_namespace(), "karpenter");
        assert_eq!(s.worker_threads(), 2);
        assert_eq!(s.node_overheads().reserved_enis, 1);
        assert_eq!(s.nodeclass_refresh(), Duration::from_secs(60));
        let err = from_env(&[("LOG_OUTPUT_PATHS", "stdout,/var/log/k.log")])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(err.setting, "LOG_OUTPUT_PATHS");
    }

    #[test]
    fn the_readme_lists_every_refused_setting() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
            .expect("README.md");
        let section = readme
            .split("### Upstream settings not supported")
            .nth(1)
            .expect("the README's section on unsupported settings");
        for (setting, _, _) in UNSUPPORTED {
            assert!(
                section.contains(&format!("`{setting}`")),
                "README misses {setting}"
            );
        }
        for (gate, _, supported) in FEATURE_GATES {
            assert!(
                *supported || section.contains(&format!("`{gate}`")),
                "README misses {gate}"
            );
        }
    }
}

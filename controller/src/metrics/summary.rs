//! Prometheus summaries, which `prometheus-client` does not have: upstream
//! exports `karpenter_pods_startup_duration_seconds` and
//! `karpenter_nodes_termination_duration_seconds` as summaries, and
//! dashboards query their `quantile` series.
//!
//! Quantiles (0, 0.5, 0.9, 0.99, 1, upstream's objectives) are computed over
//! the last [`WINDOW`] observations of a series; `_sum` and `_count` cover
//! all of them.

use super::Labels;
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

/// Observations a series keeps for its quantiles.
pub const WINDOW: usize = 1024;

/// The quantiles exported.
const QUANTILES: [f64; 5] = [0.0, 0.5, 0.9, 0.99, 1.0];

#[derive(Debug, Default)]
struct Series {
    recent: VecDeque<f64>,
    sum: f64,
    count: u64,
}

/// A summary family, by label set.
#[derive(Debug, Clone, Default)]
pub struct Summaries {
    series: Arc<Mutex<BTreeMap<Labels, Series>>>,
}

impl Summaries {
    /// Records one observation in the series of `labels`.
    pub fn observe(&self, labels: &Labels, value: f64) {
        let mut all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        let series = all.entry(labels.clone()).or_default();
        if series.recent.len() == WINDOW {
            series.recent.pop_front();
        }
        series.recent.push_back(value);
        series.sum += value;
        series.count += 1;
    }

    /// The family in the OpenMetrics text format.
    pub(crate) fn encode(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}.");
        let _ = writeln!(out, "# TYPE {name} summary");
        let all = self.series.lock().unwrap_or_else(|p| p.into_inner());
        for (labels, series) in all.iter() {
            let mut sorted: Vec<f64> = series.recent.iter().copied().collect();
            sorted.sort_by(f64::total_cmp);
            for q in QUANTILES {
                let rank = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
                let value = sorted.get(rank).copied().unwrap_or(f64::NAN);
                let mut with_quantile = labels.clone();
                with_quantile.push(("quantile", q.to_string()));
                let _ = writeln!(out, "{name}{} {value}", label_text(&with_quantile));
            }
            let _ = writeln!(out, "{name}_sum{} {}", label_text(labels), series.sum);
            let _ = writeln!(out, "{name}_count{} {}", label_text(labels), series.count);
        }
    }
}

/// `{a="1",b="2"}`, or nothing for no labels.
fn label_text(labels: &Labels) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let escaped = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{escaped}\"")
        })
        .collect();
    format!("{{{}}}", pairs.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_sum_and_count_in_text_format() {
        let s = Summaries::default();
        let labels = vec![("nodepool", "default".to_string())];
        for v in 1..=100 {
            s.observe(&labels, f64::from(v));
        }
        let mut out = String::new();
        s.encode("x_seconds", "X", &mut out);
        assert!(out.contains("# TYPE x_seconds summary\n"), "{out}");
        assert!(
            out.contains("x_seconds{nodepool=\"default\",quantile=\"0.5\"} 51\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds{nodepool=\"default\",quantile=\"1\"} 100\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_sum{nodepool=\"default\"} 5050\n"),
            "{out}"
        );
        assert!(
            out.contains("x_seconds_count{nodepool=\"default\"} 100\n"),
            "{out}"
        );
        for v in 0..WINDOW {
            s.observe(&labels, v as f64);
        }
        let mut out = String::new();
        s.encode("x_seconds", "X", &mut out);
        assert!(
            out.contains("x_seconds_count{nodepool=\"default\"} 1124\n"),
            "{out}"
        );
        assert!(
            out.contains("quantile=\"0\"} 0\n"),
            "the window forgot the oldest: {out}"
        );
    }
}

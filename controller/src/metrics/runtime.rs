//! controller-runtime's reconcile families, which upstream exports for
//! every controller and operators alert on (reconcile errors, reconcile
//! time, busy workers). Here a reconcile is one object's turn in a
//! controller's pass (a NodeClaim in `nodeclaim.lifecycle`, a batch in
//! `provisioner`), counted by [`RuntimeMetrics::reconcile`].

use super::{Counters, Gauges, Histograms, Registrar, duration_buckets};
use std::future::Future;
use std::time::Instant;

/// The `controller_runtime_*` families.
pub struct RuntimeMetrics {
    /// `controller_runtime_reconcile_total{controller,result}`.
    pub total: Counters,
    /// `controller_runtime_reconcile_errors_total{controller}`.
    pub errors: Counters,
    /// `controller_runtime_reconcile_time_seconds{controller}`.
    pub time: Histograms,
    /// `controller_runtime_active_workers{controller}`: reconciles running now.
    pub active_workers: Gauges,
    /// `controller_runtime_max_concurrent_reconciles{controller}`.
    pub max_concurrent: Gauges,
}

/// Takes a worker back when the reconcile ends, however it ends.
struct Busy(prometheus_client::metrics::gauge::Gauge);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl RuntimeMetrics {
    /// Registers the group.
    pub fn register(r: &mut Registrar) -> Self {
        RuntimeMetrics {
            total: r.counter(
                "controller_runtime_reconcile",
                "Total number of reconciliations per controller",
                &["controller", "result"],
            ),
            errors: r.counter(
                "controller_runtime_reconcile_errors",
                "Total number of reconciliation errors per controller",
                &["controller"],
            ),
            time: r.histogram(
                "controller_runtime_reconcile_time_seconds",
                "Length of time per reconciliation per controller",
                &["controller"],
                duration_buckets,
            ),
            active_workers: r.gauge(
                "controller_runtime_active_workers",
                "Number of currently used workers per controller",
                &["controller"],
            ),
            max_concurrent: r.gauge(
                "controller_runtime_max_concurrent_reconciles",
                "Maximum number of concurrent reconciles per controller",
                &["controller"],
            ),
        }
    }

    /// Declares that `controller` runs at most `workers` reconciles at once.
    pub fn workers(&self, controller: &'static str, workers: i64) {
        self.max_concurrent
            .get_or_create(&vec![("controller", controller.to_string())])
            .set(workers);
    }

    /// Runs one reconcile of `controller`, counting it by its result.
    pub async fn reconcile<T, E>(
        &self,
        controller: &'static str,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let labels = vec![("controller", controller.to_string())];
        let busy = Busy(self.active_workers.get_or_create(&labels).clone());
        busy.0.inc();
        let began = Instant::now();
        let out = work.await;
        drop(busy);
        self.time
            .get_or_create(&labels)
            .observe(began.elapsed().as_secs_f64());
        let result = if out.is_ok() { "success" } else { "error" };
        self.total
            .get_or_create(&vec![
                ("controller", controller.to_string()),
                ("result", result.to_string()),
            ])
            .inc();
        if out.is_err() {
            self.errors.get_or_create(&labels).inc();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::Metrics;

    #[tokio::test]
    async fn a_reconcile_is_counted_by_result_and_frees_its_worker() {
        let metrics = Metrics::new("simulated");
        let ok: Result<(), &str> = metrics
            .runtime
            .reconcile("nodeclass", async { Ok(()) })
            .await;
        let failed: Result<(), &str> = metrics
            .runtime
            .reconcile("nodeclass", async { Err("boom") })
            .await;
        assert!(ok.is_ok() && failed.is_err());
        let text = metrics.encode();
        for line in [
            "controller_runtime_reconcile_total{controller=\"nodeclass\",result=\"success\"} 1",
            "controller_runtime_reconcile_total{controller=\"nodeclass\",result=\"error\"} 1",
            "controller_runtime_reconcile_errors_total{controller=\"nodeclass\"} 1",
            "controller_runtime_active_workers{controller=\"nodeclass\"} 0",
            "controller_runtime_reconcile_time_seconds_count{controller=\"nodeclass\"} 2",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }
}

//! controller-runtime's reconcile families, which upstream exports for
//! every controller and operators alert on (reconcile errors, reconcile
//! time, busy workers). Here a reconcile is one object's turn in a
//! controller's pass (a NodeClaim in `nodeclaim.lifecycle`, a batch in
//! `provisioner`), counted by [`RuntimeMetrics::reconcile`]; objects a pass
//! works through are its workqueue ([`RuntimeMetrics::enqueue`],
//! [`RuntimeMetrics::reconcile_queued`]).

use super::{Counters, FloatGauges, Gauges, Histograms, Registrar, duration_buckets};
use std::future::Future;
use std::time::Instant;

/// The `controller_runtime_*` and `workqueue_*` families.
pub struct RuntimeMetrics {
    /// `workqueue_depth{controller,name}`: objects queued for this pass, not started.
    pub queue_depth: Gauges,
    /// `workqueue_adds_total{controller,name}`.
    pub queue_adds: Counters,
    /// `workqueue_queue_duration_seconds{controller,name}`: queued to started.
    pub queue_duration: Histograms,
    /// `workqueue_work_duration_seconds{controller,name}`: started to done.
    pub work_duration: Histograms,
    /// `workqueue_retries_total{controller,name}`: reconciles that failed and
    /// will be tried again on a later pass.
    pub retries: Counters,
    /// `workqueue_unfinished_work_seconds{controller,name}`: the age of the
    /// work in progress, summed (updated as work starts and ends).
    pub unfinished_work: FloatGauges,
    /// `workqueue_longest_running_processor_seconds{controller,name}`.
    pub longest_running: FloatGauges,
    in_flight: std::sync::Mutex<std::collections::HashMap<&'static str, Vec<(u64, Instant)>>>,
    next_id: std::sync::atomic::AtomicU64,
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
        let queue = &["controller", "name"];
        RuntimeMetrics {
            queue_depth: r.gauge("workqueue_depth", "Current depth of workqueue", queue),
            queue_adds: r.counter("workqueue_adds", "Total number of adds handled by workqueue", queue),
            queue_duration: r.histogram(
                "workqueue_queue_duration_seconds",
                "How long in seconds an item stays in workqueue before being requested",
                queue,
                duration_buckets,
            ),
            work_duration: r.histogram(
                "workqueue_work_duration_seconds",
                "How long in seconds processing an item from workqueue takes",
                queue,
                duration_buckets,
            ),
            retries: r.counter("workqueue_retries", "Total number of retries handled by workqueue", queue),
            unfinished_work: r.float_gauge(
                "workqueue_unfinished_work_seconds",
                "How many seconds of work has been done that is in progress and hasn't been observed by work_duration",
                queue,
            ),
            longest_running: r.float_gauge(
                "workqueue_longest_running_processor_seconds",
                "How many seconds has the longest running processor for workqueue been running",
                queue,
            ),
            in_flight: Default::default(),
            next_id: Default::default(),
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

    /// Queues `count` objects for a pass of `controller`; returns when
    /// they were queued, for [`Self::reconcile_queued`].
    pub fn enqueue(&self, controller: &'static str, count: usize) -> Instant {
        let labels = queue_labels(controller);
        self.queue_adds.get_or_create(&labels).inc_by(count as u64);
        self.queue_depth.get_or_create(&labels).inc_by(count as i64);
        Instant::now()
    }

    /// Runs one reconcile of an object [`Self::enqueue`] queued at `queued`:
    /// the workqueue families as well as [`Self::reconcile`]'s.
    pub async fn reconcile_queued<T, E>(
        &self,
        controller: &'static str,
        queued: Instant,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let labels = queue_labels(controller);
        self.queue_depth.get_or_create(&labels).dec();
        self.queue_duration
            .get_or_create(&labels)
            .observe(queued.elapsed().as_secs_f64());
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.in_flight(controller, |work| work.push((id, Instant::now())));
        let began = Instant::now();
        let out = self.reconcile(controller, work).await;
        self.work_duration
            .get_or_create(&labels)
            .observe(began.elapsed().as_secs_f64());
        self.in_flight(controller, |work| work.retain(|(i, _)| *i != id));
        if out.is_err() {
            self.retries.get_or_create(&labels).inc();
        }
        out
    }

    /// Changes the work in progress of `controller` and sets its gauges.
    fn in_flight(&self, controller: &'static str, change: impl FnOnce(&mut Vec<(u64, Instant)>)) {
        let mut all = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let work = all.entry(controller).or_default();
        change(work);
        let ages = work.iter().map(|(_, at)| at.elapsed().as_secs_f64());
        let (sum, longest) = ages.fold((0.0, 0.0_f64), |(s, l), a| (s + a, l.max(a)));
        let labels = queue_labels(controller);
        self.unfinished_work.get_or_create(&labels).set(sum);
        self.longest_running.get_or_create(&labels).set(longest);
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

/// A workqueue's labels: controller-runtime names each queue after its controller.
fn queue_labels(controller: &'static str) -> super::Labels {
    vec![
        ("controller", controller.to_string()),
        ("name", controller.to_string()),
    ]
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
        let queued = metrics.runtime.enqueue("nodeclass", 2);
        let _: Result<(), &str> = metrics
            .runtime
            .reconcile_queued("nodeclass", queued, async { Err("again") })
            .await;
        let text = metrics.encode();
        for line in [
            "controller_runtime_reconcile_total{controller=\"nodeclass\",result=\"success\"} 1",
            "controller_runtime_reconcile_total{controller=\"nodeclass\",result=\"error\"} 2",
            "controller_runtime_reconcile_errors_total{controller=\"nodeclass\"} 2",
            "controller_runtime_active_workers{controller=\"nodeclass\"} 0",
            "controller_runtime_reconcile_time_seconds_count{controller=\"nodeclass\"} 3",
            "workqueue_adds_total{controller=\"nodeclass\",name=\"nodeclass\"} 2",
            "workqueue_depth{controller=\"nodeclass\",name=\"nodeclass\"} 1",
            "workqueue_retries_total{controller=\"nodeclass\",name=\"nodeclass\"} 1",
            "workqueue_work_duration_seconds_count{controller=\"nodeclass\",name=\"nodeclass\"} 1",
            "workqueue_longest_running_processor_seconds{controller=\"nodeclass\",name=\"nodeclass\"} 0",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }
}

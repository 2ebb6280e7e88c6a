//! Kubernetes events (`events.k8s.io/v1`), published in the background
//! through one bounded queue and a few requests at a time.
//!
//! kube-runtime's `Recorder` is awaited per event; spawning a task for each
//! one let a 10k-pod batch open thousands of API connections at once (each
//! with its TLS and HTTP buffers) and keep every event for six minutes in a
//! cache it scans on every publish. Here the queue, the requests in flight
//! and the series cache are all bounded: when the queue is full an event is
//! dropped and counted, as upstream's rate-limited recorder drops them.
//! Repeats of an event (same object, type, reason and note) within
//! [`SERIES_WINDOW`] become a series on the first one, as the Recorder does.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Events waiting to be written; more are dropped.
const QUEUE: usize = 2048;

/// Event writes in flight at once.
const IN_FLIGHT: usize = 4;

/// Distinct events remembered for series.
const SERIES_CACHE: usize = 4096;

/// How long a repeat still joins the earlier event's series (the Recorder's).
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);

/// One event to write.
struct Pending {
    regarding: ObjectReference,
    warning: bool,
    reason: String,
    note: String,
}

impl Pending {
    fn series_key(&self) -> SeriesKey {
        SeriesKey {
            object: self
                .regarding
                .uid
                .clone()
                .or_else(|| self.regarding.name.clone())
                .unwrap_or_default(),
            warning: self.warning,
            reason: self.reason.clone(),
            note: self.note.clone(),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    object: String,
    warning: bool,
    reason: String,
    note: String,
}

/// The event a repeat patches.
struct Series {
    name: String,
    namespace: String,
    count: i32,
    last: Instant,
}

/// Bounded series cache: the oldest entry goes when it is full.
#[derive(Default)]
struct SeriesCache {
    entries: HashMap<SeriesKey, Series>,
    order: VecDeque<SeriesKey>,
}

impl SeriesCache {
    /// The earlier event this one repeats, if it is recent enough.
    fn repeat_of(&mut self, key: &SeriesKey) -> Option<(String, String, i32)> {
        let series = self.entries.get_mut(key)?;
        if series.last.elapsed() > SERIES_WINDOW {
            return None;
        }
        series.count += 1;
        series.last = Instant::now();
        Some((series.name.clone(), series.namespace.clone(), series.count))
    }

    fn remember(&mut self, key: SeriesKey, name: String, namespace: String) {
        let fresh = Series {
            name,
            namespace,
            count: 1,
            last: Instant::now(),
        };
        if self.entries.insert(key.clone(), fresh).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > SERIES_CACHE {
            if let Some(oldest) = self.order.pop_front() {
                self.entries.remove(&oldest);
            }
        }
    }
}

/// Who writes the events (`reportingController` / `reportingInstance`).
#[derive(Debug, Clone)]
pub struct Reporter {
    /// The controller's name, `karpenter`.
    pub controller: String,
    /// This replica.
    pub instance: String,
}

/// Publishes events in the background; cloning shares the queue.
#[derive(Clone)]
pub struct EventSink {
    queue: mpsc::Sender<Pending>,
    dropped: Arc<AtomicU64>,
}

impl EventSink {
    /// Starts the writer task (it ends when the last sink is dropped).
    pub fn start(client: kube::Client, reporter: Reporter) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        tokio::spawn(write_all(client, reporter, pending));
        EventSink {
            queue,
            dropped: Arc::default(),
        }
    }

    /// Queues an event on the object `regarding`; drops it when the queue is full.
    pub fn publish(&self, regarding: ObjectReference, warning: bool, reason: &str, note: String) {
        let pending = Pending {
            regarding,
            warning,
            reason: reason.to_string(),
            note,
        };
        if self.queue.try_send(pending).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "event queue full; events dropped");
            }
        }
    }
}

async fn write_all(client: kube::Client, reporter: Reporter, mut pending: mpsc::Receiver<Pending>) {
    let cache = Mutex::new(SeriesCache::default());
    let cache = &cache;
    let client = &client;
    let reporter = &reporter;
    futures::stream::poll_fn(|cx| pending.poll_recv(cx))
        .for_each_concurrent(IN_FLIGHT, |event| async move {
            if let Err(e) = write(client, reporter, cache, event).await {
                tracing::debug!(error = %e, "event not recorded");
            }
        })
        .await;
}

async fn write(
    client: &kube::Client,
    reporter: &Reporter,
    cache: &Mutex<SeriesCache>,
    event: Pending,
) -> Result<(), kube::Error> {
    let key = event.series_key();
    let repeat = cache.lock().expect("series cache").repeat_of(&key);
    let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
    if let Some((name, namespace, count)) = repeat {
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        let series = EventSeries {
            count,
            last_observed_time: now,
        };
        let patch = serde_json::json!({"series": series});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        return Ok(());
    }
    let namespace = event
        .regarding
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let object = Event {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}.{:x}",
                event.regarding.name.as_deref().unwrap_or("karpenter"),
                now.0.as_nanosecond()
            )),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        action: Some(event.reason.clone()),
        reason: Some(event.reason),
        note: Some(event.note),
        event_time: Some(now),
        regarding: Some(event.regarding),
        reporting_controller: Some(reporter.controller.clone()),
        reporting_instance: Some(reporter.instance.clone()),
        type_: Some(if event.warning { "Warning" } else { "Normal" }.into()),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let created = api.create(&PostParams::default(), &object).await?;
    cache.lock().expect("series cache").remember(
        key,
        created.metadata.name.unwrap_or_default(),
        namespace,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(note: &str) -> SeriesKey {
        SeriesKey {
            object: "uid".into(),
            warning: false,
            reason: "Nominated".into(),
            note: note.into(),
        }
    }

    #[test]
    fn a_repeat_joins_the_series_and_the_cache_stays_bounded() {
        let mut cache = SeriesCache::default();
        assert!(cache.repeat_of(&key("a")).is_none());
        cache.remember(key("a"), "pod.1".into(), "default".into());
        assert_eq!(
            cache.repeat_of(&key("a")),
            Some(("pod.1".into(), "default".into(), 2))
        );
        assert_eq!(cache.repeat_of(&key("a")).map(|r| r.2), Some(3));
        assert!(cache.repeat_of(&key("b")).is_none());
        for i in 0..SERIES_CACHE + 10 {
            cache.remember(key(&i.to_string()), format!("pod.{i}"), "default".into());
        }
        assert_eq!(cache.entries.len(), SERIES_CACHE);
        assert_eq!(cache.order.len(), SERIES_CACHE);
        assert!(
            cache.repeat_of(&key("a")).is_none(),
            "the oldest went first"
        );
        assert!(
            cache
                .repeat_of(&key(&(SERIES_CACHE + 9).to_string()))
                .is_some()
        );
    }
}

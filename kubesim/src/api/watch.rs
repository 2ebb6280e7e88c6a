//! Watch streams: newline-delimited JSON events, resumable from a
//! resourceVersion, with label/field selectors, bookmarks, `timeoutSeconds`,
//! streaming lists (`sendInitialEvents`), and an `ERROR` event carrying `410 Gone`
//! when the requested version is no longer kept.

use super::{Query, Reply, Target};
use crate::Kubesim;
use crate::resources::ResourceType;
use crate::selectors::Selector;
use crate::status::ApiError;
use crate::store::{EventType, WatchEvent};
use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// How often a watch that asked for bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(5);
/// Watches end after this long unless `timeoutSeconds` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

struct Filter {
    namespace: Option<String>,
    labels: Selector,
    fields: Selector,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| obj["metadata"]["namespace"].as_str() == Some(ns))
            && self.labels.matches_labels(obj)
            && self.fields.matches_fields(obj)
    }

    /// The event a filtered watcher sees: objects entering the selection are
    /// ADDED, objects leaving it are DELETED, others pass unchanged or not at all.
    fn translate(&self, event: &WatchEvent) -> Option<EventType> {
        let now = self.matches(&event.object);
        match (event.event_type, &event.previous) {
            (EventType::Modified, Some(previous)) => match (self.matches(previous), now) {
                (true, true) => Some(EventType::Modified),
                (false, true) => Some(EventType::Added),
                (true, false) => Some(EventType::Deleted),
                (false, false) => None,
            },
            (kind, _) => now.then_some(kind),
        }
    }
}

/// Starts a watch on a collection.
pub(crate) fn serve(sim: &Kubesim, t: &Target, query: &Query) -> Result<Reply, ApiError> {
    let filter = Filter {
        namespace: t.namespace.clone(),
        labels: Selector::labels(query.get("labelSelector").unwrap_or_default())?,
        fields: Selector::fields(query.get("fieldSelector").unwrap_or_default())?,
    };
    let send_initial = query.flag("sendInitialEvents");
    let from = if send_initial {
        None
    } else {
        query.number("resourceVersion")
    };
    let timeout = query
        .number("timeoutSeconds")
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT);
    let bookmarks = query.flag("allowWatchBookmarks");
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let body = StreamBody::new(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|bytes| (Ok(Frame::data(bytes)), rx))
    }))
    .boxed_unsync();
    let resource = t.rt.group_resource();
    let table_of = query.as_table.then(|| t.rt.clone());
    let kind = t.rt.kind.clone();
    let api_version = t.rt.api_version();
    let bookmark = move |rv: u64, initial_end: bool| {
        let mut object = json!({"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": rv.to_string()}});
        if initial_end {
            object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line("BOOKMARK", &object)
    };
    match sim.inner.store.watch(&t.rt, t.namespace.as_deref(), from) {
        Err(gone) if gone.code == 410 => {
            tokio::spawn(async move {
                let _ = tx.send(line("ERROR", &gone.to_status())).await;
            });
        }
        Err(e) => return Err(e),
        Ok(start) => {
            let (initial, mut events, start_rv) =
                (start.initial, start.receiver, start.resource_version);
            tokio::spawn(async move {
                let mut last_rv = start_rv;
                for event in initial.iter() {
                    if let Some(kind) = filter.translate(event)
                        && tx
                            .send(event_line(kind, event, table_of.as_ref()))
                            .await
                            .is_err()
                    {
                        return;
                    }
                    last_rv = last_rv.max(event.rv);
                }
                if send_initial && tx.send(bookmark(start_rv, true)).await.is_err() {
                    return;
                }
                let deadline = tokio::time::sleep(timeout);
                tokio::pin!(deadline);
                let mut ticker = tokio::time::interval(BOOKMARK_INTERVAL);
                ticker.tick().await;
                loop {
                    tokio::select! {
                        _ = &mut deadline => return,
                        _ = ticker.tick(), if bookmarks => {
                            if tx.send(bookmark(last_rv, false)).await.is_err() { return; }
                        }
                        received = events.recv() => match received {
                            Ok(event) => {
                                if event.rv <= start_rv || event.resource != resource {
                                    continue;
                                }
                                last_rv = event.rv;
                                if let Some(kind) = filter.translate(&event)
                                    && tx.send(event_line(kind, &event, table_of.as_ref())).await.is_err() { return; }
                            }
                            // Too slow to keep up, or the server is going away: end the watch;
                            // clients resume from their last resourceVersion.
                            Err(broadcast::error::RecvError::Lagged(_) | broadcast::error::RecvError::Closed) => return,
                        },
                    }
                }
            });
        }
    }
    Ok(Reply::Stream(body))
}

/// An event line for a stored object: a one-row Table when asked for, else the
/// object, reusing the event's one-time encoding.
fn event_line(kind: EventType, event: &WatchEvent, table_of: Option<&ResourceType>) -> Bytes {
    if let Some(rt) = table_of {
        let rv = event.object["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        return line(
            kind.as_str(),
            &super::table::table(rt, &[event.object.as_ref()], &rv),
        );
    }
    let object = event.encoded.get_or_init(|| {
        Bytes::from(serde_json::to_vec(event.object.as_ref()).expect("JSON values serialize"))
    });
    let mut bytes = Vec::with_capacity(object.len() + 32);
    bytes.extend_from_slice(br#"{"type":""#);
    bytes.extend_from_slice(kind.as_str().as_bytes());
    bytes.extend_from_slice(br#"","object":"#);
    bytes.extend_from_slice(object);
    bytes.extend_from_slice(b"}\n");
    Bytes::from(bytes)
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&json!({"type": kind, "object": object}))
        .expect("JSON values serialize");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

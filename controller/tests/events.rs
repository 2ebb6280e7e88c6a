//! The event sink against kubesim: events land as `events.k8s.io/v1`
//! objects, a repeat becomes a series on the first one, and a burst far
//! larger than the queue never blocks the caller and is written up to the
//! queue's bound.

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use karpenter_controller::events::{EventSink, Reporter};
use kube::api::{ListParams, PostParams};
use kube::{Api, Resource};
use kubesim::Kubesim;
use serde_json::json;
use std::time::{Duration, Instant};
use test_support::eventually;

#[tokio::test]
async fn events_are_written_and_repeats_form_a_series() {
    let sim = Kubesim::new();
    let client = sim.client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let object: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "subject"}})).unwrap();
    let object = maps.create(&PostParams::default(), &object).await.unwrap();
    let sink = EventSink::start(
        client.clone(),
        Reporter {
            controller: "karpenter".into(),
            instance: "test-1".into(),
        },
    );
    let reference = object.object_ref(&());
    sink.publish(reference.clone(), false, "Nominated", "on node a".into());
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let list = || async { events.list(&ListParams::default()).await.unwrap().items };
    eventually("the first event", || async { list().await.len() == 1 }).await;
    sink.publish(reference.clone(), false, "Nominated", "on node a".into());
    sink.publish(
        reference.clone(),
        true,
        "FailedScheduling",
        "no pool".into(),
    );
    eventually("a series and a second event", || async {
        let items = list().await;
        items.len() == 2
            && items
                .iter()
                .any(|e| e.series.as_ref().is_some_and(|s| s.count == 2))
    })
    .await;
    let items = list().await;
    let nominated = items
        .iter()
        .find(|e| e.reason.as_deref() == Some("Nominated"))
        .unwrap();
    assert_eq!(nominated.type_.as_deref(), Some("Normal"));
    assert_eq!(nominated.reporting_controller.as_deref(), Some("karpenter"));
    assert_eq!(nominated.reporting_instance.as_deref(), Some("test-1"));
    assert_eq!(
        nominated.regarding.as_ref().and_then(|r| r.uid.clone()),
        object.metadata.uid
    );
    let failed = items
        .iter()
        .find(|e| e.reason.as_deref() == Some("FailedScheduling"))
        .unwrap();
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    assert_eq!(failed.note.as_deref(), Some("no pool"));

    // A burst: publishing never waits, and what is queued is written.
    let started = Instant::now();
    for i in 0..20_000 {
        sink.publish(reference.clone(), false, "Burst", format!("event {i}"));
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "publish blocked"
    );
    eventually("the queued part of the burst", || async {
        list().await.len() >= 2 + 2048
    })
    .await;
}

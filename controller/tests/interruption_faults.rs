//! Interruption messages under API failures: a spot warning whose NodeClaim
//! cannot be deleted stays on the queue and is acted on when it comes back
//! (the in-memory queue hides received messages for a visibility timeout,
//! as SQS does).

mod sim;

use karpenter_controller::controllers::interruption::InMemoryQueue;
use karpenter_sim::demo::Timing;
use karpenter_sim::ec2::SimEvent;
use std::sync::Arc;
use std::time::Duration;
use test_support::eventually_within;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spot_warning_is_not_lost_when_deleting_the_nodeclaim_fails() {
    let mut cluster = sim::cluster(Timing::at_speed(50.0)).await;
    cluster.queue = Arc::new(InMemoryQueue::with_visibility(Duration::from_secs(1)));
    let faults = kubesim::Faults::new();
    let client = cluster.sim.faulty_client(&faults);
    let _controller = sim::start_with_client(&cluster, client, sim::settings("queue", false));
    sim::scale(&cluster, &[("web", 2)]).await;
    sim::all_running(&cluster, 2).await;
    let claims = sim::claims(&cluster).await;
    let spot = claims
        .iter()
        .find(|c| {
            c.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("karpenter.sh/capacity-type"))
                == Some(&"spot".to_string())
        })
        .expect("the demo's web pods run on spot");
    let name = spot.metadata.name.clone().unwrap();
    let provider_id = spot
        .status
        .as_ref()
        .and_then(|s| s.provider_id.clone())
        .unwrap();
    // The first two attempts to delete the claim fail.
    faults.fail(
        Some(http::Method::DELETE),
        &format!("/apis/karpenter.sh/v1/nodeclaims/{name}"),
        500,
        2,
    );
    cluster
        .interrupt(SimEvent::SpotInterruption, &provider_id)
        .unwrap();
    let claims_api: kube::Api<karpenter_api::v1::NodeClaim> = kube::Api::all(cluster.client());
    eventually_within(
        Duration::from_secs(30),
        "the interrupted claim is deleted",
        || async {
            claims_api
                .get_opt(&name)
                .await
                .unwrap()
                .is_none_or(|c| c.metadata.deletion_timestamp.is_some())
        },
    )
    .await;
    assert_eq!(faults.injected().len(), 2, "{:?}", faults.injected());
    assert!(
        cluster.queue.deliveries() >= 3,
        "delivered again after each failure"
    );
    eventually_within(
        Duration::from_secs(30),
        "the message is deleted once handled",
        || async { cluster.queue.outstanding() == 0 },
    )
    .await;
}

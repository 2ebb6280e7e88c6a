//! Launches when the API server fails: an instance is launched once per
//! NodeClaim, whatever write fails after it (the requests fail through a
//! fault-injecting client in front of kubesim, `kubesim::Faults`).

mod sim;

use karpenter_controller::cloud::CloudProvider;
use karpenter_sim::demo::Timing;
use std::collections::BTreeMap;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_write_after_a_launch_does_not_launch_again() {
    let cluster = sim::cluster(Timing::at_speed(50.0)).await;
    let faults = kubesim::Faults::new();
    // Every write to a NodeClaim fails three times: the label and status
    // writes that record a launch included.
    faults.fail(
        Some(http::Method::PATCH),
        "/apis/karpenter.sh/v1/nodeclaims/",
        500,
        3,
    );
    let client = cluster.sim.faulty_client(&faults);
    let _controller = sim::start_with_client(&cluster, client, sim::settings("faults", false));
    sim::scale(&cluster, &[("web", 3)]).await;
    sim::all_running(&cluster, 3).await;
    assert!(!faults.injected().is_empty(), "faults were injected");
    let claims = sim::claims(&cluster).await;
    let mut per_claim: BTreeMap<String, usize> = BTreeMap::new();
    for instance in cluster.ec2.list().await.unwrap() {
        let owner = instance
            .tags
            .get("karpenter.sh/nodeclaim")
            .cloned()
            .unwrap_or_default();
        *per_claim.entry(owner).or_default() += 1;
    }
    assert_eq!(
        per_claim.len(),
        claims.len(),
        "one instance per claim, none without: {per_claim:?} ({:?})",
        faults.injected()
    );
    assert!(per_claim.values().all(|n| *n == 1), "{per_claim:?}");
    sim::consistent(&cluster).await;
}

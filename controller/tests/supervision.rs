//! Silent death: a controller that panics while this replica leads stops
//! the process with an error naming it, and `/healthz` fails, so the kubelet
//! restarts the pod instead of leaving it half-working and reporting ok.

mod sim;

use karpenter_api::v1::{EC2NodeClass, EC2NodeClassStatus, NodeClaim, NodePool};
use karpenter_controller::catalog::{CapacityType, InstanceType};
use karpenter_controller::cloud::{CloudError, CloudProvider, Instance};
use karpenter_controller::endpoints::{self, Health};
use karpenter_controller::metrics::Metrics;
use karpenter_controller::runtime::{self, Parts, RunError};
use karpenter_sim::demo::Timing;
use karpenter_sim::ec2::SimulatedEc2;
use std::sync::Arc;

/// The simulated EC2, except that resolving an EC2NodeClass panics.
struct Panicking(Arc<SimulatedEc2>);

impl CloudProvider for Panicking {
    async fn create(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
    ) -> Result<Instance, CloudError> {
        self.0.create(claim, class).await
    }
    async fn get(&self, provider_id: &str) -> Result<Instance, CloudError> {
        self.0.get(provider_id).await
    }
    async fn list(&self) -> Result<Vec<Instance>, CloudError> {
        self.0.list().await
    }
    async fn delete(&self, provider_id: &str) -> Result<(), CloudError> {
        self.0.delete(provider_id).await
    }
    async fn tag(
        &self,
        provider_id: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        self.0.tag(provider_id, tags).await
    }
    async fn instance_types(
        &self,
        pool: &NodePool,
        class: &EC2NodeClass,
    ) -> Result<Vec<InstanceType>, CloudError> {
        self.0.instance_types(pool, class).await
    }
    async fn is_drifted(
        &self,
        claim: &NodeClaim,
        class: &EC2NodeClass,
    ) -> Result<Option<String>, CloudError> {
        self.0.is_drifted(claim, class).await
    }
    fn mark_unavailable(&self, instance_type: &str, zone: &str, capacity_type: CapacityType) {
        self.0.mark_unavailable(instance_type, zone, capacity_type)
    }
    async fn resolve_node_class(&self, _class: &EC2NodeClass) -> EC2NodeClassStatus {
        panic!("a bug in NodeClass resolution")
    }
    async fn finalize_node_class(&self, class: &EC2NodeClass) -> Result<(), CloudError> {
        self.0.finalize_node_class(class).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_controller_that_panics_stops_the_process_and_fails_healthz() {
    let cluster = sim::cluster(Timing::at_speed(50.0)).await;
    let mut settings = sim::settings("supervised", false);
    settings.metrics_port = 0;
    settings.health_probe_port = 0;
    let metrics = Arc::new(Metrics::new("simulated"));
    let health = Arc::new(Health::default());
    let (_, probes) = endpoints::start(&settings, metrics.clone(), health.clone())
        .await
        .unwrap();
    let parts = Parts {
        lease_client: None,
        client: cluster.client(),
        cloud: Arc::new(Panicking(cluster.ec2.clone())),
        queue: Some(cluster.queue.clone()),
        settings,
        metrics,
        health: health.clone(),
    };
    let outcome = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        runtime::run(parts, futures::future::pending()),
    )
    .await
    .expect("the process stops instead of running on without the controller");
    match outcome {
        Err(RunError::ControllerStopped { name, reason }) => {
            assert_eq!(name, "nodeclass");
            assert!(reason.contains("a bug in NodeClass resolution"), "{reason}");
        }
        other => panic!("expected a stopped controller, got {other:?}"),
    }
    let healthz = reqwest_like_get(&format!("http://127.0.0.1:{}/healthz", probes.port())).await;
    assert_eq!(healthz.0, 500);
    assert!(healthz.1.contains("nodeclass"), "{}", healthz.1);
}

/// A plain HTTP GET: (status, body).
async fn reqwest_like_get(url: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let response = client.get(url.parse().unwrap()).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The leader's Lease goes through its own client: with every Lease request
/// on the main client failing (an API server busy with an eviction storm),
/// this replica still becomes leader and keeps its Lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lease_has_a_client_of_its_own() {
    let cluster = sim::cluster(Timing::at_speed(50.0)).await;
    let faults = kubesim::Faults::new();
    faults.fail(None, "/apis/coordination.k8s.io/", 503, usize::MAX);
    let settings = sim::settings("lease-owner", true);
    let metrics = Arc::new(Metrics::new("simulated"));
    let parts = Parts {
        client: cluster.sim.faulty_client(&faults),
        cloud: cluster.ec2.clone(),
        queue: Some(cluster.queue.clone()),
        settings,
        metrics: metrics.clone(),
        health: Arc::new(Health::default()),
        lease_client: Some(cluster.client()),
    };
    let run = tokio::spawn(runtime::run(parts, futures::future::pending()));
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(cluster.client(), "kube-system");
    test_support::eventually("this replica holds the Lease", || async {
        leases
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|l| {
                l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some("lease-owner")
            })
    })
    .await;
    assert!(
        faults.injected().is_empty(),
        "the main client never touched the Lease"
    );
    run.abort();
}

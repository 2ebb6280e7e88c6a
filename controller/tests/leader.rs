//! Leader election on kubesim: replicas that start together elect exactly
//! one leader; a leader that stops hands over at once, one that dies hands
//! over after the lease duration; a leader that cannot renew steps down
//! before any follower may take over.

use k8s_openapi::api::coordination::v1::Lease;
use karpenter_controller::leader::{ElectionTiming, Elector};
use kube::Api;
use kubesim::Kubesim;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use test_support::eventually_within;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const NAMESPACE: &str = "kube-system";
const LEASE: &str = "karpenter-leader-election";
const TIMING: ElectionTiming = ElectionTiming {
    lease_duration: Duration::from_secs(3),
    renew_deadline: Duration::from_secs(2),
    retry_period: Duration::from_millis(200),
};

/// A replica's elector: whether it leads, and its task.
struct Replica {
    leading: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

fn replica(client: &kube::Client, identity: &str) -> Replica {
    let (sender, leading) = watch::channel(false);
    let elector = Elector::new(client.clone(), NAMESPACE, LEASE, identity.into(), TIMING);
    Replica {
        leading,
        task: tokio::spawn(elector.run(sender)),
    }
}

fn leaders(replicas: &[&Replica]) -> usize {
    replicas.iter().filter(|r| *r.leading.borrow()).count()
}

/// Waits until `replica` leads; returns how long that took.
async fn leads_within(replica: &mut Replica, limit: Duration) -> Duration {
    let start = Instant::now();
    tokio::time::timeout(limit, replica.leading.wait_for(|l| *l))
        .await
        .unwrap_or_else(|_| panic!("no leader within {limit:?}"))
        .unwrap();
    start.elapsed()
}

async fn holder(client: &kube::Client) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), NAMESPACE);
    leases.get(LEASE).await.unwrap().spec?.holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_starting_together_elect_exactly_one() {
    for round in 0..5 {
        let client = Kubesim::new().client();
        let replicas: Vec<Replica> = (0..3)
            .map(|i| replica(&client, &format!("r{round}-{i}")))
            .collect();
        let all: Vec<&Replica> = replicas.iter().collect();
        eventually_within(Duration::from_secs(5), "a leader", || async {
            leaders(&all) > 0
        })
        .await;
        // For longer than a lease duration, the one leader keeps renewing
        // and nobody else ever leads.
        let leader = all.iter().position(|r| *r.leading.borrow()).unwrap();
        for _ in 0..40 {
            assert_eq!(leaders(&all), 1, "round {round}: exactly one leader");
            assert!(
                *all[leader].leading.borrow(),
                "round {round}: leader changed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(holder(&client).await, Some(format!("r{round}-{leader}")));
        for r in replicas {
            r.task.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_leader_releases_and_a_dying_one_expires() {
    let client = Kubesim::new().client();
    let mut a = replica(&client, "a");
    leads_within(&mut a, Duration::from_secs(5)).await;
    let b = replica(&client, "b");
    let c = replica(&client, "c");
    tokio::time::sleep(TIMING.lease_duration).await;
    assert_eq!(leaders(&[&a, &b, &c]), 1);
    assert!(*a.leading.borrow());

    // A graceful stop (every receiver dropped) releases the Lease: a
    // follower takes over within a few retry periods, not a lease duration.
    drop(a.leading);
    tokio::time::timeout(Duration::from_secs(5), a.task)
        .await
        .expect("the elector ends once nobody listens")
        .unwrap();
    // Within a few retry periods: far less than the lease duration.
    eventually_within(
        TIMING.retry_period * 5,
        "the released Lease taken",
        || async { leaders(&[&b, &c]) > 0 },
    )
    .await;
    assert_eq!(leaders(&[&b, &c]), 1);
    let (mut dying, mut survivor) = if *b.leading.borrow() { (b, c) } else { (c, b) };

    // A crash (the elector's task is gone, nothing released): the survivor
    // waits out the lease duration from the last renewal it saw, no less.
    dying.task.abort();
    let _ = dying.leading.changed().await;
    let took = leads_within(&mut survivor, TIMING.lease_duration * 3).await;
    assert!(
        took >= TIMING.lease_duration - TIMING.retry_period * 2,
        "took over {took:?} after a crash, before the lease could expire"
    );
    println!("fail-over after a crash: {took:?}");
    survivor.task.abort();
}

/// A client to `sim` whose requests fail while `cut` is set (a network
/// partition between one replica and the API server).
fn partitionable_client(sim: &Kubesim, cut: Arc<AtomicBool>) -> kube::Client {
    let inner = sim.client();
    let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
        let inner = inner.clone();
        let cut = cut.clone();
        async move {
            if cut.load(Ordering::SeqCst) {
                return Err::<http::Response<kube::client::Body>, BoxError>(
                    "partitioned from the API server".into(),
                );
            }
            inner.send(request).await.map_err(BoxError::from)
        }
    });
    kube::Client::new(service, "default")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_steps_down_before_anyone_takes_over() {
    let sim = Kubesim::new();
    let cut = Arc::new(AtomicBool::new(false));
    let mut a = replica(&partitionable_client(&sim, cut.clone()), "a");
    leads_within(&mut a, Duration::from_secs(5)).await;
    let mut b = replica(&sim.client(), "b");
    tokio::time::sleep(TIMING.retry_period * 3).await;
    assert!(*a.leading.borrow() && !*b.leading.borrow());

    cut.store(true, Ordering::SeqCst);
    let partitioned = Instant::now();
    tokio::time::timeout(TIMING.lease_duration * 2, a.leading.wait_for(|l| !*l))
        .await
        .expect("the partitioned leader steps down")
        .unwrap();
    let stepped_down = partitioned.elapsed();
    assert!(
        !*b.leading.borrow(),
        "b led while a still did: a stepped down after {stepped_down:?}"
    );
    let took_over = leads_within(&mut b, TIMING.lease_duration * 3).await + stepped_down;
    assert!(stepped_down <= TIMING.renew_deadline + TIMING.retry_period);
    assert!(took_over >= stepped_down);
    println!("partitioned leader stepped down after {stepped_down:?}; b led after {took_over:?}");

    // Healed, a follows b and never leads while b renews.
    cut.store(false, Ordering::SeqCst);
    for _ in 0..20 {
        assert!(!*a.leading.borrow() && *b.leading.borrow());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(holder(&sim.client()).await.as_deref(), Some("b"));
    a.task.abort();
    b.task.abort();
}

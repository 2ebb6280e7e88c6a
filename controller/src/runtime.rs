//! The controller process: caches, leader election on a
//! `coordination.k8s.io` Lease, and the controllers, which run only while
//! this replica leads (the caches keep running, so a new leader starts warm).

use crate::cloud::CloudProvider;
use crate::controllers::disruption::Disruption;
use crate::controllers::garbage::GarbageCollector;
use crate::controllers::interruption::{Interruption, MessageQueue};
use crate::controllers::lifecycle::Lifecycle;
use crate::controllers::provisioning::Provisioner;
use crate::controllers::termination::Termination;
use crate::controllers::{Context, nodeclass, pod_metrics};
use crate::endpoints::Health;
use crate::events::{EventSink, Reporter};
use crate::leader::{ElectionTiming, Elector};
use crate::metrics::SharedMetrics;
use crate::settings::Settings;
use crate::state::ClusterState;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// How long an instance must be seen without a NodeClaim before it is
/// terminated, and how often garbage collection runs.
const GC_GRACE: Duration = Duration::from_secs(30);
const GC_EVERY: Duration = Duration::from_secs(30);

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The caches could not start.
    #[error("cluster caches stopped before they synced")]
    Caches,
}

/// Everything a controller process needs.
pub struct Parts<C, Q> {
    /// API client.
    pub client: kube::Client,
    /// The cloud.
    pub cloud: Arc<C>,
    /// The interruption queue, when configured.
    pub queue: Option<Arc<Q>>,
    /// Settings (validated).
    pub settings: Settings,
    /// Metrics.
    pub metrics: SharedMetrics,
    /// Probe state.
    pub health: Arc<Health>,
}

/// How long a stopping replica waits for its Lease to be released.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether this replica leads (always when election is off), and the
/// elector's task, which releases the Lease once the receiver is dropped.
fn leadership(
    client: &kube::Client,
    settings: &Settings,
) -> (watch::Receiver<bool>, Option<JoinHandle<()>>) {
    if settings.disable_leader_election {
        let (sender, receiver) = watch::channel(true);
        // Keep the sender alive for the life of the process.
        std::mem::forget(sender);
        return (receiver, None);
    }
    let elector = Elector::new(
        client.clone(),
        &settings.system_namespace,
        &settings.leader_election_name,
        settings.identity(),
        ElectionTiming::for_lease_duration(settings.leader_election_lease_duration),
    );
    let (sender, receiver) = watch::channel(false);
    (receiver, Some(tokio::spawn(elector.run(sender))))
}

fn start_controllers<C, Q>(ctx: &Arc<Context<C>>, queue: Option<&Arc<Q>>) -> JoinSet<()>
where
    C: CloudProvider + 'static,
    Q: MessageQueue + 'static,
{
    let mut tasks = JoinSet::new();
    tasks.spawn(Arc::new(Provisioner::new(ctx.clone())).run());
    tasks.spawn(Arc::new(Lifecycle::new(ctx.clone())).run());
    tasks.spawn(Arc::new(Termination::new(ctx.clone())).run());
    tasks.spawn(Arc::new(Disruption::new(ctx.clone())).run());
    tasks.spawn(nodeclass::run(ctx.clone()));
    tasks.spawn(pod_metrics::run(ctx.clone()));
    tasks.spawn(Arc::new(GarbageCollector::new(ctx.clone(), GC_GRACE)).run(GC_EVERY));
    if let Some(queue) = queue {
        tasks.spawn(Arc::new(Interruption::new(ctx.clone(), queue.clone())).run());
    }
    tasks
}

/// Runs the controller until `shutdown` completes.
pub async fn run<C, Q>(
    parts: Parts<C, Q>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError>
where
    C: CloudProvider + 'static,
    Q: MessageQueue + 'static,
{
    let Parts {
        client,
        cloud,
        queue,
        settings,
        metrics,
        health,
    } = parts;
    let (state, _reflectors) = ClusterState::start(&client);
    state
        .wait_until_ready()
        .await
        .map_err(|_| RunError::Caches)?;
    health.ready.store(true, Ordering::SeqCst);
    let events = EventSink::start(
        client.clone(),
        Reporter {
            controller: "karpenter".into(),
            instance: settings.identity(),
        },
    );
    let (mut leader, elector) = leadership(&client, &settings);
    let ctx = Arc::new(Context {
        client,
        state,
        cloud,
        metrics: metrics.clone(),
        settings,
        events,
        unplaceable: Default::default(),
    });
    let lead = async {
        loop {
            if leader.wait_for(|l| *l).await.is_err() {
                return;
            }
            tracing::info!(identity = %ctx.settings.identity(), "became leader; starting controllers");
            metrics.leader.set(1);
            let tasks = start_controllers(&ctx, queue.as_ref());
            let lost = leader.wait_for(|l| !*l).await.is_err();
            drop(tasks);
            metrics.leader.set(0);
            if lost {
                return;
            }
            tracing::warn!("no longer the leader; controllers stopped");
        }
    };
    tokio::select! {
        _ = lead => {}
        _ = shutdown => tracing::info!("shutting down"),
    }
    // The controllers have stopped (dropping `lead` aborted them); now the
    // Lease goes, so the other replica takes over at once.
    drop(leader);
    if let Some(elector) = elector
        && tokio::time::timeout(RELEASE_TIMEOUT, elector)
            .await
            .is_err()
    {
        tracing::warn!(
            "the leader Lease was not released in time; the next leader waits for it to expire"
        );
    }
    Ok(())
}

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
use crate::controllers::{Context, nodeclass, nodepool_status, pod_metrics};
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
    /// A controller stopped while this replica led (a panic, or a loop that
    /// returned): the process stops, so it is restarted, not left half-working.
    #[error("the {name} controller stopped: {reason}")]
    ControllerStopped {
        /// The controller (`provisioning`, `lifecycle`, ...).
        name: &'static str,
        /// What happened (the panic's message).
        reason: String,
    },
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
    /// A client of its own for the leader election's Lease (its own
    /// connections and in-flight limit), so an eviction storm on `client`
    /// cannot delay the renewals; `None` shares `client`.
    pub lease_client: Option<kube::Client>,
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
        settings.lease_namespace(),
        &settings.leader_election_name,
        settings.identity(),
        ElectionTiming::for_lease_duration(settings.leader_election_lease_duration),
    );
    let (sender, receiver) = watch::channel(false);
    (receiver, Some(tokio::spawn(elector.run(sender))))
}

/// The controllers of a leading replica, and each task's controller by task id.
struct Controllers {
    tasks: JoinSet<()>,
    names: std::collections::HashMap<tokio::task::Id, &'static str>,
}

fn start_controllers<C, Q>(ctx: &Arc<Context<C>>, queue: Option<&Arc<Q>>) -> Controllers
where
    C: CloudProvider + 'static,
    Q: MessageQueue + 'static,
{
    let mut tasks = Controllers {
        tasks: JoinSet::new(),
        names: Default::default(),
    };
    fn named(
        tasks: &mut Controllers,
        name: &'static str,
        run: impl Future<Output = ()> + Send + 'static,
    ) {
        let id = tasks.tasks.spawn(run).id();
        tasks.names.insert(id, name);
    }
    named(
        &mut tasks,
        "provisioning",
        Arc::new(Provisioner::new(ctx.clone())).run(),
    );
    named(
        &mut tasks,
        "lifecycle",
        Arc::new(Lifecycle::new(ctx.clone())).run(),
    );
    named(
        &mut tasks,
        "termination",
        Arc::new(Termination::new(ctx.clone())).run(),
    );
    named(
        &mut tasks,
        "disruption",
        Arc::new(Disruption::new(ctx.clone())).run(),
    );
    named(&mut tasks, "nodeclass", nodeclass::run(ctx.clone()));
    named(
        &mut tasks,
        "nodepool-status",
        nodepool_status::run(ctx.clone()),
    );
    named(
        &mut tasks,
        "drift-hash",
        crate::controllers::hash::run(ctx.clone()),
    );
    named(&mut tasks, "pod-metrics", pod_metrics::run(ctx.clone()));
    named(
        &mut tasks,
        "tagging",
        crate::controllers::tagging::run(ctx.clone()),
    );
    named(
        &mut tasks,
        "state-metrics",
        crate::controllers::state_metrics::run(ctx.clone()),
    );
    named(
        &mut tasks,
        "garbage-collection",
        Arc::new(GarbageCollector::new(ctx.clone(), GC_GRACE)).run(GC_EVERY),
    );
    if let Some(queue) = queue {
        named(
            &mut tasks,
            "interruption",
            Arc::new(Interruption::new(ctx.clone(), queue.clone())).run(),
        );
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
        lease_client,
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
    let (mut leader, elector) = leadership(lease_client.as_ref().unwrap_or(&client), &settings);
    let ctx = Arc::new(Context {
        client,
        state,
        cloud,
        metrics: metrics.clone(),
        settings,
        events,
        unplaceable: Default::default(),
        decisions: Default::default(),
    });
    let lead = async {
        loop {
            if leader.wait_for(|l| *l).await.is_err() {
                return Ok(());
            }
            tracing::info!(identity = %ctx.settings.identity(), "became leader; starting controllers");
            metrics.set_leader(true);
            let mut tasks = start_controllers(&ctx, queue.as_ref());
            // Supervise: a controller that stops while leading stops the process.
            let lost = tokio::select! {
                lost = leader.wait_for(|l| !*l) => lost.is_err(),
                stopped = tasks.tasks.join_next_with_id() => {
                    let name_of = |id| tasks.names.get(&id).copied().unwrap_or("unknown");
                    let (name, reason) = match stopped {
                        Some(Ok((id, ()))) => (name_of(id), "its loop returned".to_string()),
                        Some(Err(e)) if e.is_panic() => {
                            let name = name_of(e.id());
                            let payload = e.into_panic();
                            let message = payload
                                .downcast_ref::<String>()
                                .cloned()
                                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "a panic".into());
                            (name, format!("panicked: {message}"))
                        }
                        Some(Err(e)) => (name_of(e.id()), e.to_string()),
                        None => ("every", "none running".to_string()),
                    };
                    let error = RunError::ControllerStopped { name, reason };
                    tracing::error!(error = %error, "stopping");
                    health.fail(error.to_string());
                    metrics.set_leader(false);
                    return Err(error);
                }
            };
            drop(tasks);
            metrics.set_leader(false);
            if lost {
                return Ok(());
            }
            tracing::warn!("no longer the leader; controllers stopped");
        }
    };
    let outcome = tokio::select! {
        outcome = lead => outcome,
        _ = shutdown => {
            tracing::info!("shutting down");
            Ok(())
        }
    };
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
    outcome
}

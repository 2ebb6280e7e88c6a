//! Controllers that make the API server behave like a cluster: a scheduler, a
//! kubelet stand-in, workload controllers (Deployment -> ReplicaSet -> Pods,
//! DaemonSets), pod garbage collection and PodDisruptionBudget status.
//!
//! Each controller runs a reconcile pass over the store whenever a resource it
//! cares about changes (debounced), and on a short tick for time-based work.
//! Writes go to the store like any client's would; a pass that changes nothing
//! writes nothing, so the controllers settle.

pub(crate) mod disruption;
pub(crate) mod fit;
mod kubelet;
mod scheduler;
mod workloads;

use crate::Kubesim;
use crate::resources::ResourceType;
use crate::status::ApiError;
use crate::store::Part;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Timing of the simulated cluster.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// How long a new Node without a Ready condition takes to become Ready.
    pub node_ready_delay: Duration,
    /// How long a bound pod takes to start running.
    pub pod_start_delay: Duration,
    /// How long a deleted pod's containers take to stop (capped by its grace period).
    pub pod_shutdown: Duration,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            node_ready_delay: Duration::from_millis(500),
            pod_start_delay: Duration::ZERO,
            pod_shutdown: Duration::ZERO,
        }
    }
}

/// Running controllers; dropping the handle stops them.
pub struct Controllers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Controllers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Access to the store for controllers.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) sim: Kubesim,
    pub(crate) options: ControllerOptions,
    pub(crate) scheduler: Arc<std::sync::Mutex<scheduler::SchedulerState>>,
    /// When the kubelet first saw each deleted pod (uid), to time its shutdown.
    pub(crate) stopping:
        Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
}

impl Ctx {
    /// A built-in kind by group and plural.
    pub(crate) fn rt(&self, group: &str, plural: &str) -> ResourceType {
        let version = "v1";
        self.sim
            .inner
            .registry
            .get(group, version, plural)
            .expect("built-in kind")
    }

    /// Every object of a kind.
    pub(crate) fn list(&self, rt: &ResourceType) -> Vec<Arc<Value>> {
        self.sim.inner.store.list(rt, None).0
    }

    /// Writes a changed object (or its status); conflicts are left for the next pass.
    pub(crate) fn write(&self, rt: &ResourceType, obj: Value, part: Part) -> Option<Arc<Value>> {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.sim.inner.store.update(rt, &ns, &name, obj, part).ok()
    }

    /// Creates an object through admission, as a client would.
    pub(crate) fn create(
        &self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
    ) -> Result<Arc<Value>, ApiError> {
        crate::admission::admit(rt, &mut obj, None)?;
        self.sim.inner.store.create(rt, ns, obj)
    }
}

/// One controller: the resources that wake it and its reconcile pass.
struct Loop {
    watches: &'static [&'static str],
    tick: Duration,
    pass: fn(&Ctx),
}

impl Kubesim {
    /// Starts the scheduler, kubelet, workload, garbage-collection and disruption
    /// budget controllers. They stop when the returned handle is dropped.
    pub fn start_controllers(&self, options: ControllerOptions) -> Controllers {
        self.inner
            .kubelet_running
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let ctx = Ctx {
            sim: self.clone(),
            options,
            scheduler: Default::default(),
            stopping: Default::default(),
        };
        let loops = [
            Loop {
                watches: &["pods", "nodes"],
                tick: Duration::from_millis(200),
                pass: scheduler::pass,
            },
            Loop {
                watches: &["pods", "nodes"],
                tick: Duration::from_millis(100),
                pass: kubelet::pass,
            },
            Loop {
                watches: &["deployments.apps", "replicasets.apps", "pods"],
                tick: Duration::from_secs(1),
                pass: workloads::deployments,
            },
            Loop {
                watches: &["replicasets.apps", "pods"],
                tick: Duration::from_secs(1),
                pass: workloads::replica_sets,
            },
            Loop {
                watches: &["daemonsets.apps", "nodes", "pods"],
                tick: Duration::from_secs(1),
                pass: workloads::daemon_sets,
            },
            Loop {
                watches: &["poddisruptionbudgets.policy", "pods"],
                tick: Duration::from_secs(1),
                pass: disruption::pass,
            },
        ];
        let tasks = loops
            .into_iter()
            .map(|l| tokio::spawn(run(ctx.clone(), l)))
            .collect();
        Controllers { tasks }
    }
}

async fn run(ctx: Ctx, l: Loop) {
    let mut events = ctx.sim.inner.store.subscribe();
    (l.pass)(&ctx);
    loop {
        let woke = tokio::time::timeout(l.tick, async {
            loop {
                match events.recv().await {
                    Ok(event) if l.watches.contains(&event.resource.as_str()) => return true,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => return true,
                    Err(RecvError::Closed) => return false,
                }
            }
        })
        .await;
        if woke == Ok(false) {
            return;
        }
        // Let a burst of writes land before the pass.
        tokio::time::sleep(Duration::from_millis(2)).await;
        while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) =
            events.try_recv()
        {}
        (l.pass)(&ctx);
    }
}

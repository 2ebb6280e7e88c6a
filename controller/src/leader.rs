//! Leader election on a `coordination.k8s.io/v1` Lease, by the protocol of
//! client-go's `leaderelection` package (what upstream Karpenter runs):
//!
//! - Every write is a replace carrying the `resourceVersion` it read, so of
//!   two replicas racing for a free Lease exactly one wins; the other gets a
//!   409 and keeps following.
//! - A follower never compares `renewTime` with its own clock. It notes when
//!   it last *saw the Lease change* and takes over only after the holder's
//!   `leaseDurationSeconds` pass on its own clock without a change.
//! - The leader renews every retry period and steps down when it has not
//!   renewed for the renew deadline, which is shorter than the lease duration:
//!   it stops acting before any follower may start.
//! - When every receiver is dropped (the process shuts down), the leader
//!   releases the Lease, so a follower takes over within one retry period
//!   instead of a whole lease duration.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Field manager of every Lease write.
const FIELD_MANAGER: &str = "karpenter";

/// How often an elector tries and how long a leader may go without renewing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElectionTiming {
    /// How long followers wait after the Lease last changed before taking over.
    pub lease_duration: Duration,
    /// How long the leader keeps acting without a successful renewal.
    pub renew_deadline: Duration,
    /// Time between attempts to acquire or renew.
    pub retry_period: Duration,
}

impl ElectionTiming {
    /// Upstream's proportions (15 s lease, 10 s renew deadline, 2 s retry)
    /// scaled to `lease_duration`.
    pub fn for_lease_duration(lease_duration: Duration) -> Self {
        Self {
            lease_duration,
            renew_deadline: lease_duration * 2 / 3,
            retry_period: lease_duration * 2 / 15,
        }
    }
}

/// The Lease as this elector last saw it, and when it saw it change.
struct Observed {
    spec: LeaseSpec,
    changed_at: Instant,
}

/// What one attempt to acquire or renew found.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    /// This replica holds the Lease, renewed just now.
    Leading,
    /// Another replica holds a Lease that has not expired, or won the race.
    Following,
}

/// One replica's side of the election on one Lease.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: ElectionTiming,
    observed: Option<Observed>,
}

impl Elector {
    /// An elector for Lease `namespace/name` as `identity`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: String,
        timing: ElectionTiming,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity,
            timing,
            observed: None,
        }
    }

    /// Elects until every receiver of `leading` is dropped, keeping it true
    /// while this replica leads; then releases the Lease if it holds it.
    pub async fn run(mut self, leading: watch::Sender<bool>) {
        loop {
            if !self.acquire(&leading).await {
                return;
            }
            tracing::info!(identity = %self.identity, lease = %self.name, "acquired the leader Lease");
            leading.send_replace(true);
            let stopped = self.renew(&leading).await;
            leading.send_replace(false);
            if stopped {
                self.release().await;
                return;
            }
            tracing::warn!(identity = %self.identity, lease = %self.name, "lost the leader Lease");
        }
    }

    /// Tries every retry period until this replica leads (true) or every
    /// receiver is gone (false).
    async fn acquire(&mut self, leading: &watch::Sender<bool>) -> bool {
        loop {
            let attempt = tokio::select! {
                _ = leading.closed() => return false,
                attempt = self.attempt() => attempt,
            };
            match attempt {
                Ok(Attempt::Leading) => return true,
                Ok(Attempt::Following) => {}
                Err(error) => {
                    tracing::warn!(%error, lease = %self.name, "leader election: cannot read or write the Lease")
                }
            }
            tokio::select! {
                _ = leading.closed() => return false,
                _ = tokio::time::sleep(self.timing.retry_period) => {}
            }
        }
    }

    /// Renews every retry period while this replica leads; returns true when
    /// every receiver is gone, false when leadership is lost (another holder,
    /// or no renewal within the renew deadline).
    async fn renew(&mut self, leading: &watch::Sender<bool>) -> bool {
        let mut renewed = Instant::now();
        loop {
            tokio::select! {
                _ = leading.closed() => return true,
                _ = tokio::time::sleep(self.timing.retry_period) => {}
            }
            let deadline = renewed + self.timing.renew_deadline;
            let attempt = tokio::select! {
                _ = leading.closed() => return true,
                attempt = tokio::time::timeout_at(deadline, self.attempt()) => attempt,
            };
            match attempt {
                Ok(Ok(Attempt::Leading)) => {
                    renewed = Instant::now();
                    continue;
                }
                Ok(Ok(Attempt::Following)) => return false,
                Ok(Err(error)) => {
                    tracing::warn!(%error, lease = %self.name, "leader election: cannot renew the Lease");
                }
                Err(_elapsed) => {}
            }
            if Instant::now() >= deadline {
                return false;
            }
        }
    }

    /// One read and, when this replica may hold the Lease, one conditional write.
    async fn attempt(&mut self) -> Result<Attempt, kube::Error> {
        let Some(current) = self.api.get_opt(&self.name).await? else {
            return self.create().await;
        };
        let spec = current.spec.clone().unwrap_or_default();
        let now = Instant::now();
        match &self.observed {
            Some(observed) if observed.spec == spec => {}
            _ => {
                self.observed = Some(Observed {
                    spec: spec.clone(),
                    changed_at: now,
                })
            }
        }
        let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
        let ours = holder == Some(self.identity.as_str());
        if holder.is_some() && !ours && !self.expired(&spec, now) {
            return Ok(Attempt::Following);
        }
        let renewal = MicroTime(Timestamp::now());
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                resource_version: current.metadata.resource_version,
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(self.lease_seconds()),
                renew_time: Some(renewal.clone()),
                acquire_time: if ours {
                    spec.acquire_time.clone()
                } else {
                    Some(renewal)
                },
                lease_transitions: Some(
                    spec.lease_transitions.unwrap_or(0) + if ours { 0 } else { 1 },
                ),
                ..spec
            }),
        };
        match self.api.replace(&self.name, &post_params(), &lease).await {
            Ok(written) => Ok(self.wrote(written)),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Following),
            Err(e) => Err(e),
        }
    }

    /// Creates the Lease held by this replica; a 409 means another was first.
    async fn create(&mut self) -> Result<Attempt, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(self.lease_seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.api.create(&post_params(), &lease).await {
            Ok(written) => Ok(self.wrote(written)),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Following),
            Err(e) => Err(e),
        }
    }

    /// Records a Lease this replica wrote.
    fn wrote(&mut self, written: Lease) -> Attempt {
        self.observed = Some(Observed {
            spec: written.spec.unwrap_or_default(),
            changed_at: Instant::now(),
        });
        Attempt::Leading
    }

    /// Whether the holder's lease duration has passed since the Lease last changed.
    fn expired(&self, spec: &LeaseSpec, now: Instant) -> bool {
        let duration = spec
            .lease_duration_seconds
            .map(|s| Duration::from_secs(s.max(0) as u64))
            .unwrap_or(self.timing.lease_duration);
        self.observed
            .as_ref()
            .is_none_or(|o| now >= o.changed_at + duration)
    }

    fn lease_seconds(&self) -> i32 {
        self.timing
            .lease_duration
            .as_secs()
            .clamp(1, i32::MAX as u64) as i32
    }

    /// Gives the Lease up if this replica still holds it (best effort: a
    /// failure only means followers wait for the lease duration).
    async fn release(&mut self) {
        let Ok(Some(mut current)) = self.api.get_opt(&self.name).await else {
            return;
        };
        let Some(spec) = current.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        current.metadata.managed_fields = None;
        match self.api.replace(&self.name, &post_params(), &current).await {
            Ok(_) => {
                tracing::info!(identity = %self.identity, lease = %self.name, "released the leader Lease")
            }
            Err(error) => {
                tracing::warn!(%error, lease = %self.name, "could not release the leader Lease")
            }
        }
    }
}

fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    }
}

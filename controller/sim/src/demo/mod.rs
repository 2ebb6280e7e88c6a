//! The offline demo: kubesim and the simulated EC2 in this process, the
//! NodePool and EC2NodeClass from `examples/gitops/default.yaml`, the real
//! controller, and a scenario from `examples/workloads/` played against it
//! with a live progress line and a summary at the end. The kubeconfig it
//! prints lets `kubectl get nodes,pods,nodeclaims` watch while it runs.

pub mod bound;
pub mod cluster;
pub mod report;
pub mod scenario;

pub use cluster::{SimCluster, Timing};
pub use scenario::{Scenario, Step};

use crate::ec2::SimEvent;
use karpenter_api::v1::NodeClaim;
use karpenter_controller::catalog::Catalog;
use karpenter_controller::settings::{LogFormat, Settings};
use kube::Api;
use kube::api::ListParams;
use report::{Handled, Observer, Snapshot, Summary};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The NodePool and EC2NodeClass the demo applies unless told otherwise.
pub const DEFAULT_MANIFESTS: &str = include_str!("../../../../examples/gitops/default.yaml");
/// The scenario the demo plays unless told otherwise.
pub const DEFAULT_SCENARIO: &str = include_str!("../../../../examples/workloads/demo.yaml");

/// How to run the demo.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Scenario YAML.
    pub scenario: String,
    /// NodePool / EC2NodeClass YAML.
    pub manifests: String,
    /// Simulated time runs this many times faster than real capacity would.
    pub speed: f64,
    /// Where to write the kubeconfig.
    pub kubeconfig: PathBuf,
    /// Seed for the simulated EC2.
    pub seed: u64,
    /// Controller log level (logs go to stderr).
    pub log_level: String,
}

/// A failed demo, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The scenario or manifests are invalid.
    #[error("{0}")]
    Input(String),
    /// The embedded cluster failed.
    #[error("the embedded cluster: {0}")]
    Cluster(String),
    /// A wait step ran out of time.
    #[error("step {step} timed out after {after:?}: {state}")]
    Timeout {
        /// The step.
        step: String,
        /// How long it waited.
        after: Duration,
        /// What the cluster looked like.
        state: String,
    },
}

fn line(s: &Snapshot, elapsed: Duration, step: &str) -> String {
    format!(
        "[{:>6.1}s] pods {:>3}/{:<3} running | nodes {:>3} ready, {:>2} launching, {:>2} draining | ${:>7.3}/h | {step}",
        elapsed.as_secs_f64(),
        s.running,
        s.pods,
        s.nodes_ready,
        s.launching,
        s.draining,
        s.hourly_cost
    )
}

struct Player {
    cluster: SimCluster,
    observer: Observer,
    scenario: Scenario,
    started: Instant,
    tty: bool,
    last_print: Instant,
    last: Snapshot,
}

impl Player {
    async fn tick(&mut self, step: &str) -> Result<(), DemoError> {
        self.last = self
            .observer
            .snapshot(&self.scenario.namespace)
            .await
            .map_err(|e| DemoError::Cluster(e.to_string()))?;
        let text = line(&self.last, self.started.elapsed(), step);
        if self.tty {
            print!("\r\x1b[2K{text}");
            let _ = std::io::stdout().flush();
        } else if self.last_print.elapsed() >= Duration::from_secs(2) {
            println!("{text}");
            self.last_print = Instant::now();
        }
        Ok(())
    }

    fn say(&self, text: &str) {
        if self.tty {
            println!();
        }
        println!("[{:>6.1}s] {text}", self.started.elapsed().as_secs_f64());
    }

    async fn scale(
        &mut self,
        replicas: &std::collections::BTreeMap<String, i32>,
    ) -> Result<(), DemoError> {
        let replicas = replicas.iter().map(|(name, n)| (name.as_str(), *n));
        self.cluster
            .scale(&self.scenario.namespace, replicas)
            .await
            .map_err(|e| DemoError::Cluster(format!("scaling: {e}")))
    }

    async fn wait_running(&mut self, limit: Duration, step: &str) -> Result<Duration, DemoError> {
        self.wait_until(limit, step, Snapshot::settled).await
    }

    /// The error for a step that did not finish within `limit`.
    fn timed_out(&self, step: &str, limit: Duration) -> DemoError {
        DemoError::Timeout {
            step: step.to_string(),
            after: limit,
            state: line(&self.last, self.started.elapsed(), ""),
        }
    }

    /// Waits until every pod runs, no node is empty and the node count has
    /// not changed for `quiet` (disruption is done), at most `limit`.
    async fn wait_quiet(
        &mut self,
        limit: Duration,
        quiet: Duration,
        step: &str,
    ) -> Result<Duration, DemoError> {
        let start = Instant::now();
        let mut last = (usize::MAX, usize::MAX);
        let mut changed = Instant::now();
        loop {
            self.tick(step).await?;
            let now = (
                self.last.nodes_ready,
                self.last.draining + self.last.launching,
            );
            if now != last {
                last = now;
                changed = Instant::now();
            }
            if self.last.settled() && self.last.empty == 0 && changed.elapsed() >= quiet {
                return Ok(changed.duration_since(start));
            }
            if start.elapsed() > limit {
                return Err(self.timed_out(step, limit));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `done` holds for the cluster, at most `limit`.
    async fn wait_until(
        &mut self,
        limit: Duration,
        step: &str,
        done: fn(&Snapshot) -> bool,
    ) -> Result<Duration, DemoError> {
        let start = Instant::now();
        loop {
            self.tick(step).await?;
            if done(&self.last) && start.elapsed() >= Duration::from_millis(500) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                return Err(self.timed_out(step, limit));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn interrupt(&mut self, kind: &str) -> Result<Handled, DemoError> {
        let claims: Api<NodeClaim> = Api::all(self.cluster.client());
        let list = claims
            .list(&ListParams::default())
            .await
            .map_err(|e| DemoError::Cluster(e.to_string()))?;
        let want_spot = kind == "spot";
        let target = list.items.iter().find(|c| {
            c.metadata.deletion_timestamp.is_none()
                && c.status
                    .as_ref()
                    .and_then(|s| s.node_name.as_ref())
                    .is_some()
                && (!want_spot
                    || c.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(karpenter_api::labels::CAPACITY_TYPE))
                        == Some(&"spot".to_string()))
        });
        let Some(target) = target else {
            return Err(DemoError::Cluster(format!(
                "no running {kind} node to interrupt"
            )));
        };
        let name = target.metadata.name.clone().unwrap_or_default();
        let node = target
            .status
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let provider_id = target
            .status
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .unwrap_or_default();
        let event = match kind {
            "spot" => SimEvent::SpotInterruption,
            "rebalance" => SimEvent::Rebalance,
            "scheduled-change" => SimEvent::ScheduledChange,
            _ => SimEvent::StateChange("stopping"),
        };
        self.say(&format!(
            "AWS sends a {kind} interruption for {node} ({name})"
        ));
        let sent = Instant::now();
        self.cluster
            .interrupt(event, &provider_id)
            .map_err(|e| DemoError::Cluster(e.to_string()))?;
        let mut handled = Handled {
            kind: kind.to_string(),
            node,
            to_drain: None,
            to_recovered: None,
        };
        while sent.elapsed() < Duration::from_secs(30) {
            if self
                .observer
                .claim_deleting(&name)
                .await
                .map_err(|e| DemoError::Cluster(e.to_string()))?
            {
                handled.to_drain = Some(sent.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(d) = handled.to_drain {
            self.say(&format!(
                "node cordoned and draining after {:.2} s",
                d.as_secs_f64()
            ));
        }
        Ok(handled)
    }
}

/// Plays every NodePool's `consolidateAfter` at the demo's speed (`1m` at
/// speed 20 waits 3 s), as the simulated clocks of launches and boots are.
/// Returns the longest `consolidateAfter` as played.
async fn scale_consolidate_after(cluster: &SimCluster, speed: f64) -> Result<Duration, DemoError> {
    let mut longest = Duration::ZERO;
    let pools: Api<karpenter_api::v1::NodePool> = Api::all(cluster.client());
    let list = pools
        .list(&Default::default())
        .await
        .map_err(|e| DemoError::Cluster(e.to_string()))?;
    for pool in list.items {
        let text = pool
            .spec
            .disruption
            .as_ref()
            .and_then(|d| d.consolidate_after.clone());
        let Some(Ok(karpenter_api::duration::NillableDuration::After(after))) =
            text.as_deref().map(karpenter_api::duration::parse_nillable)
        else {
            continue;
        };
        let seconds = (after.as_secs_f64() / speed).ceil().max(1.0) as u64;
        longest = longest.max(Duration::from_secs(seconds));
        let scaled = format!("{seconds}s");
        let name = pool.metadata.name.clone().unwrap_or_default();
        println!(
            "NodePool {name}: consolidateAfter {} plays as {scaled} at speed {speed}",
            text.unwrap_or_default()
        );
        pools
            .patch(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(
                    serde_json::json!({"spec": {"disruption": {"consolidateAfter": scaled}}}),
                ),
            )
            .await
            .map_err(|e| DemoError::Cluster(e.to_string()))?;
    }
    Ok(longest)
}

/// Plays the demo; prints progress and the summary.
pub async fn run(options: DemoOptions) -> Result<(), DemoError> {
    let scenario = Scenario::parse(&options.scenario)
        .map_err(|e| DemoError::Input(format!("scenario: {e}")))?;
    let timing = Timing::at_speed(options.speed);
    let cluster = SimCluster::start(&timing, options.seed)
        .await
        .map_err(|e| DemoError::Cluster(e.to_string()))?;
    let served = cluster
        .sim
        .serve(kubesim::ServeOptions {
            address: "127.0.0.1:0".parse().expect("address"),
            kubeconfig: options.kubeconfig.clone(),
        })
        .await
        .map_err(|e| DemoError::Cluster(e.to_string()))?;
    let kubeconfig = served.kubeconfig.display().to_string();
    println!(
        "kubesim serving at {}; watch with:\n  KUBECONFIG={kubeconfig} kubectl get nodes,pods,nodeclaims\n",
        served.url()
    );
    cluster
        .apply(&options.manifests)
        .await
        .map_err(|e| DemoError::Input(format!("manifests: {e}")))?;
    cluster
        .apply(&scenario.manifests())
        .await
        .map_err(|e| DemoError::Input(format!("workloads: {e}")))?;
    let mut settings = Settings::defaults("demo");
    settings.log_format = LogFormat::Text;
    settings.log_level = options.log_level.clone();
    karpenter_controller::endpoints::init_logging(&settings);
    settings.metrics_port = 0;
    settings.health_probe_port = 0;
    settings.disruption_poll_interval = Duration::from_secs_f64((10.0 / options.speed).max(0.25));
    let quiet = 2 * scale_consolidate_after(&cluster, options.speed).await?
        + 4 * settings.disruption_poll_interval;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (metrics, controller) = cluster.controller(settings, async {
        let _ = stopped.await;
    });
    let controller = tokio::spawn(controller);
    let observer = Observer::new(
        cluster.client(),
        karpenter_controller::catalog::Catalog::us_east_1().clone(),
    );
    let mut player = Player {
        cluster,
        observer,
        started: Instant::now(),
        tty: std::io::stdout().is_terminal(),
        last_print: Instant::now() - Duration::from_secs(10),
        last: Snapshot::default(),
        scenario: scenario.clone(),
    };
    let mut scale_out = None;
    let mut scaled_at: Option<Instant> = None;
    let mut interruptions = Vec::new();
    let mut scale_in = None;
    for (i, step) in scenario.steps.iter().enumerate() {
        let label = format!(
            "step {}/{}: {}",
            i + 1,
            scenario.steps.len(),
            step.describe()
        );
        player.say(&label);
        match step {
            Step::Scale(replicas) => {
                player.scale(replicas).await?;
                scaled_at.get_or_insert_with(Instant::now);
            }
            Step::WaitRunning(limit) => {
                let limit = scenario::step_duration(limit).map_err(|e| DemoError::Input(e.0))?;
                player.wait_running(limit, &label).await?;
                if scale_out.is_none()
                    && let Some(at) = scaled_at
                {
                    scale_out = Some((player.last.pods, at.elapsed()));
                }
            }
            Step::Interrupt(kind) => {
                let mut handled = player.interrupt(kind).await?;
                let took = player
                    .wait_running(Duration::from_secs(300), &label)
                    .await?;
                handled.to_recovered = Some(took + handled.to_drain.unwrap_or_default());
                interruptions.push(handled);
            }
            Step::WaitScaledIn(limit) => {
                let limit = scenario::step_duration(limit).map_err(|e| DemoError::Input(e.0))?;
                player.tick(&label).await?;
                let before = player.last.clone();
                let took = player.wait_quiet(limit, quiet, &label).await?;
                scale_in = Some((before, player.last.clone(), took));
            }
            Step::Sleep(d) => {
                let d = scenario::step_duration(d).map_err(|e| DemoError::Input(e.0))?;
                let until = Instant::now() + d;
                while Instant::now() < until {
                    player.tick(&label).await?;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
    player.tick("done").await?;
    let _ = stop.send(());
    let _ = controller.await;
    let summary = Summary {
        scenario: &scenario.name,
        total: player.started.elapsed(),
        scale_out,
        observer: &player.observer,
        last: &player.last,
        interruptions: &interruptions,
        scale_in,
        disrupted: report::disrupted(&metrics.encode()),
        kubeconfig: &kubeconfig,
        peak_bound: &bound::peak_bound(&scenario, &options.manifests, Catalog::us_east_1()),
    };
    println!("{}", summary.render());
    Ok(())
}

//! `karpenter-sim`: the offline demo (`demo`) and the controller process with
//! the simulated EC2 (`run`), which registers a Node for every instance it
//! starts, for load tests against any API server.

use clap::{Parser, Subcommand};
use karpenter_controller::catalog::Catalog;
use karpenter_controller::process::{self, ProcessError};
use karpenter_controller::settings::Settings;
use karpenter_sim::demo::{self, DemoOptions, cluster::registering_ec2};
use karpenter_sim::ec2::SimulationConfig;
use std::path::PathBuf;
use std::process::ExitCode;

/// jemalloc, as the production controller uses (see its binary).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "karpenter-sim",
    version = karpenter_controller::VERSION,
    about = "The Karpenter controller on a simulated EC2: the offline demo and load tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller with the simulated EC2 against the cluster in the
    /// kubeconfig or service account.
    Run,
    /// Play a scenario on an embedded control plane and simulated EC2; needs nothing else.
    Demo {
        /// Scenario file (default: the built-in copy of examples/workloads/demo.yaml).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// NodePool/EC2NodeClass manifests (default: examples/gitops/default.yaml).
        #[arg(long)]
        manifests: Option<PathBuf>,
        /// How much faster than real life instances launch and boot.
        #[arg(long, default_value_t = 4.0)]
        speed: f64,
        /// Where to write the kubeconfig of the embedded control plane.
        #[arg(long, default_value = "/tmp/karpenter-demo.kubeconfig")]
        kubeconfig: PathBuf,
        /// Seed of the simulated EC2 (instance ids).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn read(path: &Option<PathBuf>, default: &str, what: &str) -> Result<String, String> {
    match path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{what} {}: {e}", p.display())),
        None => Ok(default.to_string()),
    }
}

async fn run(settings: Settings) -> Result<(), ProcessError> {
    let connections = process::connect(&settings).await?;
    let config = SimulationConfig {
        cluster_name: settings.cluster_name.clone(),
        ..SimulationConfig::default()
    };
    let catalog = Catalog::us_east_1().clone();
    let cloud = registering_ec2(
        catalog,
        config,
        connections.client.clone(),
        std::time::Duration::ZERO,
    );
    process::serve(connections, cloud, settings, "simulated").await
}

fn demo(
    scenario: Option<PathBuf>,
    manifests: Option<PathBuf>,
    speed: f64,
    kubeconfig: PathBuf,
    seed: u64,
) -> Result<(), String> {
    let scenario = read(&scenario, demo::DEFAULT_SCENARIO, "scenario")?;
    let manifests = read(&manifests, demo::DEFAULT_MANIFESTS, "manifests")?;
    if !(speed > 0.0 && speed <= 1000.0) {
        return Err(format!("--speed: must be in (0, 1000], got {speed}"));
    }
    let options = DemoOptions {
        scenario,
        manifests,
        speed,
        kubeconfig,
        seed,
        log_level: std::env::var("LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?
        .block_on(demo::run(options))
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run => {
            process::block_on(&cli.settings, run(cli.settings.clone())).map_err(|e| e.to_string())
        }
        Command::Demo {
            scenario,
            manifests,
            speed,
            kubeconfig,
            seed,
        } => demo(scenario, manifests, speed, kubeconfig, seed),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

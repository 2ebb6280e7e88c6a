//! `karpenter-controller`: the autoscaler (`run`, the default) and the
//! offline demo (`demo`).

use clap::{Parser, Subcommand};
use karpenter_controller::cloud::aws::cluster;
use karpenter_controller::cloud::aws::sdk::{AwsClients, load_config};
use karpenter_controller::cloud::aws::{AwsCloudProvider, AwsSettings};
use karpenter_controller::cloud::{CloudProvider, SimulationConfig};
use karpenter_controller::controllers::interruption::SqsQueue;
use karpenter_controller::demo::{self, DemoOptions, cluster::registering_ec2};
use karpenter_controller::endpoints::{self, Health};
use karpenter_controller::metrics::Metrics;
use karpenter_controller::runtime::{self, Parts};
use karpenter_controller::settings::{CloudKind, Settings};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// jemalloc instead of the system allocator: the controller's memory comes
/// in bursts (a batch of thousands of pods, a watch relist) that glibc's
/// malloc keeps fragmented and resident long after they are freed; jemalloc
/// hands freed pages back to the system within seconds.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "karpenter-controller",
    version = karpenter_controller::VERSION,
    about = "Kubernetes node autoscaler for AWS"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller against the cluster in the kubeconfig or service account (default).
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

async fn serve<C: CloudProvider + 'static>(
    client: kube::Client,
    lease_client: kube::Client,
    cloud: C,
    settings: Settings,
    metrics_provider: &'static str,
) -> Result<(), String> {
    let metrics = Arc::new(Metrics::new(metrics_provider));
    let health = Arc::new(Health::default());
    let (metrics_at, probes_at) = endpoints::start(&settings, metrics.clone(), health.clone())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(%metrics_at, %probes_at, "serving metrics and probes");
    let queue = if settings.interruption_queue.is_empty() {
        None
    } else {
        let config = load_config().await;
        let queue = SqsQueue::connect(&config, &settings.interruption_queue)
            .await
            .map_err(|e| format!("INTERRUPTION_QUEUE {}: {e}", settings.interruption_queue))?;
        Some(Arc::new(queue))
    };
    let parts = Parts {
        lease_client: Some(lease_client),
        client,
        cloud: Arc::new(cloud),
        queue,
        settings,
        metrics,
        health,
    };
    runtime::run(parts, stop_signal())
        .await
        .map_err(|e| e.to_string())
}

/// Resolves on SIGTERM (how the kubelet stops a pod) or Ctrl-C, so the
/// controller releases its Lease and finishes in-flight work either way.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch for SIGTERM; stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn run(settings: Settings) -> Result<(), String> {
    settings.validate().map_err(|e| e.to_string())?;
    endpoints::init_logging(&settings);
    if settings.memory_limit >= 0 {
        tracing::info!(
            memory_limit = settings.memory_limit,
            "MEMORY_LIMIT is upstream's Go garbage-collector target; it has no effect here (no garbage collector): set the pod's memory limit instead"
        );
    }
    let config = kube::Config::infer()
        .await
        .map_err(|e| format!("no Kubernetes configuration (kubeconfig or in-cluster): {e}"))?;
    // The CA this process trusts (a pod's service-account `ca.crt`): the
    // cluster CA of last resort for the nodes' user data.
    let trusted_ca = config
        .root_cert
        .as_deref()
        .filter(|certs| !certs.is_empty())
        .map(cluster::pem_bundle);
    // The Lease gets connections of its own (see `Parts::lease_client`).
    let lease_client =
        karpenter_controller::api_client::client(config.clone()).map_err(|e| e.to_string())?;
    let limit = karpenter_controller::api_client::RateLimit {
        qps: settings.kube_client_qps,
        burst: settings.kube_client_burst,
    };
    let client = karpenter_controller::api_client::client_limited(config, Some(limit))
        .map_err(|e| e.to_string())?;
    match settings.cloud_provider {
        CloudKind::Simulated => {
            let config = SimulationConfig {
                cluster_name: settings.cluster_name.clone(),
                ..SimulationConfig::default()
            };
            let catalog = karpenter_controller::catalog::Catalog::us_east_1().clone();
            let cloud = registering_ec2(catalog, config, client.clone(), std::time::Duration::ZERO);
            serve(client, lease_client, cloud, settings, "simulated").await
        }
        CloudKind::Aws => {
            let version = client
                .apiserver_version()
                .await
                .map_err(|e| format!("reading the cluster's version: {e}"))?;
            let sdk = load_config().await;
            let region = sdk
                .region()
                .map(|r| r.to_string())
                .ok_or("no AWS region: set AWS_REGION")?;
            let overrides = cluster::Overrides {
                endpoint: settings.cluster_endpoint.clone(),
                ca_bundle: settings.cluster_ca_bundle.clone(),
            };
            let eks = aws_sdk_eks::Client::new(&sdk);
            let cluster = cluster::discover(
                &eks,
                &client,
                &settings.cluster_name,
                &overrides,
                trusted_ca,
            )
            .await
            .map_err(|e| e.to_string())?;
            tracing::info!(
                endpoint = %cluster.endpoint,
                cidr = cluster.cidr.as_deref().unwrap_or("unknown"),
                dns = cluster.dns_ip.as_deref().unwrap_or("unknown"),
                "cluster discovered"
            );
            // EKS_CONTROL_PLANE: the version EKS reports, as upstream reads
            // it then; otherwise the API server's own.
            let kubernetes_version = if settings.eks_control_plane {
                eks.describe_cluster()
                    .name(&settings.cluster_name)
                    .send()
                    .await
                    .ok()
                    .and_then(|d| d.cluster?.version)
                    .ok_or("EKS_CONTROL_PLANE=true: eks:DescribeCluster gave no version")?
            } else {
                format!("{}.{}", version.major, version.minor.trim_end_matches('+'))
            };
            let mut aws = AwsSettings::new(cluster, &region, &kubernetes_version);
            aws.isolated_vpc = settings.isolated_vpc;
            aws.overheads = settings.node_overheads();
            let cloud = AwsCloudProvider::new(AwsClients::new(&sdk), aws);
            serve(client, lease_client, cloud, settings, "aws").await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `CPU_REQUESTS` sizes the worker threads, as upstream sizes GOMAXPROCS.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.settings.worker_threads())
        .enable_all()
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(async_main(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn async_main(cli: Cli) -> ExitCode {
    let result = match cli.command {
        None | Some(Command::Run) => run(cli.settings).await,
        Some(Command::Demo {
            scenario,
            manifests,
            speed,
            kubeconfig,
            seed,
        }) => {
            let inputs = read(&scenario, demo::DEFAULT_SCENARIO, "scenario").and_then(|s| {
                read(&manifests, demo::DEFAULT_MANIFESTS, "manifests").map(|m| (s, m))
            });
            match inputs {
                Err(e) => Err(e),
                Ok(_) if !(speed > 0.0 && speed <= 1000.0) => {
                    Err(format!("--speed: must be in (0, 1000], got {speed}"))
                }
                Ok((scenario, manifests)) => demo::run(DemoOptions {
                    scenario,
                    manifests,
                    speed,
                    kubeconfig,
                    seed,
                    log_level: std::env::var("LOG_LEVEL").unwrap_or_else(|_| "warn".into()),
                })
                .await
                .map_err(|e| e.to_string()),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `karpenter-controller`: the autoscaler, with EC2 through the AWS SDK.
//! The offline demo and the simulated EC2 live in `karpenter-sim`, so this
//! binary links neither kubesim nor the simulation.

use clap::{Parser, Subcommand};
use karpenter_controller::cloud::aws::cluster;
use karpenter_controller::cloud::aws::sdk::{AwsClients, load_config};
use karpenter_controller::cloud::aws::{AwsCloudProvider, AwsSettings};
use karpenter_controller::process::{self, Connections, ProcessError};
use karpenter_controller::settings::{CloudKind, Settings};
use std::process::ExitCode;

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
}

async fn run(settings: Settings) -> Result<(), ProcessError> {
    if settings.cloud_provider == CloudKind::Simulated {
        return Err(ProcessError::Cloud(
            "CLOUD_PROVIDER=simulated: the simulated EC2 is served by karpenter-sim run, not by the production controller".into(),
        ));
    }
    let connections = process::connect(&settings).await?;
    let Connections {
        client, trusted_ca, ..
    } = &connections;
    let version = client
        .apiserver_version()
        .await
        .map_err(|e| ProcessError::Cloud(format!("reading the cluster's version: {e}")))?;
    let sdk = load_config().await;
    let region = sdk
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| ProcessError::Cloud("no AWS region: set AWS_REGION".into()))?;
    let overrides = cluster::Overrides {
        endpoint: settings.cluster_endpoint.clone(),
        ca_bundle: settings.cluster_ca_bundle.clone(),
    };
    let eks = aws_sdk_eks::Client::new(&sdk);
    let cluster = cluster::discover(
        &eks,
        client,
        &settings.cluster_name,
        &overrides,
        trusted_ca.clone(),
    )
    .await
    .map_err(|e| ProcessError::Cloud(e.to_string()))?;
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
            .ok_or_else(|| {
                ProcessError::Cloud(
                    "EKS_CONTROL_PLANE=true: eks:DescribeCluster gave no version".into(),
                )
            })?
    } else {
        format!("{}.{}", version.major, version.minor.trim_end_matches('+'))
    };
    let mut aws = AwsSettings::new(cluster, &region, &kubernetes_version);
    aws.isolated_vpc = settings.isolated_vpc;
    aws.overheads = settings.node_overheads();
    let cloud = AwsCloudProvider::new(AwsClients::new(&sdk), aws);
    process::serve(connections, cloud, settings, "aws").await
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (Some(Command::Run) | None) = cli.command;
    match process::block_on(&cli.settings, run(cli.settings.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

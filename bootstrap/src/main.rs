//! `karpenter-bootstrap`: plans or converges what Karpenter needs around a
//! cluster. So far: on AWS the interruption queue and its rules, the node
//! role and the controller role; in the cluster (through the kubeconfig)
//! the CRDs. The crate docs say what is next.

use clap::{Args, Parser, Subcommand, ValueEnum};
use karpenter_bootstrap::aws::{Account, Clients, partition_of, steps};
use karpenter_bootstrap::cluster::crds;
use karpenter_bootstrap::{Change, Mode};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "karpenter-bootstrap", version, about)]
struct Cli {
    /// How to report: a line per resource, or one JSON document.
    #[arg(long, value_enum, default_value = "text", global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Show what would be created or changed; changes nothing.
    Plan(Target),
    /// Create or change what differs; safe to run again.
    Apply(Target),
}

#[derive(Args)]
struct Target {
    /// The EKS cluster's name.
    #[arg(long, env = "CLUSTER_NAME")]
    cluster_name: String,
    /// Its region (default: the AWS configuration's).
    #[arg(long)]
    region: Option<String>,
    /// Another AWS endpoint (an emulator); `AWS_ENDPOINT_URL` works too.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// Attach Session Manager's policy to the node role.
    #[arg(long)]
    ssm: bool,
    /// Only the AWS side (no kubeconfig needed).
    #[arg(long)]
    aws_only: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (mode, target) = match cli.command {
        Command::Plan(t) => (Mode::Plan, t),
        Command::Apply(t) => (Mode::Apply, t),
    };
    match run(mode, &target, cli.output).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(mode: Mode, target: &Target, output: Output) -> Result<(), String> {
    let mut builder = karpenter_controller::cloud::aws::sdk::load_config()
        .await
        .into_builder();
    if let Some(region) = &target.region {
        builder.set_region(Some(aws_config::Region::new(region.clone())));
    }
    if let Some(url) = &target.endpoint_url {
        builder.set_endpoint_url(Some(url.clone()));
    }
    let config = builder.build();
    let region = config
        .region()
        .map(|r| r.to_string())
        .ok_or("no region: pass --region or set AWS_REGION")?;
    let identity = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            format!(
                "sts:GetCallerIdentity failed ({}); check the AWS credentials",
                aws_sdk_sts::Error::from(e)
            )
        })?;
    let account = Account {
        cluster: target.cluster_name.clone(),
        partition: partition_of(&region).to_string(),
        region,
        account_id: identity.account().unwrap_or_default().to_string(),
    };
    let clients = Clients::new(&config);
    let options = steps::Options { ssm: target.ssm };
    let mut print = |change: &Change| {
        if output == Output::Text {
            println!("{change}");
        }
    };
    let mut changes = steps::reconcile(&account, &clients, mode, options, &mut print)
        .await
        .map_err(|e| e.to_string())?;
    if !target.aws_only {
        let kube = kube::Client::try_default().await.map_err(|e| {
            format!("no cluster to talk to ({e}); set KUBECONFIG, or pass --aws-only")
        })?;
        for change in crds::reconcile(&kube, mode)
            .await
            .map_err(|e| e.to_string())?
        {
            print(&change);
            changes.push(change);
        }
    }
    match output {
        Output::Text => println!(
            "{} AWS calls, {} of them changes",
            clients.calls.reads() + clients.calls.writes(),
            clients.calls.writes()
        ),
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "mode": if mode == Mode::Plan { "plan" } else { "apply" },
                "account": account.account_id,
                "region": account.region,
                "cluster": account.cluster,
                "resources": changes.iter().map(Change::to_json).collect::<Vec<_>>(),
                "calls": {"reads": clients.calls.reads(), "writes": clients.calls.writes()},
            })
        ),
    }
    Ok(())
}

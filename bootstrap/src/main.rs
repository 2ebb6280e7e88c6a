//! `karpenter-bootstrap`: plans or converges what Karpenter needs around a
//! cluster. So far: on AWS the interruption queue and its rules, the node
//! role and the controller role; in the cluster (through the kubeconfig)
//! the CRDs. The crate docs say what is next.

use clap::{Args, Parser, Subcommand, ValueEnum};
use karpenter_bootstrap::aws::{Account, Clients, partition_of, steps, teardown};
use karpenter_bootstrap::cluster::release::{self, ReleaseSpec};
use karpenter_bootstrap::cluster::{crds, nodepools};
use karpenter_bootstrap::{Action, Change, Mode};
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
    /// Whether everything exists as it should; exits 2 when something is
    /// missing or has drifted (`apply` would change it).
    Status(Target),
    /// Take it all down: NodePools (the controller drains their nodes),
    /// then what is left of the cluster's instances, then what the
    /// bootstrap created; never what it did not create.
    Destroy(Destroy),
}

#[derive(Args)]
struct Destroy {
    #[command(flatten)]
    target: Target,
    /// Show what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// How long to wait for the controller to drain the NodePools' nodes.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    drain_timeout: std::time::Duration,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    karpenter_api::duration::parse(text).map_err(|e| format!("{text}: {e}"))
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
    /// Give the node role an instance profile
    /// (`KarpenterNodeInstanceProfile-<cluster>`).
    #[arg(long)]
    instance_profile: bool,
    /// The controller's Helm release name.
    #[arg(long, default_value = "karpenter")]
    release_name: String,
    /// The namespace the controller is installed in.
    #[arg(long, default_value = "kube-system")]
    namespace: String,
    /// A YAML values file for the chart, over what the bootstrap sets
    /// (`settings.clusterName`, `settings.interruptionQueue`).
    #[arg(long)]
    values: Option<std::path::PathBuf>,
    /// Do not wait for the controller's Deployment to be available.
    #[arg(long)]
    no_wait: bool,
    /// How long `apply` waits for the controller's Deployment.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    wait_timeout: std::time::Duration,
}

impl Target {
    /// The release to install: the bootstrap's values, then the user's file.
    fn release(&self) -> Result<ReleaseSpec, String> {
        let mut values = serde_json::json!({
            "settings": {
                "clusterName": self.cluster_name,
                "interruptionQueue": karpenter_iam::queue::queue_name(&self.cluster_name),
            },
        });
        if let Some(path) = &self.values {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--values {}: {e}", path.display()))?;
            let given: serde_json::Value = serde_norway::from_str(&text)
                .map_err(|e| format!("--values {}: not YAML: {e}", path.display()))?;
            if !given.is_object() && !given.is_null() {
                return Err(format!(
                    "--values {}: must be a mapping of values",
                    path.display()
                ));
            }
            values = karpenter_bootstrap::helm::render::merge_values(&values, &given);
        }
        Ok(ReleaseSpec {
            name: self.release_name.clone(),
            namespace: self.namespace.clone(),
            values,
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Plan(t) => run(Mode::Plan, &t, cli.output).await.map(|_| true),
        Command::Apply(t) => run(Mode::Apply, &t, cli.output).await.map(|_| true),
        Command::Status(t) => status(&t, cli.output).await,
        Command::Destroy(d) => destroy(&d, cli.output).await.map(|_| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The account and clients `target` names.
async fn connect(target: &Target) -> Result<(Account, Clients), String> {
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
    Ok((account, Clients::new(&config)))
}

/// The cluster's client, unless `--aws-only`.
async fn kube_client(target: &Target) -> Result<Option<kube::Client>, String> {
    if target.aws_only {
        return Ok(None);
    }
    kube::Client::try_default()
        .await
        .map(Some)
        .map_err(|e| format!("no cluster to talk to ({e}); set KUBECONFIG, or pass --aws-only"))
}

async fn run(mode: Mode, target: &Target, output: Output) -> Result<(), String> {
    let print = |change: &Change| {
        if output == Output::Text {
            println!("{change}");
        }
    };
    let (account, clients, changes) = reconcile(mode, target, print).await?;
    let what = if mode == Mode::Plan { "plan" } else { "apply" };
    report(what, &account, &clients, &changes, output);
    Ok(())
}

/// Whether everything is as `apply` would leave it: each resource `ok`,
/// `missing`, `drifted` or `not ours` (used as it is, which counts as ok).
async fn status(target: &Target, output: Output) -> Result<bool, String> {
    let (account, clients, changes) = reconcile(Mode::Plan, target, |_| {}).await?;
    let state = |change: &Change| match &change.action {
        Action::Unchanged => "ok".to_string(),
        Action::Foreign => "ok (not ours)".to_string(),
        Action::Create | Action::Delete => "missing".to_string(),
        Action::Update(fields) => format!("drifted: {}", fields.join(", ")),
    };
    let healthy = changes
        .iter()
        .all(|c| matches!(c.action, Action::Unchanged | Action::Foreign));
    match output {
        Output::Text => {
            for change in &changes {
                println!("{:<56} {}", change.resource, state(change));
            }
            println!(
                "{}",
                if healthy {
                    "everything is in place"
                } else {
                    "not in place: `apply` would fix what is listed"
                }
            );
        }
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "command": "status",
                "account": account.account_id,
                "cluster": account.cluster,
                "healthy": healthy,
                "resources": changes.iter().map(|c| serde_json::json!({
                    "resource": c.resource, "state": state(c)})).collect::<Vec<_>>(),
                "calls": {"reads": clients.calls.reads(), "writes": clients.calls.writes()},
            })
        ),
    }
    Ok(healthy)
}

/// Reconciles the AWS side and then (unless `--aws-only`) the cluster side
/// in `mode`, telling `print` about each resource as it is done.
async fn reconcile(
    mode: Mode,
    target: &Target,
    mut print: impl FnMut(&Change),
) -> Result<(Account, Clients, Vec<Change>), String> {
    let (account, clients) = connect(target).await?;
    let options = steps::Options {
        ssm: target.ssm,
        instance_profile: target.instance_profile,
    };
    let mut changes = steps::reconcile(&account, &clients, mode, options, &mut print)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(kube) = kube_client(target).await? {
        for change in crds::reconcile(&kube, mode)
            .await
            .map_err(|e| e.to_string())?
        {
            print(&change);
            changes.push(change);
        }
        let spec = target.release()?;
        let change = release::reconcile(&kube, &spec, mode)
            .await
            .map_err(|e| e.to_string())?;
        print(&change);
        changes.push(change);
        if mode == Mode::Apply && !target.no_wait {
            release::wait_available(&kube, &spec, target.wait_timeout, |a| {
                eprintln!(
                    "waiting for deployment {}/{}: {}/{} replicas available",
                    spec.namespace, spec.name, a.available, a.wanted
                )
            })
            .await
            .map_err(|e| e.to_string())?;
        }
    }
    Ok((account, clients, changes))
}

async fn destroy(d: &Destroy, output: Output) -> Result<(), String> {
    let mode = if d.dry_run { Mode::Plan } else { Mode::Apply };
    let (account, clients) = connect(&d.target).await?;
    let mut changes = Vec::new();
    if let Some(kube) = kube_client(&d.target).await? {
        let (deleted, left) = nodepools::delete_and_drain(&kube, mode, d.drain_timeout)
            .await
            .map_err(|e| e.to_string())?;
        changes.extend(deleted);
        if left > 0 && mode == Mode::Apply {
            eprintln!(
                "warning: {left} NodeClaims still there after {:?}; their instances are terminated next",
                d.drain_timeout
            );
        }
        let spec = d.target.release()?;
        if let Some(change) = release::uninstall(&kube, &spec, mode)
            .await
            .map_err(|e| e.to_string())?
        {
            changes.push(change);
        }
    }
    changes.extend(
        teardown::destroy(&account, &clients, mode)
            .await
            .map_err(|e| e.to_string())?,
    );
    if output == Output::Text {
        for change in &changes {
            println!("{change}");
        }
    }
    let what = if d.dry_run {
        "destroy --dry-run"
    } else {
        "destroy"
    };
    report(what, &account, &clients, &changes, output);
    Ok(())
}

/// The closing line (text) or the whole report (JSON).
fn report(what: &str, account: &Account, clients: &Clients, changes: &[Change], output: Output) {
    match output {
        Output::Text => println!(
            "{} AWS calls, {} of them changes",
            clients.calls.reads() + clients.calls.writes(),
            clients.calls.writes()
        ),
        Output::Json => println!(
            "{}",
            serde_json::json!({
                "command": what,
                "account": account.account_id,
                "region": account.region,
                "cluster": account.cluster,
                "resources": changes.iter().map(Change::to_json).collect::<Vec<_>>(),
                "calls": {"reads": clients.calls.reads(), "writes": clients.calls.writes()},
            })
        ),
    }
}

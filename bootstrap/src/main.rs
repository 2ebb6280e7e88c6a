//! `karpenter-bootstrap`: plans, converges, checks or tears down what
//! Karpenter needs around an EKS cluster: on AWS the interruption queue and
//! its rules, the node and controller roles, IRSA's OIDC provider, the
//! node role's access entry and the controller's Pod Identity association;
//! in the cluster the CRDs and the controller's Helm release.

use clap::{Args, Parser, Subcommand, ValueEnum};
use karpenter_bootstrap::aws::eks::ServiceAccount;
use karpenter_bootstrap::aws::steps::{Identity, Options};
use karpenter_bootstrap::aws::{Account, Clients, queue, roles, steps, teardown};
use karpenter_bootstrap::cluster::release::{self, ReleaseSpec};
use karpenter_bootstrap::cluster::{crds, leftovers, nodepools};
use karpenter_bootstrap::helm::render::{check_values_shape, merge_values};
use karpenter_bootstrap::inputs::Inputs;
use karpenter_bootstrap::{Action, Change, Mode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The crate version and the git revision it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("KARPENTER_COMMIT"),
    ")"
);

#[derive(Parser)]
#[command(name = "karpenter-bootstrap", version = VERSION, about)]
struct Cli {
    /// How to report: a line per resource, or one JSON document; for
    /// `convert`, the v1 objects as `yaml` (the default), `json` or
    /// `terraform`.
    #[arg(long, value_enum, default_value = "text", global = true)]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
    Yaml,
    Terraform,
}

#[derive(Subcommand)]
enum Command {
    /// Show what would be created or changed; changes nothing.
    Plan(Target),
    /// Create or change what differs; safe to run again.
    Apply(Target),
    /// Whether everything exists as it should, and how the controller and
    /// its queue are doing; exits 2 when something is not in place.
    Status(Target),
    /// Take it all down: NodePools (the controller drains their nodes),
    /// then what is left of the cluster's instances, then the controller's
    /// release, then what the bootstrap created; never what it did not
    /// create.
    Destroy(Destroy),
    /// Convert old manifests (v1alpha5 Provisioner and AWSNodeTemplate,
    /// v1beta1 NodePool, EC2NodeClass, NodeClaim) to v1 NodePools and
    /// EC2NodeClasses on standard output; what needs a decision goes to
    /// standard error. Exits 0 when everything converted, 2 when some
    /// finding needs action, 1 when the input cannot be read.
    Convert(ConvertArgs),
    /// Print the least-privilege IAM policy whoever runs this tool needs
    /// (JSON, to attach to the operator's role); calls nothing.
    Policy(PolicyArgs),
}

#[derive(Args)]
struct ConvertArgs {
    /// YAML files (several documents each, `List`s too); `-` reads
    /// standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The cluster's name, for what a class the input does not hold must
    /// name (the discovery tag, the node role); `CLUSTER_NAME` otherwise.
    #[arg(long, env = "CLUSTER_NAME")]
    cluster_name: Option<String>,
}

/// Reads, converts, writes; `Ok(false)` when a finding needs action.
fn convert(args: &ConvertArgs, output: Output) -> Result<bool, String> {
    use karpenter_bootstrap::convert::{self, Options};
    use std::io::Read;
    let mut docs = Vec::new();
    for file in &args.files {
        let (origin, text) = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("standard input: {e}"))?;
            ("-".to_string(), text)
        } else {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            (file.display().to_string(), text)
        };
        docs.extend(convert::read_documents(&origin, &text).map_err(|e| e.to_string())?);
    }
    let options = Options {
        cluster_name: args.cluster_name.clone(),
    };
    let conversion = convert::convert(docs, &options);
    if conversion.objects.is_empty() {
        for finding in &conversion.findings {
            eprintln!("{finding}");
        }
        return Err(
            "nothing to convert: no v1alpha5 or v1beta1 NodePool-like objects in the input".into(),
        );
    }
    let text = match output {
        Output::Text | Output::Yaml => conversion.to_yaml(),
        Output::Json => conversion.to_json(),
        Output::Terraform => convert::terraform::render(&conversion),
    };
    print!("{text}");
    for finding in &conversion.findings {
        eprintln!("{finding}");
    }
    let actions = conversion
        .findings
        .iter()
        .filter(|f| f.severity == convert::Severity::Action)
        .count();
    if actions > 0 {
        eprintln!(
            "{actions} finding(s) need action before the output is applied (marked `action:`, and as TODO comments in the output)"
        );
    }
    Ok(actions == 0)
}

#[derive(Args)]
struct PolicyArgs {
    /// The EKS cluster's name.
    #[arg(long, env = "CLUSTER_NAME")]
    cluster_name: String,
    /// Its region.
    #[arg(long, env = "AWS_REGION")]
    region: String,
    /// Its account id.
    #[arg(long)]
    account_id: String,
    /// The node role's name, when not `KarpenterNodeRole-<cluster>`.
    #[arg(long)]
    node_role_name: Option<String>,
    /// The controller role's name, when not `KarpenterController-<cluster>`.
    #[arg(long)]
    controller_role_name: Option<String>,
}

/// The operator policy for the flags.
fn operator_policy(args: &PolicyArgs) -> Value {
    use karpenter_iam::bootstrap::{BootstrapPolicy, bootstrap_policy};
    let mut policy = BootstrapPolicy::new(&args.cluster_name, &args.region, &args.account_id);
    policy.partition = karpenter_bootstrap::aws::partition_of(&args.region).into();
    if let Some(name) = &args.node_role_name {
        policy.node_role = name.clone();
    }
    if let Some(name) = &args.controller_role_name {
        policy.controller_role = name.clone();
    }
    bootstrap_policy(&policy)
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
    drain_timeout: Duration,
    /// Terminate the cluster's remaining instances without draining them
    /// (when the drain does not finish in time, or with `--aws-only`, which
    /// cannot drain). Without it, destroy stops before terminating anything.
    #[arg(long)]
    force_terminate: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    karpenter_api::duration::parse(text).map_err(|e| format!("{text}: {e}"))
}

/// The flags; every input may also come from `--config` or `--from-terraform`.
#[derive(Args)]
struct Target {
    /// A YAML or JSON file whose keys are these flags' names
    /// (`cluster-name: prod`); flags win over it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Read the cluster's name, region, endpoint, OIDC issuer and roles from
    /// `terraform output -json` in this folder; flags and `--config` win.
    #[arg(long)]
    from_terraform: Option<PathBuf>,
    /// The Terraform binary `--from-terraform` runs.
    #[arg(long, env = "TERRAFORM", default_value = "terraform")]
    terraform: String,
    /// The EKS cluster's name.
    #[arg(long, env = "CLUSTER_NAME")]
    cluster_name: Option<String>,
    /// Its region (default: the AWS configuration's).
    #[arg(long)]
    region: Option<String>,
    /// Another AWS endpoint (an emulator); `AWS_ENDPOINT_URL` works too.
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The API server endpoint nodes join (`settings.clusterEndpoint`).
    #[arg(long)]
    cluster_endpoint: Option<String>,
    /// The cluster's OIDC issuer URL: the controller then uses IRSA (the
    /// OIDC provider is created if missing) instead of EKS Pod Identity.
    #[arg(long)]
    oidc_issuer: Option<String>,
    /// Use this existing node role (e.g. the provider's `karpenter_node_role`).
    #[arg(long)]
    node_role_name: Option<String>,
    /// Use this existing controller role.
    #[arg(long)]
    controller_role_name: Option<String>,
    /// Attach Session Manager's policy to the node role.
    #[arg(long)]
    ssm: bool,
    /// Give the node role an instance profile
    /// (`KarpenterNodeInstanceProfile-<cluster>`).
    #[arg(long)]
    instance_profile: bool,
    /// Tag this subnet or security group `karpenter.sh/discovery: <cluster>`
    /// (repeat for several; `destroy` takes the tag off again).
    #[arg(long = "discovery-tag", value_name = "ID")]
    discovery_tag: Vec<String>,
    /// Only the AWS side (no kubeconfig needed).
    #[arg(long)]
    aws_only: bool,
    /// The controller's Helm release name (also its ServiceAccount's).
    #[arg(long)]
    release_name: Option<String>,
    /// The namespace the controller is installed in.
    #[arg(long)]
    namespace: Option<String>,
    /// A YAML values file for the chart, over what the bootstrap sets
    /// (`settings.*`, the IRSA annotation) and the config file's `values`.
    #[arg(long)]
    values: Option<PathBuf>,
    /// Do not wait for the controller's Deployment to be available.
    #[arg(long)]
    no_wait: bool,
    /// How long `apply` waits for the controller's Deployment.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    wait_timeout: Duration,
}

/// The inputs from every source, resolved.
struct Resolved {
    inputs: Inputs,
    options: Options,
    release: ReleaseSpec,
}

impl Target {
    /// Flags, then the config file, then Terraform's outputs.
    fn resolve(&self) -> Result<Resolved, String> {
        let flags = Inputs {
            cluster_name: self.cluster_name.clone(),
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            cluster_endpoint: self.cluster_endpoint.clone(),
            oidc_issuer: self.oidc_issuer.clone(),
            node_role_name: self.node_role_name.clone(),
            controller_role_name: self.controller_role_name.clone(),
            release_name: self.release_name.clone(),
            namespace: self.namespace.clone(),
            values: None,
            ssm: self.ssm.then_some(true),
            instance_profile: self.instance_profile.then_some(true),
            discovery_tag: (!self.discovery_tag.is_empty()).then(|| self.discovery_tag.clone()),
        };
        let mut inputs = flags;
        if let Some(path) = &self.config {
            inputs = inputs.or(Inputs::from_config_file(path).map_err(|e| e.0)?);
        }
        if let Some(dir) = &self.from_terraform {
            inputs = inputs.or(Inputs::from_terraform_dir(dir, &self.terraform).map_err(|e| e.0)?);
        }
        let cluster = inputs.cluster_name.clone().ok_or(
            "no cluster name: pass --cluster-name, set CLUSTER_NAME, or give it in --config or --from-terraform",
        )?;
        let service_account = ServiceAccount {
            namespace: inputs.namespace.clone().unwrap_or("kube-system".into()),
            name: inputs.release_name.clone().unwrap_or("karpenter".into()),
        };
        let identity = match &inputs.oidc_issuer {
            Some(issuer) => Identity::Irsa {
                issuer: issuer.clone(),
            },
            None => Identity::PodIdentity,
        };
        let options = Options {
            ssm: inputs.ssm.unwrap_or(false),
            instance_profile: inputs.instance_profile.unwrap_or(false),
            identity,
            service_account: service_account.clone(),
            discovery: inputs.discovery_tag.clone().unwrap_or_default(),
        };
        let mut values = json!({"settings": {
            "clusterName": cluster,
            "interruptionQueue": karpenter_iam::queue::queue_name(&cluster),
        }});
        if let Some(endpoint) = &inputs.cluster_endpoint {
            values["settings"]["clusterEndpoint"] = json!(endpoint);
        }
        let chart_defaults = karpenter_bootstrap::helm::chart::Chart::embedded().values;
        if let Some(given) = &inputs.values {
            check_values_shape(&chart_defaults, given, "values").map_err(|e| e.0)?;
            values = merge_values(&values, given);
        }
        if let Some(path) = &self.values {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--values {}: {e}", path.display()))?;
            let given: Value = serde_norway::from_str(&text)
                .map_err(|e| format!("--values {}: not YAML: {e}", path.display()))?;
            if !given.is_object() && !given.is_null() {
                return Err(format!(
                    "--values {}: must be a mapping of values",
                    path.display()
                ));
            }
            check_values_shape(&chart_defaults, &given, "values")
                .map_err(|e| format!("--values {}: {e}", path.display()))?;
            values = merge_values(&values, &given);
        }
        Ok(Resolved {
            inputs,
            options,
            release: ReleaseSpec {
                name: service_account.name,
                namespace: service_account.namespace,
                values,
            },
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let for_convert = matches!(cli.output, Output::Yaml | Output::Terraform);
    let result = match cli.command {
        Command::Convert(c) => convert(&c, cli.output),
        _ if for_convert => {
            Err("--output yaml and --output terraform are for `convert`; use text or json".into())
        }
        Command::Plan(t) => run(Mode::Plan, &t, cli.output).await.map(|_| true),
        Command::Apply(t) => run(Mode::Apply, &t, cli.output).await.map(|_| true),
        Command::Status(t) => status(&t, cli.output).await,
        Command::Destroy(d) => destroy(&d, cli.output).await.map(|_| true),
        Command::Policy(p) => {
            println!("{:#}", operator_policy(&p));
            Ok(true)
        }
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

/// The account and clients the inputs name; the account id comes from STS.
async fn connect(r: &mut Resolved) -> Result<(Account, Clients), String> {
    let mut builder = karpenter_aws::sdk::load_config().await.into_builder();
    if let Some(region) = &r.inputs.region {
        builder.set_region(Some(aws_config::Region::new(region.clone())));
    }
    if let Some(url) = &r.inputs.endpoint_url {
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
    let cluster = r.inputs.cluster_name.clone().unwrap_or_default();
    let mut account = Account::new(&cluster, &region, identity.account().unwrap_or_default());
    if let Some(name) = &r.inputs.node_role_name {
        account.node_role = name.clone();
    }
    if let Some(name) = &r.inputs.controller_role_name {
        account.controller_role = name.clone();
    }
    if matches!(r.options.identity, Identity::Irsa { .. }) {
        r.release.values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"] =
            json!(roles::controller_role_arn(&account));
    }
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
    let done = reconcile(mode, target, print).await?;
    let what = if mode == Mode::Plan { "plan" } else { "apply" };
    let leftovers = print_leftovers(&done.leftovers, output);
    let extra = json!({ "oldApiObjects": leftovers });
    report(
        what,
        &done.account,
        &done.clients,
        &done.changes,
        output,
        Some(extra),
    );
    Ok(())
}

/// What `status` adds to the resources: how the controller and its queue are doing.
struct Health {
    /// `available/wanted` replicas of the controller's Deployment.
    controller: Option<release::Availability>,
    /// Messages waiting in the interruption queue.
    queue_backlog: Option<i64>,
}

/// Whether everything is as `apply` would leave it: each resource `ok`,
/// `missing`, `drifted` or `not ours` (used as it is, which counts as ok),
/// and whether the controller is available.
async fn status(target: &Target, output: Output) -> Result<bool, String> {
    let Reconciled {
        account,
        clients,
        changes,
        kube,
        leftovers: old_objects,
    } = reconcile(Mode::Plan, target, |_| {}).await?;
    let state = |change: &Change| match &change.action {
        Action::Unchanged => "ok".to_string(),
        Action::Foreign => "ok (not ours)".to_string(),
        Action::Create | Action::Delete => "missing".to_string(),
        Action::Update(fields) => format!("drifted: {}", fields.join(", ")),
    };
    let health = Health {
        controller: match &kube {
            Some((client, spec)) => release::availability(client, spec)
                .await
                .map_err(|e| e.to_string())?,
            None => None,
        },
        queue_backlog: queue::backlog(&account, &clients)
            .await
            .map_err(|e| e.to_string())?,
    };
    let in_place = changes
        .iter()
        .all(|c| matches!(c.action, Action::Unchanged | Action::Foreign));
    let controller_ok =
        kube.is_none() || health.controller.as_ref().is_some_and(|a| a.is_available());
    let migrated = old_objects.is_empty();
    let healthy = in_place && controller_ok && migrated;
    if output == Output::Text {
        for change in &changes {
            println!("{:<64} {}", change.resource, state(change));
        }
        if let Some(a) = &health.controller {
            println!(
                "controller: {}/{} replicas available",
                a.available, a.wanted
            );
        }
        if let Some(n) = health.queue_backlog {
            println!("interruption queue: {n} messages waiting");
        }
    }
    let old_api = print_leftovers(&old_objects, output);
    if output == Output::Text {
        println!(
            "{}",
            match (in_place, controller_ok, migrated) {
                (true, true, true) => "everything is in place",
                (false, _, _) => "not in place: `apply` would fix what is listed",
                (true, false, _) => "in place, but the controller is not available: see its pods",
                (true, true, false) =>
                    "in place, but objects of old Karpenter APIs remain: see `old API:` above",
            }
        );
    }
    let extra = json!({
        "healthy": healthy,
        "oldApiObjects": old_api,
        "controller": health.controller.as_ref().map(|a| json!({"available": a.available, "wanted": a.wanted})),
        "queueBacklog": health.queue_backlog,
        "states": changes.iter().map(|c| json!({"resource": c.resource, "state": state(c)})).collect::<Vec<_>>(),
    });
    report("status", &account, &clients, &changes, output, Some(extra));
    Ok(healthy)
}

/// What a reconcile did and found.
struct Reconciled {
    account: Account,
    clients: Clients,
    changes: Vec<Change>,
    /// The cluster's client and the release, unless `--aws-only`.
    kube: Option<(kube::Client, ReleaseSpec)>,
    /// Objects of the old APIs still in the cluster.
    leftovers: Vec<leftovers::Leftover>,
}

/// Each leftover as a line of text, or all of them as JSON.
fn print_leftovers(found: &[leftovers::Leftover], output: Output) -> Value {
    if output == Output::Text {
        for l in found {
            println!("old API: {}: {}; {}", l.resource, l.found, l.hint);
        }
    }
    json!(
        found
            .iter()
            .map(|l| json!({"resource": l.resource, "found": l.found, "hint": l.hint}))
            .collect::<Vec<_>>()
    )
}

/// Reconciles the AWS side and then (unless `--aws-only`) the cluster side
/// in `mode`, telling `print` about each resource as it is done.
async fn reconcile(
    mode: Mode,
    target: &Target,
    mut print: impl FnMut(&Change),
) -> Result<Reconciled, String> {
    let mut resolved = target.resolve()?;
    let (account, clients) = connect(&mut resolved).await?;
    let mut changes = steps::reconcile(&account, &clients, mode, &resolved.options, &mut print)
        .await
        .map_err(|e| e.to_string())?;
    let Some(kube) = kube_client(target).await? else {
        return Ok(Reconciled {
            account,
            clients,
            changes,
            kube: None,
            leftovers: Vec::new(),
        });
    };
    // Before the CRDs: an old stored version makes their update fail.
    let leftovers = leftovers::find(&kube).await.map_err(|e| e.to_string())?;
    for change in crds::reconcile(&kube, mode)
        .await
        .map_err(|e| e.to_string())?
    {
        print(&change);
        changes.push(change);
    }
    let spec = resolved.release;
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
    Ok(Reconciled {
        account,
        clients,
        changes,
        kube: Some((kube, spec)),
        leftovers,
    })
}

async fn destroy(d: &Destroy, output: Output) -> Result<(), String> {
    let mode = if d.dry_run { Mode::Plan } else { Mode::Apply };
    let mut resolved = d.target.resolve()?;
    let (account, clients) = connect(&mut resolved).await?;
    let mut changes = Vec::new();
    let kube = kube_client(&d.target).await?;
    if let Some(kube) = &kube {
        let (deleted, left) = nodepools::delete_and_drain(kube, mode, d.drain_timeout)
            .await
            .map_err(|e| e.to_string())?;
        changes.extend(deleted);
        if left > 0 && mode == Mode::Apply && !d.force_terminate {
            return Err(format!(
                "{left} NodeClaims are still draining after {:?}: nothing was terminated or removed. \
                 Run destroy again to wait longer (--drain-timeout), or pass --force-terminate to \
                 terminate their instances undrained",
                d.drain_timeout
            ));
        }
        let (deleted, left) = nodepools::delete_node_classes(kube, mode, d.drain_timeout)
            .await
            .map_err(|e| e.to_string())?;
        changes.extend(deleted);
        if left > 0 && mode == Mode::Apply {
            let message = format!(
                "{left} EC2NodeClasses are still being finalized after {:?}; the controller \
                 removes their instance profiles and finalizers while it runs",
                d.drain_timeout
            );
            if !d.force_terminate {
                return Err(format!(
                    "{message}: the controller was left installed. Run destroy again to wait \
                     longer (--drain-timeout), or pass --force-terminate to go on without them"
                ));
            }
            eprintln!("warning: {message}; going on (--force-terminate)");
        }
    } else if mode == Mode::Apply && !d.force_terminate {
        // Without the cluster, nothing can be drained: refuse to terminate running nodes.
        let running = teardown::terminate_instances(&account, &clients, Mode::Plan)
            .await
            .map_err(|e| e.to_string())?;
        if !running.is_empty() {
            return Err(format!(
                "--aws-only cannot drain nodes, and {} instances of the cluster's NodePools still run: \
                 nothing was terminated or removed. Run destroy with cluster access, or pass \
                 --force-terminate to terminate them undrained",
                running.len()
            ));
        }
    }
    changes.extend(
        teardown::terminate_instances(&account, &clients, mode)
            .await
            .map_err(|e| e.to_string())?,
    );
    if let Some(kube) = &kube
        && let Some(change) = release::uninstall(kube, &resolved.release, mode)
            .await
            .map_err(|e| e.to_string())?
    {
        changes.push(change);
    }
    if let Some(kube) = &kube {
        changes.extend(crds::remove(kube, mode).await.map_err(|e| e.to_string())?);
    }
    changes.extend(
        teardown::remove_resources(&account, &clients, mode, &resolved.options)
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
    report(what, &account, &clients, &changes, output, None);
    Ok(())
}

/// The closing line (text) or the whole report (JSON, with `extra`'s keys).
fn report(
    what: &str,
    account: &Account,
    clients: &Clients,
    changes: &[Change],
    output: Output,
    extra: Option<Value>,
) {
    match output {
        // `main` refuses yaml and terraform for every command but convert.
        Output::Text | Output::Yaml | Output::Terraform => println!(
            "{} AWS calls, {} of them changes",
            clients.calls.reads() + clients.calls.writes(),
            clients.calls.writes()
        ),
        Output::Json => {
            let mut doc = json!({
                "command": what,
                "account": account.account_id,
                "region": account.region,
                "cluster": account.cluster,
                "resources": changes.iter().map(Change::to_json).collect::<Vec<_>>(),
                "calls": {"reads": clients.calls.reads(), "writes": clients.calls.writes()},
            });
            if let (Some(Value::Object(extra)), Some(map)) = (extra, doc.as_object_mut()) {
                map.extend(extra);
            }
            println!("{doc}");
        }
    }
}

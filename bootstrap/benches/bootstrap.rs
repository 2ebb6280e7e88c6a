//! Bootstrap benchmark (a program that prints a table; not a test): wall
//! time and AWS calls of `plan` and `apply` on an empty account and
//! cluster, of the no-op re-run, and of `destroy`. AWS is moto on this
//! machine (with the labelled fake for EKS access entries and Pod Identity),
//! so the times are moto's more than AWS's; the call counts carry over. The
//! cluster side (CRDs, the Helm release) runs against kubesim in process.
//!
//! Run: `cargo bench -p karpenter-bootstrap --bench bootstrap`

use karpenter_bootstrap::aws::{Account, Clients, steps, teardown};
use karpenter_bootstrap::cluster::release::{self, ReleaseSpec};
use karpenter_bootstrap::cluster::{crds, nodepools};
use karpenter_bootstrap::{Action, Change, Mode};
use std::time::{Duration, Instant};
use test_support::aws::sdk_config;
use test_support::{DevEnv, MotoServer, Part};

/// One run's measurements.
struct Run {
    aws: Duration,
    cluster: Duration,
    changes: Vec<Change>,
}

fn row(what: &str, run: &Run, clients: &Clients) {
    let changed = run
        .changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .count();
    println!(
        "{:<30} | {:>8.1} | {:>7.1} | {:>10.1} | {:>5} | {:>6} | {:>9} / {}",
        what,
        (run.aws + run.cluster).as_secs_f64() * 1e3,
        run.aws.as_secs_f64() * 1e3,
        run.cluster.as_secs_f64() * 1e3,
        clients.calls.reads(),
        clients.calls.writes(),
        changed,
        run.changes.len()
    );
}

/// `plan` or `apply`: the AWS side, then the CRDs and the Helm release.
async fn reconcile(
    account: &Account,
    clients: &Clients,
    kube: &kube::Client,
    spec: &ReleaseSpec,
    mode: Mode,
) -> Run {
    let options = steps::Options::default();
    let began = Instant::now();
    let mut changes = steps::reconcile(account, clients, mode, &options, &mut |_| {})
        .await
        .expect("aws side");
    let aws = began.elapsed();
    let began = Instant::now();
    changes.extend(crds::reconcile(kube, mode).await.expect("crds"));
    changes.push(release::reconcile(kube, spec, mode).await.expect("release"));
    Run {
        aws,
        cluster: began.elapsed(),
        changes,
    }
}

#[tokio::main]
async fn main() {
    let env = DevEnv::load();
    if env.require(Part::MotoServer, "bootstrap bench").is_none() {
        eprintln!("moto is not installed: run scripts/dev-env");
        std::process::exit(1);
    }
    let moto = MotoServer::start(&env).expect("moto");
    let config = sdk_config(&moto.endpoint()).await;
    aws_sdk_eks::Client::new(&config)
        .create_cluster()
        .name("bench")
        .role_arn("arn:aws:iam::123456789012:role/eks-cluster")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        )
        .send()
        .await
        .expect("moto creates the EKS cluster (and the first connection is made)");
    let account = Account::new("bench", "us-east-1", "123456789012");
    let sim = kubesim::Kubesim::new();
    let kube = sim.client();
    let spec = ReleaseSpec {
        name: "karpenter".into(),
        namespace: "kube-system".into(),
        values: serde_json::json!({"settings": {
            "clusterName": "bench", "interruptionQueue": "Karpenter-bench"}}),
    };
    println!(
        "== karpenter-bootstrap: AWS side against moto, cluster side (CRDs, Helm release) against kubesim"
    );
    println!(
        "{:<30} | {:>8} | {:>7} | {:>10} | {:>5} | {:>6} | {:>9}",
        "step", "wall ms", "AWS ms", "cluster ms", "reads", "writes", "changed / resources"
    );
    for (what, mode) in [
        ("plan, empty account", Mode::Plan),
        ("apply, empty account", Mode::Apply),
        ("apply again (no-op)", Mode::Apply),
    ] {
        let clients = Clients::new(&config);
        let run = reconcile(&account, &clients, &kube, &spec, mode).await;
        row(what, &run, &clients);
    }
    let clients = Clients::new(&config);
    let began = Instant::now();
    let (mut changes, _) = nodepools::delete_and_drain(&kube, Mode::Apply, Duration::ZERO)
        .await
        .expect("nodepools");
    changes.extend(
        release::uninstall(&kube, &spec, Mode::Apply)
            .await
            .expect("uninstall"),
    );
    let cluster = began.elapsed();
    let began = Instant::now();
    changes.extend(
        teardown::destroy(&account, &clients, Mode::Apply, &steps::Options::default())
            .await
            .expect("destroy"),
    );
    let run = Run {
        aws: began.elapsed(),
        cluster,
        changes,
    };
    row("destroy", &run, &clients);
}

//! Bootstrap benchmark (a program that prints a table; not a test): wall
//! time and AWS calls of `apply` on an empty account, of the no-op re-run,
//! and of `destroy`, against moto on this machine (so the times are moto's
//! more than AWS's; the call counts carry over), and the CRDs against
//! kubesim in process.
//!
//! Run: `cargo bench -p karpenter-bootstrap --bench bootstrap`

use karpenter_bootstrap::aws::{Account, Clients, steps, teardown};
use karpenter_bootstrap::cluster::crds;
use karpenter_bootstrap::{Action, Change, Mode};
use std::time::{Duration, Instant};
use test_support::aws::sdk_config;
use test_support::{DevEnv, MotoServer, Part};

/// One table row; `clients` is `None` for Kubernetes steps (no AWS calls).
fn row(what: &str, took: Duration, clients: Option<&Clients>, changes: &[Change]) {
    let changed = changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .count();
    let (reads, writes) = clients.map_or(("-".to_string(), "-".to_string()), |c| {
        (c.calls.reads().to_string(), c.calls.writes().to_string())
    });
    println!(
        "{:<28} | {:>8.1} | {:>5} | {:>6} | {:>9} / {}",
        what,
        took.as_secs_f64() * 1e3,
        reads,
        writes,
        changed,
        changes.len()
    );
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
    let account = Account::new("bench", "us-east-1", "123456789012");
    println!("== karpenter-bootstrap against moto (AWS side) and kubesim (CRDs)");
    println!(
        "{:<28} | {:>8} | {:>5} | {:>6} | {:>9}",
        "step", "wall ms", "reads", "writes", "changed / resources"
    );
    for (what, mode) in [
        ("plan, empty account", Mode::Plan),
        ("apply, empty account", Mode::Apply),
        ("apply again (no-op)", Mode::Apply),
    ] {
        let clients = Clients::new(&config);
        let began = Instant::now();
        let changes = steps::reconcile(
            &account,
            &clients,
            mode,
            &steps::Options::default(),
            &mut |_| {},
        )
        .await
        .expect("reconcile");
        row(what, began.elapsed(), Some(&clients), &changes);
    }
    let clients = Clients::new(&config);
    let began = Instant::now();
    let changes = teardown::destroy(&account, &clients, Mode::Apply, &steps::Options::default())
        .await
        .expect("destroy");
    row("destroy", began.elapsed(), Some(&clients), &changes);

    let sim = kubesim::Kubesim::new();
    let client = sim.client();
    for what in ["CRDs, empty cluster", "CRDs again (no-op)"] {
        let began = Instant::now();
        let changes = crds::reconcile(&client, Mode::Apply).await.expect("crds");
        row(what, began.elapsed(), None, &changes);
    }
}

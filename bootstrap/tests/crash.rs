//! An `apply` killed (SIGKILL) part-way, at several points, and then run
//! to the end converges: the next run finishes what was left, a run after
//! that changes nothing, and the Helm release has one deployed revision.

mod common;

use karpenter_bootstrap::cluster::release::{self, ReleaseSpec};
use karpenter_bootstrap::helm::storage::Status;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use test_support::{DevEnv, MotoServer, Part};

fn apply(endpoint: &str, kubeconfig: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_karpenter-bootstrap"));
    command
        .args(["apply", "--cluster-name", "demo", "--no-wait"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("KUBECONFIG", kubeconfig);
    command
}

/// Starts `apply`, lets it report `lines` resources, then kills it.
fn kill_after(endpoint: &str, kubeconfig: &Path, lines: usize) {
    let mut child = apply(endpoint, kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = 0;
    for line in BufReader::new(stdout).lines() {
        if line.is_err() {
            break;
        }
        seen += 1;
        if seen == lines {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_killed_part_way_converges_on_the_next_run() {
    let env = DevEnv::load();
    if env.require(Part::MotoServer, "bootstrap crash").is_none() {
        return;
    }
    let moto = MotoServer::start(&env).expect("moto");
    let endpoint = moto.endpoint();
    let config = test_support::aws::sdk_config(&endpoint).await;
    common::eks_cluster(&config, "demo").await;
    let sim = kubesim::Kubesim::new();
    let dir = test_support::scratch_dir("bootstrap-crash");
    let served = sim
        .serve(kubesim::ServeOptions::loopback(dir.join("kubeconfig")))
        .await
        .unwrap();
    let kubeconfig = served.kubeconfig.clone();

    // Killed after 1, 3, 7 and 12 of its 16 resources (AWS, CRDs, release).
    for lines in [1, 3, 7, 12] {
        let (endpoint, kubeconfig) = (endpoint.clone(), kubeconfig.clone());
        tokio::task::spawn_blocking(move || kill_after(&endpoint, &kubeconfig, lines))
            .await
            .unwrap();
    }
    let run = |json_output: bool| {
        let (endpoint, kubeconfig) = (endpoint.clone(), kubeconfig.clone());
        tokio::task::spawn_blocking(move || {
            let mut command = apply(&endpoint, &kubeconfig);
            if json_output {
                command.args(["--output", "json"]);
            }
            let out = command.output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        })
    };
    // Ten AWS resources, the CRDs, the Helm release.
    let total = 10 + karpenter_api::crd::all().len() + 1;
    let finished = run(true).await.unwrap();
    let resources = finished["resources"].as_array().unwrap();
    assert_eq!(resources.len(), total, "{finished}");
    let again = run(true).await.unwrap();
    let actions: Vec<&str> = again["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["unchanged"; total], "{again}");
    assert_eq!(again["calls"]["writes"], 0);

    let spec = ReleaseSpec {
        name: "karpenter".into(),
        namespace: "kube-system".into(),
        values: json!({"settings": {"clusterName": "demo", "interruptionQueue": "Karpenter-demo"}}),
    };
    let history = release::history(&sim.client(), &spec).await.unwrap();
    assert_eq!(
        history.last().map(|r| r.info.status),
        Some(Status::Deployed),
        "{history:?}"
    );
    assert!(
        history.iter().all(|r| !r.info.status.is_pending()),
        "no revision is left pending: {history:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

//! The controller process (`karpenter-sim run`: the production process code,
//! `karpenter_controller::process`, with the simulated EC2) as Kubernetes runs it: against an
//! API server over TLS, stopped with SIGTERM when its pod is deleted. A clean
//! stop releases the Lease (so the other replica takes over at once instead
//! of after the lease duration) and exits with status 0.

use k8s_openapi::api::coordination::v1::Lease;
use karpenter_sim::demo::Timing;
use karpenter_sim::demo::cluster::control_plane;
use kube::Api;
use kubesim::ServeOptions;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("karpenter-leader-election")
        .await
        .unwrap()
        .and_then(|l| l.spec?.holder_identity)
        .filter(|h| !h.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_the_lease_and_exits_cleanly() {
    let (sim, _controllers) = control_plane(&Timing::at_speed(100.0)).await.unwrap();
    let dir = test_support::scratch_dir("karpenter-process");
    let served = sim
        .serve(ServeOptions::loopback(dir.join("kubeconfig")))
        .await
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_karpenter-sim"))
        .arg("run")
        .env("KUBECONFIG", &served.kubeconfig)
        .env("CLUSTER_NAME", "process-test")
        .env("CLOUD_PROVIDER", "simulated")
        .env("POD_NAME", "karpenter-a")
        .env("METRICS_PORT", "0")
        .env("HEALTH_PROBE_PORT", "0")
        .env("LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("the controller binary starts");

    let leases: Api<Lease> = Api::namespaced(sim.client(), "kube-system");
    let began = Instant::now();
    while holder(&leases).await.as_deref() != Some("karpenter-a") {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the controller exited before leading: {status}");
        }
        if began.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the controller did not take the Lease within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let signalled = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if stopping.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("the controller was still running 10 s after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert_eq!(
        holder(&leases).await,
        None,
        "the Lease is released on a clean stop"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn version_names_the_crate_version_and_revision() {
    test_support::version::assert_version(env!("CARGO_BIN_EXE_karpenter-sim"), "karpenter-sim");
}

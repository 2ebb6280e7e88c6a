//! The controller's memory and CPU while it manages 10k pods on 2k nodes
//! (target: under 128 MB RSS). The controller runs as its own process (the
//! controller process, `karpenter-sim run` with the simulated EC2) against
//! kubesim served over TLS by this process, so its RSS and CPU time can be
//! read from `/proc` alone. Prints a table per phase.
//!
//! `cargo bench -p karpenter-sim --bench footprint`

use k8s_openapi::api::core::v1::{Node, Pod};
use karpenter_api::v1::NodeClaim;
use karpenter_sim::demo::cluster::{apply_yaml, control_plane};
use karpenter_sim::demo::{self, Timing};
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Pods at full scale (`FOOTPRINT_PODS` overrides it, for profiling runs
/// at a fraction of the scale); five fit a node.
fn pods() -> i32 {
    std::env::var("FOOTPRINT_PODS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// The demo's pool narrowed to 4-vCPU types (five 700m pods fill one, so
/// 10k pods need 2k nodes) and without limits, and the workload at 0.
fn manifests() -> String {
    let pool = json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool",
        "metadata": {"name": "default"},
        "spec": {"template": {"spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": [
                {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": ["c", "m", "r"]},
                {"key": "karpenter.k8s.aws/instance-cpu", "operator": "In", "values": ["4"]},
                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
            ],
        }}},
    });
    let class = demo::DEFAULT_MANIFESTS
        .split("\n---\n")
        .nth(1)
        .expect("the EC2NodeClass comes second");
    let load = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "load", "namespace": "default"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "load"}},
            "template": {
                "metadata": {"labels": {"app": "load"}},
                "spec": {"containers": [{"name": "load", "image": "load",
                    "resources": {"requests": {"cpu": "700m", "memory": "1Gi"}}}]},
            },
        },
    });
    format!("{pool}\n---\n{class}\n---\n{load}\n")
}

/// Resident memory (all of it, and the anonymous part: heap and stacks,
/// not the mapped binary), peak resident memory (MiB) and CPU seconds of a
/// process.
#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    rss: f64,
    anon: f64,
    peak: f64,
    cpu: f64,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |field: &str| {
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Usage {
        rss: kib("VmRSS:"),
        anon: kib("RssAnon:"),
        peak: kib("VmHWM:"),
        cpu: (ticks(11) + ticks(12)) / USER_HZ,
    }
}

/// Clock ticks per second in `/proc/<pid>/stat` (Linux's USER_HZ, 100 on
/// every architecture Rust targets).
const USER_HZ: f64 = 100.0;

fn controller(kubeconfig: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_karpenter-sim"))
        .arg("run")
        .env("KUBECONFIG", kubeconfig)
        .env("CLUSTER_NAME", "demo")
        .env("CLOUD_PROVIDER", "simulated")
        .env("DISABLE_LEADER_ELECTION", "true")
        .env("METRICS_PORT", "0")
        .env("HEALTH_PROBE_PORT", "0")
        .env("LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("the controller binary starts")
}

struct Row {
    phase: &'static str,
    wall: Duration,
    start: Usage,
    end: Usage,
    max_rss: f64,
    nodes: usize,
    claims: usize,
    running: usize,
}

/// Samples the controller every 250 ms until `done` (asked every 2 s: a
/// list of 10k pods is real work for the API server the controller talks
/// to) says the phase is over.
async fn phase<F: Future<Output = bool>>(
    name: &'static str,
    pid: u32,
    client: &kube::Client,
    limit: Duration,
    mut done: impl FnMut() -> F,
) -> Row {
    let start = usage(pid);
    let began = Instant::now();
    let mut max_rss = start.rss;
    let mut reported = Instant::now();
    while !done().await {
        for _ in 0..8 {
            assert!(began.elapsed() < limit, "phase {name} took over {limit:?}");
            tokio::time::sleep(Duration::from_millis(250)).await;
            max_rss = max_rss.max(usage(pid).rss);
        }
        if reported.elapsed() >= PROGRESS_EVERY {
            reported = Instant::now();
            progress(name, began.elapsed(), pid, client).await;
        }
    }
    let end = usage(pid);
    let nodes: Api<Node> = Api::all(client.clone());
    let claims: Api<NodeClaim> = Api::all(client.clone());
    Row {
        phase: name,
        wall: began.elapsed(),
        start,
        end,
        max_rss: max_rss.max(end.rss),
        nodes: nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        claims: claims
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        running: running(client).await,
    }
}

/// How often a phase says where it is (on stderr), so a stall shows which
/// side stopped moving: the controller's CPU, this process's (kubesim's
/// API server, scheduler and kubelets), nodes, claims, pods bound and running.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

async fn progress(phase: &str, elapsed: Duration, pid: u32, client: &kube::Client) {
    let controller = usage(pid);
    let sim = usage(std::process::id());
    let count = |list: Result<usize, kube::Error>| list.map_or("?".to_string(), |n| n.to_string());
    let nodes: Api<Node> = Api::all(client.clone());
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let listed = pods.list(&ListParams::default()).await;
    let (bound, running) = listed.as_ref().map_or((0, 0), |l| {
        let bound = l
            .items
            .iter()
            .filter(|p| p.spec.as_ref().is_some_and(|s| s.node_name.is_some()))
            .count();
        let running = l
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        (bound, running)
    });
    eprintln!(
        "[{:>6.1} s] {phase}: controller CPU {:.1} s, RSS {:.1} MiB | kubesim CPU {:.1} s | nodes {}, claims {}, pods {} bound {bound} running {running}",
        elapsed.as_secs_f64(),
        controller.cpu,
        controller.rss,
        sim.cpu,
        count(
            nodes
                .list(&ListParams::default())
                .await
                .map(|l| l.items.len())
        ),
        count(
            claims
                .list(&ListParams::default())
                .await
                .map(|l| l.items.len())
        ),
        listed.as_ref().map_or(0, |l| l.items.len()),
    );
}

async fn running(client: &kube::Client) -> usize {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (sim, _controllers) = control_plane(&Timing::at_speed(100.0)).await.unwrap();
    let dir = test_support::scratch_dir("karpenter-footprint");
    let served = sim
        .serve(kubesim::ServeOptions::loopback(dir.join("kubeconfig")))
        .await
        .unwrap();
    let client = sim.client();
    let pods = pods();
    apply_yaml(&client, &manifests()).await.unwrap();
    let mut child = controller(&served.kubeconfig);
    let pid = child.id();

    let mut rows = Vec::new();
    let settle = Instant::now();
    rows.push(
        phase(
            "start, empty cluster",
            pid,
            &client,
            Duration::from_secs(60),
            || async { settle.elapsed() > Duration::from_secs(5) },
        )
        .await,
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "default");
    deployments
        .patch_scale(
            "load",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": pods}})),
        )
        .await
        .unwrap();
    rows.push(
        phase(
            "0 -> all pods running",
            pid,
            &client,
            Duration::from_secs(900),
            || {
                let client = client.clone();
                async move { running(&client).await == pods as usize }
            },
        )
        .await,
    );
    let steady = Instant::now();
    rows.push(
        phase(
            "steady, 30 s",
            pid,
            &client,
            Duration::from_secs(60),
            || async { steady.elapsed() > Duration::from_secs(30) },
        )
        .await,
    );
    let stopped = stop(&mut child);
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "== controller process managing {pods} pods on {} nodes (target at 10k pods: RSS < 128 MB)",
        pods / 5
    );
    println!(
        "{:<24} | {:>7} | {:>6} | {:>8} | {:>8} | {:>8} | {:>6} | {:>6} | {:>7}",
        "phase", "wall s", "CPU s", "RSS MiB", "anon MiB", "max MiB", "nodes", "claims", "running"
    );
    for row in &rows {
        println!(
            "{:<24} | {:>7.1} | {:>6.1} | {:>8.1} | {:>8.1} | {:>8.1} | {:>6} | {:>6} | {:>7}",
            row.phase,
            row.wall.as_secs_f64(),
            row.end.cpu - row.start.cpu,
            row.end.rss,
            row.end.anon,
            row.max_rss,
            row.nodes,
            row.claims,
            row.running
        );
    }
    let peak = rows.last().map(|r| r.end.peak).unwrap_or(0.0);
    println!("peak RSS (VmHWM): {peak:.1} MiB");
    println!("{stopped}");
}

/// Stops the controller the way the kubelet does, with SIGTERM, and says
/// how long the graceful stop took (killed after 10 s). With
/// `_RJEM_MALLOC_CONF=stats_print:true` in the environment, the
/// allocator's statistics are printed as it exits.
fn stop(child: &mut Child) -> String {
    let began = Instant::now();
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    while sent && began.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(status)) = child.try_wait() {
            return format!(
                "graceful stop (SIGTERM): {:.2} s, {status}",
                began.elapsed().as_secs_f64()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    "the controller did not stop within 10 s of SIGTERM; killed".to_string()
}

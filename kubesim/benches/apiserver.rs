//! kubesim API server benchmark (a program that prints tables; not a test).
//!
//! 1. Load 100,000 objects through `kube::Client` (in-process): 10,000 pods,
//!    2,000 nodes and 88,000 ConfigMaps in 100 namespaces. Create latency and
//!    memory per object.
//! 2. List the 10,000 pods, 20 times.
//! 3. Fan a watch out to 20 watchers while 1,000 writes happen; per-delivery latency.
//! 4. Start the controllers: the 10,000 pending pods are scheduled onto the
//!    2,000 nodes and started; GET latency while that happens; time to settle.
//!
//! Run: `cargo bench -p kubesim --bench apiserver`

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kubesim::{ControllerOptions, Kubesim, NodeRegistration};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PODS: usize = 10_000;
const NODES: usize = 2_000;
const CONFIG_MAPS: usize = 88_000;
const NAMESPACES: usize = 100;
const WATCHERS: usize = 20;
const WRITES: usize = 1_000;

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

struct Latencies(Vec<Duration>);

impl Latencies {
    fn row(&mut self, what: &str, total: Duration) {
        self.0.sort();
        let pct = |p: f64| self.0[((self.0.len() as f64 - 1.0) * p) as usize];
        let ms = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
        println!(
            "| {what:<34} | {:>7} | {:>9} | {:>9} | {:>9} | {:>9} | {:>10.0} |",
            self.0.len(),
            ms(pct(0.50)),
            ms(pct(0.90)),
            ms(pct(0.99)),
            ms(*self.0.last().unwrap()),
            self.0.len() as f64 / total.as_secs_f64(),
        );
    }
}

fn header() {
    println!(
        "| {:<34} | {:>7} | {:>9} | {:>9} | {:>9} | {:>9} | {:>10} |",
        "operation", "count", "p50 ms", "p90 ms", "p99 ms", "max ms", "per second"
    );
    println!(
        "|{}|---------|-----------|-----------|-----------|-----------|------------|",
        "-".repeat(36)
    );
}

async fn timed<F: std::future::Future>(latencies: &mut Vec<Duration>, f: F) -> F::Output {
    let start = Instant::now();
    let out = f.await;
    latencies.push(start.elapsed());
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sim = Kubesim::new();
    let client = sim.client();
    let rss_start = rss_bytes();
    println!(
        "\nkubesim API server benchmark ({} cores)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    header();

    // 1. Load.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for i in 0..NAMESPACES {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": format!("ns-{i}")}})).unwrap();
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "ns-0");
    let mut latencies = Vec::with_capacity(PODS);
    let start = Instant::now();
    for i in 0..PODS {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("pod-{i}"), "labels": {"app": format!("app-{}", i % 50)}},
            "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
        }))
        .unwrap();
        timed(&mut latencies, pods.create(&PostParams::default(), &pod))
            .await
            .unwrap();
    }
    Latencies(latencies).row("create pod", start.elapsed());

    let mut latencies = Vec::with_capacity(NODES);
    let start = Instant::now();
    let capacity: BTreeMap<String, String> = [("cpu", "4"), ("memory", "16Gi"), ("pods", "110")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for i in 0..NODES {
        let t = Instant::now();
        sim.register_node(&NodeRegistration {
            name: format!("node-{i}"),
            provider_id: format!("aws:///us-east-1a/i-{i:017x}"),
            labels: [(
                "topology.kubernetes.io/zone".to_string(),
                format!("us-east-1{}", ["a", "b", "c"][i % 3]),
            )]
            .into(),
            taints: vec![],
            capacity: capacity.clone(),
            allocatable: capacity.clone(),
        })
        .unwrap();
        latencies.push(t.elapsed());
    }
    Latencies(latencies).row("register node (hook, no HTTP)", start.elapsed());

    let mut latencies = Vec::with_capacity(CONFIG_MAPS);
    let start = Instant::now();
    for i in 0..CONFIG_MAPS {
        let maps: Api<ConfigMap> =
            Api::namespaced(client.clone(), &format!("ns-{}", i % NAMESPACES));
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cm-{i}")}, "data": {"key": "value", "other": "x".repeat(64)}})).unwrap();
        timed(&mut latencies, maps.create(&PostParams::default(), &cm))
            .await
            .unwrap();
    }
    Latencies(latencies).row("create configmap", start.elapsed());
    let objects = PODS + NODES + CONFIG_MAPS + NAMESPACES;
    let rss_loaded = rss_bytes();

    // 2. List 10k pods.
    let mut latencies = Vec::new();
    let start = Instant::now();
    for _ in 0..20 {
        let list = timed(&mut latencies, pods.list(&ListParams::default()))
            .await
            .unwrap();
        assert_eq!(list.items.len(), PODS);
    }
    Latencies(latencies).row("list 10,000 pods", start.elapsed());
    let mut latencies = Vec::new();
    let start = Instant::now();
    for i in 0..20 {
        let selector = format!("app=app-{i}");
        let list = timed(
            &mut latencies,
            pods.list(&ListParams::default().labels(&selector)),
        )
        .await
        .unwrap();
        assert_eq!(list.items.len(), PODS / 50);
    }
    Latencies(latencies).row("list 200 of 10,000 by label", start.elapsed());

    // 3. Watch fan-out.
    let rv = pods
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let issued: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; WRITES]));
    let deliveries: Arc<Mutex<Vec<Duration>>> = Arc::new(Mutex::new(Vec::new()));
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let stream = pods
            .watch(&WatchParams::default().timeout(290), &rv)
            .await
            .unwrap();
        let issued = issued.clone();
        let deliveries = deliveries.clone();
        watchers.push(tokio::spawn(async move {
            let mut stream = stream.boxed();
            let mut seen = 0;
            while let Some(event) = stream.try_next().await.unwrap() {
                if let WatchEvent::Modified(pod) = event {
                    let seq: usize = pod.metadata.annotations.unwrap()["bench/seq"]
                        .parse()
                        .unwrap();
                    let at = issued.lock().unwrap()[seq].unwrap();
                    deliveries.lock().unwrap().push(at.elapsed());
                    seen += 1;
                    if seen == WRITES {
                        return;
                    }
                }
            }
        }));
    }
    let mut latencies = Vec::new();
    let start = Instant::now();
    for seq in 0..WRITES {
        issued.lock().unwrap()[seq] = Some(Instant::now());
        let patch = json!({"metadata": {"annotations": {"bench/seq": seq.to_string()}}});
        timed(
            &mut latencies,
            pods.patch(
                &format!("pod-{seq}"),
                &PatchParams::default(),
                &Patch::Merge(patch),
            ),
        )
        .await
        .unwrap();
    }
    let write_time = start.elapsed();
    for w in watchers {
        w.await.unwrap();
    }
    let fan_out = start.elapsed();
    Latencies(latencies).row("patch pod (20 watchers)", write_time);
    let delivered = std::mem::take(&mut *deliveries.lock().unwrap());
    Latencies(delivered).row("watch delivery (write -> watcher)", fan_out);

    // 4. Controllers on 10k pods and 2k nodes.
    let controllers = sim.start_controllers(ControllerOptions {
        node_ready_delay: Duration::ZERO,
        pod_start_delay: Duration::ZERO,
        pod_shutdown: Duration::ZERO,
    });
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut settled = None;
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(300) {
        timed(
            &mut latencies,
            pods.get(&format!("pod-{}", (i * 7919) % PODS)),
        )
        .await
        .unwrap();
        i += 1;
        if i % 200 == 0 {
            let running = pods
                .list(
                    &ListParams::default()
                        .fields("status.phase=Running")
                        .limit(1),
                )
                .await
                .unwrap();
            let remaining =
                running.metadata.remaining_item_count.unwrap_or(0) as usize + running.items.len();
            if remaining == PODS {
                settled = Some(start.elapsed());
                break;
            }
        }
    }
    let elapsed = start.elapsed();
    Latencies(latencies).row("get pod while scheduling 10k pods", elapsed);
    drop(controllers);

    println!();
    let settled = settled.map_or("did not settle within 300 s".to_string(), |d| {
        format!("{:.1} s", d.as_secs_f64())
    });
    println!("10,000 pending pods scheduled onto 2,000 nodes and Running: {settled}");
    println!(
        "memory: {} objects loaded, RSS {:.0} MiB -> {:.0} MiB, {:.2} KiB per object",
        objects,
        rss_start as f64 / 1048576.0,
        rss_loaded as f64 / 1048576.0,
        (rss_loaded.saturating_sub(rss_start)) as f64 / objects as f64 / 1024.0
    );
}

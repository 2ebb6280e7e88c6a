//! kubectl conformance: the real kubectl 1.33 and 1.27 against `Kubesim::serve`
//! over TLS with a bearer token: apply (client- and server-side), get in every
//! output the suite needs, watch, wait, label, annotate, the three patch types,
//! delete, and Karpenter's CRDs and example manifests read back with defaults.

use kubesim::{Kubesim, ServeOptions};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use test_support::{DevEnv, Part};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    /// Runs kubectl; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut child = Command::new(&self.binary)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("kubectl starts");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(input.as_bytes()).await.unwrap();
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("kubectl finished")
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs kubectl and expects success; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args, None).await;
        assert!(ok, "kubectl {args:?} failed:\n{stderr}\n{stdout}");
        stdout
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all).await).expect("kubectl prints JSON")
    }
}

fn repo(path: &str) -> String {
    test_support::repo_path(path).to_string_lossy().into_owned()
}

/// A control plane served over TLS (with controllers when asked), a kubectl
/// pointed at it, and a scratch folder removed on drop.
struct Cluster {
    kubectl: Kubectl,
    dir: PathBuf,
    _served: kubesim::Served,
    _controllers: Option<kubesim::Controllers>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts a fresh cluster for `test`, or `None` (skipped loudly) when the kubectl is missing.
async fn setup(part: Part, test: &str, controllers: bool) -> Option<Cluster> {
    let binary = DevEnv::load().require(part, test)?;
    let dir = std::env::temp_dir().join(format!("kubesim-{test}-{}", std::process::id()));
    let sim = Kubesim::new();
    let options = kubesim::ControllerOptions {
        node_ready_delay: Duration::from_millis(50),
        ..Default::default()
    };
    let controllers = controllers.then(|| sim.start_controllers(options));
    let served = sim
        .serve(ServeOptions::loopback(dir.join("kubeconfig")))
        .await
        .expect("serves");
    let kubectl = Kubectl {
        binary,
        kubeconfig: served.kubeconfig.clone(),
    };
    Some(Cluster {
        kubectl,
        dir,
        _served: served,
        _controllers: controllers,
    })
}

/// The column names in the first line of `kubectl get` table output.
fn header_of(table: &str) -> Vec<&str> {
    table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect()
}

/// Names of the `app=web` pods matching a field selector.
async fn web_pods(k: &Kubectl, field_selector: &str) -> Vec<String> {
    let out = k
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "--field-selector",
            field_selector,
            "-o",
            "name",
        ])
        .await;
    out.lines().map(str::to_string).collect()
}

async fn conformance(part: Part, test: &str) {
    let Some(cluster) = setup(part, test, false).await else {
        return;
    };
    let k = &cluster.kubectl;

    // Discovery and version.
    let version = k.ok(&["version", "-o", "json"]).await;
    assert!(version.contains("v1.31.0-kubesim"), "{version}");
    let namespaces = k.ok(&["get", "namespaces", "-o", "name"]).await;
    assert!(
        namespaces.contains("namespace/default") && namespaces.contains("namespace/kube-system")
    );

    // Karpenter CRDs, then the GitOps examples, read back with defaults.
    k.ok(&["apply", "-f", &repo("charts/karpenter/crds")]).await;
    k.ok(&[
        "wait",
        "--for",
        "condition=Established",
        "crd/nodepools.karpenter.sh",
        "--timeout",
        "10s",
    ])
    .await;
    let applied = k.ok(&["apply", "-f", &repo("examples/gitops")]).await;
    assert!(
        applied.contains("nodepool.karpenter.sh/default created"),
        "{applied}"
    );
    let again = k
        .ok(&["apply", "-f", &repo("examples/gitops/default.yaml")])
        .await;
    assert!(
        again.contains("nodepool.karpenter.sh/default unchanged"),
        "{again}"
    );
    let pool = k.json(&["get", "nodepool", "default"]).await;
    assert_eq!(
        pool["spec"]["disruption"]["budgets"],
        serde_json::json!([{"nodes": "10%"}])
    );
    assert_eq!(pool["spec"]["template"]["spec"]["expireAfter"], "720h");
    let class = k.json(&["get", "ec2nodeclass", "default"]).await;
    assert_eq!(class["spec"]["metadataOptions"]["httpTokens"], "required");
    assert_eq!(
        class["spec"]["metadataOptions"]["httpPutResponseHopLimit"],
        1
    );
    let pools = k.ok(&["get", "nodepools", "-o", "wide"]).await;
    let header = header_of(&pools);
    assert_eq!(
        header,
        [
            "NAME",
            "NODECLASS",
            "NODES",
            "READY",
            "AGE",
            "WEIGHT",
            "CPU",
            "MEMORY"
        ],
        "{pools}"
    );
    assert!(
        pools
            .lines()
            .any(|l| l.starts_with("spot ") && l.contains(" 100 ")),
        "{pools}"
    );
    let short = k.ok(&["get", "ec2nc", "-o", "name"]).await;
    assert!(
        short.contains("ec2nodeclass.karpenter.k8s.aws/default"),
        "{short}"
    );

    // An invalid manifest is refused with the field path and the rule.
    let (ok, _, stderr) = k
        .run(
            &[
                "apply",
                "-f",
                &repo("examples/invalid/nodepool-budgets.yaml"),
            ],
            None,
        )
        .await;
    assert!(!ok);
    assert!(
        stderr.contains("is invalid")
            && stderr.contains("spec.disruption.budgets: 'schedule' must be set with 'duration'"),
        "{stderr}"
    );

    // Server-side apply.
    let ssa = k
        .ok(&[
            "apply",
            "--server-side",
            "-f",
            &repo("examples/gitops/arm64.yaml"),
        ])
        .await;
    assert!(ssa.contains("serverside-applied"), "{ssa}");

    // Built-in kinds: create from stdin, label, annotate, three patch types, yaml output.
    let (ok, _, stderr) = k
        .run(
            &["apply", "-f", "-"],
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"),
        )
        .await;
    assert!(ok, "{stderr}");
    k.ok(&["label", "configmap", "settings", "team=platform"])
        .await;
    k.ok(&["annotate", "configmap", "settings", "owner=me"])
        .await;
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"merge":"1"}}"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/data/json","value":"2"}]"#,
    ])
    .await;
    k.ok(&[
        "patch",
        "configmap",
        "settings",
        "--type",
        "strategic",
        "-p",
        r#"{"data":{"strategic":"3"}}"#,
    ])
    .await;
    let cm = k.json(&["get", "configmap", "settings"]).await;
    assert_eq!(cm["metadata"]["labels"]["team"], "platform");
    assert_eq!(cm["metadata"]["annotations"]["owner"], "me");
    assert_eq!(
        cm["data"],
        serde_json::json!({"a": "b", "merge": "1", "json": "2", "strategic": "3"})
    );
    let yaml = k.ok(&["get", "configmap", "settings", "-o", "yaml"]).await;
    assert!(
        yaml.contains("kind: ConfigMap") && yaml.contains("strategic: \"3\""),
        "{yaml}"
    );
    let selected = k
        .ok(&["get", "configmaps", "-l", "team=platform", "-o", "name"])
        .await;
    assert_eq!(selected.trim(), "configmap/settings");

    // Watch: a new object shows up on a running `get -w`.
    let mut watch = Command::new(&k.binary)
        .args(["get", "configmaps", "-w", "-o", "name"])
        .env("KUBECONFIG", &k.kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    // The initial list prints first; then a creation arrives as an event.
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .as_deref(),
        Some("configmap/settings")
    );
    let (ok, _, stderr) = k
        .run(
            &["apply", "-f", "-"],
            Some("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: watched}\n"),
        )
        .await;
    assert!(ok, "{stderr}");
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("event in time")
        .unwrap();
    assert_eq!(line.as_deref(), Some("configmap/watched"));
    watch.kill().await.unwrap();

    // Delete.
    k.ok(&["delete", "configmap", "settings", "watched"]).await;
    let (ok, _, stderr) = k.run(&["get", "configmap", "settings"], None).await;
    assert!(
        !ok && stderr.contains("NotFound") && stderr.contains("\"settings\" not found"),
        "{stderr}"
    );
    k.ok(&["delete", "-f", &repo("examples/gitops/default.yaml")])
        .await;
    let pools = k.ok(&["get", "nodepools", "-o", "name"]).await;
    assert!(
        !pools.contains("nodepool.karpenter.sh/default\n"),
        "{pools}"
    );
}

const NODES: &str = "
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {kubernetes.io/hostname: n1}}
status: {allocatable: {cpu: '4', memory: 8Gi, pods: '110'}, capacity: {cpu: '4', memory: 8Gi, pods: '110'}}
---
apiVersion: v1
kind: Node
metadata: {name: n2, labels: {kubernetes.io/hostname: n2}}
status: {allocatable: {cpu: '4', memory: 8Gi, pods: '110'}, capacity: {cpu: '4', memory: 8Gi, pods: '110'}}
";

const WORKLOAD: &str = "
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: nginx, resources: {requests: {cpu: 100m}}}]
      affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: [{matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [n1]}]}]}}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec: {maxUnavailable: 1, selector: {matchLabels: {app: web}}}
";

/// Workloads with the controllers running: rollout status, scale, wait, cordon,
/// and a drain that evicts through a PodDisruptionBudget.
async fn workloads(part: Part, test: &str) {
    let Some(cluster) = setup(part, test, true).await else {
        return;
    };
    let k = &cluster.kubectl;

    let (ok, _, stderr) = k.run(&["apply", "-f", "-"], Some(NODES)).await;
    assert!(ok, "{stderr}");
    k.ok(&[
        "wait",
        "--for",
        "condition=Ready",
        "node/n1",
        "node/n2",
        "--timeout",
        "20s",
    ])
    .await;
    let (ok, _, stderr) = k.run(&["apply", "-f", "-"], Some(WORKLOAD)).await;
    assert!(ok, "{stderr}");
    let rollout = k
        .ok(&["rollout", "status", "deployment/web", "--timeout", "30s"])
        .await;
    assert!(rollout.contains("successfully rolled out"), "{rollout}");
    k.ok(&["scale", "deployment", "web", "--replicas", "3"])
        .await;
    k.ok(&["rollout", "status", "deployment/web", "--timeout", "30s"])
        .await;
    k.ok(&[
        "wait",
        "--for",
        "condition=Ready",
        "pod",
        "-l",
        "app=web",
        "--timeout",
        "30s",
    ])
    .await;
    // Human-readable tables, as kube-apiserver prints them.
    let table = k.ok(&["get", "pods", "-l", "app=web"]).await;
    let header = header_of(&table);
    assert_eq!(
        header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{table}"
    );
    assert_eq!(
        table
            .lines()
            .filter(|l| l.contains("1/1") && l.contains("Running"))
            .count(),
        3,
        "{table}"
    );
    let nodes = k.ok(&["get", "nodes"]).await;
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with("n1") && l.contains("Ready")),
        "{nodes}"
    );
    let on_n1 = web_pods(k, "spec.nodeName=n1").await;
    assert_eq!(on_n1.len(), 3, "{on_n1:?}");

    // The pods may only run on n1: draining it evicts one (the budget allows one
    // unavailable), the replacement cannot be placed, so the budget blocks the rest.
    k.ok(&["cordon", "n1"]).await;
    let node = k.json(&["get", "node", "n1"]).await;
    assert_eq!(node["spec"]["unschedulable"], true);
    let (ok, stdout, stderr) = k
        .run(
            &["drain", "n1", "--ignore-daemonsets", "--timeout", "5s"],
            None,
        )
        .await;
    assert!(
        !ok,
        "drain must not finish while the budget blocks it:\n{stdout}"
    );
    assert!(
        stderr.contains("global timeout reached") || stderr.contains("disruption budget"),
        "{stderr}"
    );
    let left = web_pods(k, "spec.nodeName=n1").await;
    assert_eq!(left.len(), 2, "exactly one pod was evicted: {left:?}");
    let pending = web_pods(k, "status.phase=Pending").await;
    assert_eq!(pending.len(), 1, "the replacement waits: {pending:?}");

    // Let the pods go anywhere; the drain then completes.
    k.ok(&[
        "patch",
        "deployment",
        "web",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/spec/template/spec/affinity"}]"#,
    ])
    .await;
    k.ok(&["uncordon", "n1"]).await;
    k.ok(&["rollout", "status", "deployment/web", "--timeout", "30s"])
        .await;
    let drained = k
        .ok(&["drain", "n1", "--ignore-daemonsets", "--timeout", "30s"])
        .await;
    assert!(drained.contains("node/n1 drained"), "{drained}");
    k.ok(&["rollout", "status", "deployment/web", "--timeout", "30s"])
        .await;
    let remaining = web_pods(k, "spec.nodeName=n1").await;
    assert!(
        remaining.is_empty(),
        "n1 is empty after the drain: {remaining:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_33_workloads() {
    workloads(Part::Kubectl, "kubectl_1_33_workloads").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_27_workloads() {
    workloads(Part::KubectlOld, "kubectl_1_27_workloads").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_33() {
    conformance(Part::Kubectl, "kubectl_1_33").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_27() {
    conformance(Part::KubectlOld, "kubectl_1_27").await;
}

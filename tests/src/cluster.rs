//! The cluster the journey runs on: kubesim served over TLS with its
//! scheduler, kubelets and workload controllers, one system node for the
//! controller's own Deployment (as an EKS managed node group holds it), and
//! the real clients a platform team uses on it: kubectl and Helm's library.

use base64::Engine;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use test_support::command::run_checked;
use test_support::pod::ServiceAccountFiles;

/// kubesim, served.
pub struct Cluster {
    /// The control plane.
    pub sim: kubesim::Kubesim,
    /// Where it listens, its token and kubeconfig.
    pub served: kubesim::Served,
    _controllers: kubesim::Controllers,
}

impl Cluster {
    /// Starts kubesim (no CRDs: the bootstrap installs them) with a system node.
    pub async fn start(dir: &Path) -> Cluster {
        let sim = kubesim::Kubesim::new();
        let controllers = sim.start_controllers(kubesim::ControllerOptions {
            node_ready_delay: Duration::from_millis(200),
            pod_start_delay: Duration::from_millis(100),
            pod_shutdown: Duration::ZERO,
        });
        let served = sim
            .serve(kubesim::ServeOptions::loopback(dir.join("kubeconfig")))
            .await
            .expect("kubesim serves");
        let resources = BTreeMap::from([
            ("cpu".to_string(), "4".to_string()),
            ("memory".to_string(), "16Gi".to_string()),
            ("pods".to_string(), "110".to_string()),
        ]);
        sim.register_node(&kubesim::nodes::NodeRegistration {
            name: "system-a".into(),
            provider_id: "aws:///us-east-1a/i-0system0a".into(),
            labels: BTreeMap::from([
                ("topology.kubernetes.io/zone".into(), "us-east-1a".into()),
                ("kubernetes.io/os".into(), "linux".into()),
                ("eks.amazonaws.com/nodegroup".into(), "system".into()),
            ]),
            taints: Vec::new(),
            capacity: resources.clone(),
            allocatable: resources,
        })
        .expect("the system node registers");
        Cluster {
            sim,
            served,
            _controllers: controllers,
        }
    }

    /// A client with the admin token.
    pub fn client(&self) -> kube::Client {
        self.sim.client()
    }

    /// The kubeconfig's path.
    pub fn kubeconfig(&self) -> PathBuf {
        self.served.kubeconfig.clone()
    }

    /// The service account files a pod in `namespace` gets (kubesim's token).
    pub fn service_account(&self, namespace: &str) -> ServiceAccountFiles {
        let doc: serde_json::Value = serde_norway::from_str(
            &std::fs::read_to_string(&self.served.kubeconfig).expect("the kubeconfig"),
        )
        .expect("kubeconfig YAML");
        let ca = doc["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .expect("the CA");
        ServiceAccountFiles {
            token: self.served.token.clone(),
            ca_pem: base64::engine::general_purpose::STANDARD
                .decode(ca)
                .expect("base64 CA"),
            namespace: namespace.into(),
        }
    }

    /// `kubectl ARGS...` against the cluster (blocking); panics with
    /// kubectl's output when it fails.
    pub fn kubectl(&self, kubectl: &Path, args: &[&str]) -> String {
        run_checked(
            "kubectl",
            Command::new(kubectl)
                .args(args)
                .env("KUBECONFIG", &self.served.kubeconfig),
        )
    }

    /// The releases Helm's library lists in `namespace` (blocking).
    pub fn helm_list(&self, helm_python: &Path, namespace: &str) -> Vec<serde_json::Value> {
        let out = Command::new(helm_python)
            .arg(test_support::repo_path("test-support/helm_client.py"))
            .arg(&self.served.kubeconfig)
            .arg(namespace)
            .args(["list", "-"])
            .output()
            .expect("helm_client.py runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "helm list: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        match serde_json::from_str(text.trim()).expect("helm list prints JSON") {
            serde_json::Value::Array(items) => items,
            serde_json::Value::Null => Vec::new(),
            other => panic!("helm list printed {other}"),
        }
    }
}

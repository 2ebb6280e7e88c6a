//! The controller as the chart deploys it on EKS: the real binary, started
//! with the command, environment (field references resolved as the kubelet
//! does) and service account of the Deployment that real Helm (helm-sdkpy)
//! installed from `charts/karpenter`; in-cluster configuration as a pod gets
//! it (`KUBERNETES_SERVICE_HOST`/`PORT`, the token, `ca.crt` and namespace
//! files mounted at `/var/run/secrets/kubernetes.io/serviceaccount`, in a
//! private mount namespace) against kubesim served over TLS; AWS mode against
//! moto, whose EKS holds the cluster (endpoint, CA, service CIDR). One
//! pending pod ends Running on a node that booted from the user data EC2
//! holds for the launched instance, checked against EKS's endpoint and CA.
//!
//! What EKS would add that this does not: the AWS credentials and region a
//! Pod Identity association injects are given as plain environment here,
//! `settings.isolatedVPC` is on because moto has no Pricing API, and the
//! EC2NodeClass selects its AMI by id because moto refuses the public
//! `/aws/service` SSM parameters the alias reads.

#[allow(dead_code)]
mod aws_support;

use aws_support::AwsEnv;
use base64::Engine;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use karpenter_controller::cloud::CloudProvider;
use karpenter_sim::boot::ClusterIdentity;
use karpenter_sim::demo::Timing;
use karpenter_sim::demo::cluster::{apply_yaml, control_plane};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use test_support::pod::{ServiceAccountFiles, start_in_cluster};
use test_support::{DevEnv, Part, eventually_within, repo_path};

/// A scratch directory removed when the test ends.
struct Scratch(std::path::PathBuf);
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Real Helm installs the chart into kubesim.
fn helm_install(python: &Path, kubeconfig: &Path, values: &Value) {
    let out = Command::new(python)
        .arg(repo_path("test-support/helm_client.py"))
        .arg(kubeconfig)
        .arg("kube-system")
        .args(["install", "karpenter"])
        .arg(repo_path("charts/karpenter"))
        .arg(values.to_string())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "helm install: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_chart_deployed_controller_launches_a_node_that_joins_from_its_user_data() {
    let devenv = DevEnv::load();
    let Some(helm_python) = devenv.require(Part::HelmPython, "in_cluster") else {
        return;
    };
    let Some(env) = AwsEnv::start("in_cluster").await else {
        return;
    };
    // The EKS cluster, as EKS describes it.
    let config = aws_support::sdk_config(&env.proxy.endpoint).await;
    let eks = aws_sdk_eks::Client::new(&config);
    let described = eks
        .create_cluster()
        .name("demo")
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(aws_sdk_eks::types::VpcConfigRequest::builder().build())
        .kubernetes_network_config(
            aws_sdk_eks::types::KubernetesNetworkConfigRequest::builder()
                .service_ipv4_cidr("10.100.0.0/16")
                .build(),
        )
        .send()
        .await
        .expect("EKS cluster")
        .cluster
        .unwrap();
    let eks_ca = described
        .certificate_authority
        .and_then(|c| c.data)
        .unwrap();
    let identity = ClusterIdentity {
        name: "demo".into(),
        endpoint: described.endpoint.clone().unwrap(),
        ca_pem: String::from_utf8_lossy(
            &base64::engine::general_purpose::STANDARD
                .decode(&eks_ca)
                .unwrap(),
        )
        .into_owned(),
    };

    // kubesim over TLS, Karpenter's CRDs, and the chart installed by real Helm.
    let (sim, _controllers) = control_plane(&Timing::at_speed(20.0)).await.unwrap();
    let dir = test_support::scratch_dir("in-cluster");
    let _scratch = Scratch(dir.clone());
    let kubeconfig = dir.join("kubeconfig");
    let served = sim
        .serve(kubesim::ServeOptions::loopback(kubeconfig.clone()))
        .await
        .unwrap();
    let (metrics_port, probe_port) = (test_support::free_port(), test_support::free_port());
    helm_install(
        &helm_python,
        &kubeconfig,
        &json!({
            "replicas": 1,
            "settings": {"clusterName": "demo", "isolatedVPC": true},
            "controller": {"metrics": {"port": metrics_port}, "healthProbe": {"port": probe_port}},
            "logLevel": "error",
        }),
    );
    let client = sim.client();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "kube-system");
    let deployment = deployments
        .get("karpenter")
        .await
        .expect("Helm made the Deployment");

    // The service account's files, as the kubelet mounts them.
    let kubeconfig_doc: Value =
        serde_norway::from_str(&std::fs::read_to_string(&kubeconfig).unwrap()).unwrap();
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(
            kubeconfig_doc["clusters"][0]["cluster"]["certificate-authority-data"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let account = ServiceAccountFiles {
        token: served.token.clone(),
        ca_pem,
        namespace: "kube-system".into(),
    };

    // The NodePool, an EC2NodeClass for this account, one pending pod.
    let pool = karpenter_sim::demo::DEFAULT_MANIFESTS
        .split("\n---\n")
        .next()
        .unwrap();
    let mut class_spec = serde_json::to_value(&env.class.spec).unwrap();
    class_spec["amiSelectorTerms"] = json!([{"id": env.images.0}]);
    class_spec["amiFamily"] = json!("AL2023");
    let class = json!({"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass",
        "metadata": {"name": "default"}, "spec": class_spec});
    let app = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "app", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "app",
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]}});
    apply_yaml(&client, &format!("{pool}\n---\n{class}\n---\n{app}\n"))
        .await
        .unwrap();

    // The real binary, as the container runs it, with in-cluster configuration.
    let aws = [
        // What EKS Pod Identity injects, pointed at moto.
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", env.proxy.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let _controller = start_in_cluster(
        Path::new(env!("CARGO_BIN_EXE_karpenter-controller")),
        &deployment,
        "karpenter-6d4f9-abcde",
        served.address,
        &account,
        &dir,
        &aws,
        false,
    );

    // Every instance boots from the user data EC2 holds for it, against EKS's facts.
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let booted = std::sync::Mutex::new(HashSet::new());
    // A cold controller lists every instance type from moto first (a few seconds).
    eventually_within(
        std::time::Duration::from_secs(120),
        "the pod runs on a node that booted from its user data",
        || {
            let (nodes, pods, env, identity, booted) = (&nodes, &pods, &env, &identity, &booted);
            async move {
                for instance in env.cloud.list().await.unwrap_or_default() {
                    if booted.lock().unwrap().insert(instance.id.clone()) {
                        let node = aws_support::boot_instance(
                            &env.clients.ec2,
                            &instance,
                            &env.class,
                            identity,
                        )
                        .await
                        .unwrap_or_else(|e| panic!("{} does not join: {e}", instance.id));
                        nodes.create(&PostParams::default(), &node).await.unwrap();
                    }
                }
                let pod = pods.get("app").await.unwrap();
                let on = pod.spec.and_then(|s| s.node_name);
                let running = pod.status.and_then(|s| s.phase).as_deref() == Some("Running");
                running && on.is_some()
            }
        },
    )
    .await;
    let node_list = nodes.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(node_list.len(), 1, "one node for one pod");
    assert_eq!(booted.lock().unwrap().len(), 1, "one instance launched");
}

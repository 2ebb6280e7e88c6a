//! The `karpenter-bootstrap` binary against moto: `status` says what is
//! missing (exit 2) and later that all is in place; `plan` lists everything
//! on an empty account and changes nothing, `apply` creates it, and a
//! second `apply` reports every resource unchanged with no mutating call;
//! an unreachable AWS fails with a message that says what to check; with a
//! kubeconfig (kubesim served over TLS) the CRDs are part of the run.

mod common;

use serde_json::Value;
use std::process::Command;
use test_support::{DevEnv, MotoServer, Part};

fn bootstrap(endpoint: &str, args: &[&str]) -> std::process::Output {
    bootstrap_with(endpoint, None, args)
}

fn bootstrap_with(
    endpoint: &str,
    kubeconfig: Option<&std::path::Path>,
    args: &[&str],
) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_karpenter-bootstrap"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint);
    if let Some(path) = kubeconfig {
        command.env("KUBECONFIG", path);
    }
    command.output().expect("run karpenter-bootstrap")
}

fn json(endpoint: &str, command: &str) -> Value {
    let out = bootstrap(
        endpoint,
        &[
            command,
            "--cluster-name",
            "demo",
            "--output",
            "json",
            "--aws-only",
        ],
    );
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

/// Creates EKS cluster `demo` in moto.
fn eks_cluster(endpoint: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = test_support::aws::sdk_config(endpoint).await;
        common::eks_cluster(&config, "demo").await;
    });
}

fn actions(report: &Value) -> Vec<&str> {
    report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect()
}

#[test]
fn plan_apply_and_a_second_apply_that_changes_nothing() {
    let env = DevEnv::load();
    if env.require(Part::MotoServer, "bootstrap cli").is_none() {
        return;
    }
    let moto = MotoServer::start(&env).expect("moto");
    let endpoint = moto.endpoint();
    eks_cluster(&endpoint);

    let before = bootstrap(
        &endpoint,
        &["status", "--cluster-name", "demo", "--aws-only"],
    );
    assert_eq!(before.status.code(), Some(2), "status before apply");
    let text = String::from_utf8_lossy(&before.stdout);
    assert!(
        text.contains("Karpenter-demo") && text.contains("missing"),
        "{text}"
    );

    let plan = json(&endpoint, "plan");
    assert_eq!(plan["account"], "123456789012");
    assert_eq!(actions(&plan), ["create"; 10]);
    assert_eq!(plan["calls"]["writes"], 0);

    let apply = json(&endpoint, "apply");
    assert_eq!(actions(&apply), ["create"; 10]);

    let again = json(&endpoint, "apply");
    assert_eq!(actions(&again), ["unchanged"; 10]);
    assert_eq!(again["calls"]["writes"], 0);

    let after = bootstrap(
        &endpoint,
        &[
            "status",
            "--cluster-name",
            "demo",
            "--aws-only",
            "--output",
            "json",
        ],
    );
    assert_eq!(after.status.code(), Some(0));
    let report: Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(report["healthy"], true, "{report}");

    let text = bootstrap(&endpoint, &["plan", "--cluster-name", "demo", "--aws-only"]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("  sqs-queue Karpenter-demo\n"), "{text}");
    assert!(text.contains("of them changes"), "{text}");

    let unreachable = bootstrap(
        "http://127.0.0.1:1",
        &["plan", "--cluster-name", "demo", "--aws-only"],
    );
    assert!(!unreachable.status.success());
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert!(stderr.contains("sts:GetCallerIdentity failed"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_kubeconfig_the_crds_are_part_of_the_run() {
    let env = DevEnv::load();
    if env
        .require(Part::MotoServer, "bootstrap cli cluster")
        .is_none()
    {
        return;
    }
    let moto = MotoServer::start(&env).expect("moto");
    let endpoint = moto.endpoint();
    tokio::task::spawn_blocking({
        let endpoint = endpoint.clone();
        move || eks_cluster(&endpoint)
    })
    .await
    .unwrap();
    let sim = kubesim::Kubesim::new();
    let dir = test_support::scratch_dir("karpenter-bootstrap");
    let served = sim
        .serve(kubesim::ServeOptions::loopback(dir.join("kubeconfig")))
        .await
        .unwrap();
    let run = |command: &'static str| {
        let endpoint = endpoint.clone();
        let kubeconfig = served.kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            let out = bootstrap_with(
                &endpoint,
                Some(&kubeconfig),
                &[
                    command,
                    "--cluster-name",
                    "demo",
                    "--output",
                    "json",
                    "--no-wait",
                ],
            );
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        })
    };
    // A Provisioner of v0.x is still there: reported with the command that converts it.
    old_provisioner(&sim).await;
    // Ten AWS resources, the CRDs, the Helm release.
    let total = 10 + karpenter_api::crd::all().len() + 1;
    let applied = run("apply").await.unwrap();
    let old = &applied["oldApiObjects"];
    assert_eq!(old[0]["resource"], "provisioners.karpenter.sh", "{old}");
    assert_eq!(
        old[0]["found"], "1 object(s), karpenter.sh/v1alpha5",
        "{old}"
    );
    assert!(
        old[0]["hint"]
            .as_str()
            .unwrap()
            .contains("| karpenter-bootstrap convert -"),
        "{old}"
    );
    assert_eq!(actions(&applied), vec!["create"; total]);
    let resources = applied["resources"].as_array().unwrap();
    assert_eq!(
        resources[total - 1]["resource"],
        "helm-release kube-system/karpenter"
    );
    let crds = resources[10..total - 1]
        .iter()
        .map(|r| r["resource"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    for crd in [
        "nodepools.karpenter.sh",
        "nodeoverlays.karpenter.sh",
        "capacitybuffers.autoscaling.x-k8s.io",
    ] {
        assert!(crds.contains(&format!("crd {crd}")), "{crds:?}");
    }
    let again = run("apply").await.unwrap();
    assert_eq!(actions(&again), vec!["unchanged"; total]);

    // Destroy: the NodePool first, then everything the bootstrap made.
    let pools: kube::Api<karpenter_api::v1::NodePool> = kube::Api::all(sim.client());
    let pool = serde_json::from_value(serde_json::json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "default"},
        "spec": {"template": {"spec": {
            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
            "requirements": []}}}
    }))
    .unwrap();
    pools.create(&Default::default(), &pool).await.unwrap();
    let classes: kube::Api<karpenter_api::v1::EC2NodeClass> = kube::Api::all(sim.client());
    let class = serde_json::from_value(serde_json::json!({
        "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "default"},
        "spec": {"role": "KarpenterNodeRole-demo",
            "amiSelectorTerms": [{"alias": "al2023@latest"}],
            "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "demo"}}],
            "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "demo"}}]}
    }))
    .unwrap();
    classes.create(&Default::default(), &class).await.unwrap();
    let destroyed = run("destroy").await.unwrap();
    let deleted: Vec<&str> = destroyed["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "delete")
        .map(|r| r["resource"].as_str().unwrap())
        .collect();
    assert!(deleted.contains(&"nodepool default"), "{deleted:?}");
    assert!(deleted.contains(&"sqs-queue Karpenter-demo"), "{deleted:?}");
    assert!(
        deleted.contains(&"helm-release kube-system/karpenter"),
        "{deleted:?}"
    );
    assert!(
        deleted.contains(&"eks-pod-identity kube-system/karpenter"),
        "{deleted:?}"
    );
    assert!(deleted.contains(&"ec2nodeclass default"), "{deleted:?}");
    assert!(
        deleted.contains(&"crd nodepools.karpenter.sh"),
        "{deleted:?}"
    );
    let crd_count = karpenter_api::crd::all().len();
    assert_eq!(
        deleted.len(),
        2 + 1 + 5 + 1 + 2 + 2 + crd_count,
        "{deleted:?}"
    );
    let crds: kube::Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = kube::Api::all(sim.client());
    let left: Vec<String> = crds
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    // The v1alpha5 Provisioner's CRD was not the bootstrap's: it stays.
    assert_eq!(left, ["provisioners.karpenter.sh"], "{left:?}");
    let nothing = run("destroy").await.unwrap();
    assert!(
        nothing["resources"].as_array().unwrap().is_empty(),
        "{nothing}"
    );
    assert_eq!(nothing["calls"]["writes"], 0);
    let missing = bootstrap(&endpoint, &["plan", "--cluster-name", "demo"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("--aws-only"), "{stderr}");
}

#[test]
fn destroy_without_the_cluster_never_terminates_running_nodes_undrained() {
    let env = DevEnv::load();
    if env
        .require(Part::MotoServer, "bootstrap destroy --aws-only")
        .is_none()
    {
        return;
    }
    let moto = MotoServer::start(&env).expect("moto");
    let endpoint = moto.endpoint();
    eks_cluster(&endpoint);
    // A node the controller launched and nobody drained.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let node = runtime.block_on(async {
        let config = test_support::aws::sdk_config(&endpoint).await;
        let ec2 = aws_sdk_ec2::Client::new(&config);
        let image = common::amazon_image(&ec2).await;
        common::launch(
            &ec2,
            &image,
            &[
                ("kubernetes.io/cluster/demo", "owned"),
                ("karpenter.sh/nodepool", "default"),
            ],
        )
        .await
    });
    let refused = bootstrap(
        &endpoint,
        &["destroy", "--cluster-name", "demo", "--aws-only"],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("cannot drain") && stderr.contains("--force-terminate"),
        "{stderr}"
    );
    let forced = bootstrap(
        &endpoint,
        &[
            "destroy",
            "--cluster-name",
            "demo",
            "--aws-only",
            "--force-terminate",
            "--output",
            "json",
        ],
    );
    assert!(
        forced.status.success(),
        "{}",
        String::from_utf8_lossy(&forced.stderr)
    );
    let report: Value = serde_json::from_slice(&forced.stdout).unwrap();
    assert!(report.to_string().contains(&node), "{report}");
}

/// The v1alpha5 Provisioner CRD (its schema left open, as this test only
/// lists the objects) and one Provisioner.
async fn old_provisioner(sim: &kubesim::Kubesim) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{ApiResource, DynamicObject, PostParams};
    let crd: CustomResourceDefinition = serde_json::from_value(serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "provisioners.karpenter.sh"},
        "spec": {
            "group": "karpenter.sh", "scope": "Cluster",
            "names": {"kind": "Provisioner", "plural": "provisioners", "singular": "provisioner", "listKind": "ProvisionerList"},
            "versions": [{"name": "v1alpha5", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .unwrap();
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(sim.client());
    crds.create(&PostParams::default(), &crd).await.unwrap();
    let resource = ApiResource {
        group: "karpenter.sh".into(),
        version: "v1alpha5".into(),
        api_version: "karpenter.sh/v1alpha5".into(),
        kind: "Provisioner".into(),
        plural: "provisioners".into(),
    };
    let provisioners: kube::Api<DynamicObject> = kube::Api::all_with(sim.client(), &resource);
    let provisioner: DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "karpenter.sh/v1alpha5", "kind": "Provisioner",
        "metadata": {"name": "default"},
        "spec": {"providerRef": {"name": "default"}}
    }))
    .unwrap();
    provisioners
        .create(&PostParams::default(), &provisioner)
        .await
        .unwrap();
}

#[test]
fn version_names_the_crate_version_and_revision_and_the_chart_follows_it() {
    test_support::version::assert_version(
        env!("CARGO_BIN_EXE_karpenter-bootstrap"),
        "karpenter-bootstrap",
    );
    // The chart's version and appVersion (the image tag's default) come from the same source.
    let root = test_support::repo_path(".");
    let version = test_support::version::workspace_version(&root);
    let chart: Value = serde_norway::from_str(
        &std::fs::read_to_string(root.join("charts/karpenter/Chart.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(chart["version"], version.as_str());
    assert_eq!(chart["appVersion"], version.as_str());
}

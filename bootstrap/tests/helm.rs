//! The controller's Helm release as real Helm sees it. The bootstrap
//! installs the release into kubesim (served over TLS); helm-sdkpy, which is
//! Helm v4's Go library, then lists it, reads its status, values and
//! history, upgrades it from `charts/karpenter` (and renders byte for byte
//! the manifest the bootstrap recorded), rolls it back and uninstalls it.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use karpenter_bootstrap::cluster::release::{self, ReleaseSpec};
use karpenter_bootstrap::helm::storage::Status;
use karpenter_bootstrap::{Action, Mode};
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use test_support::{DevEnv, Part, repo_path};

/// Runs `helm_client.py` (the real Helm library, in a Python started as
/// `helm` so it applies as the helm CLI does) and returns whether Helm
/// succeeded and what it printed.
async fn helm(python: &Path, kubeconfig: &Path, args: &[&str]) -> (bool, Value) {
    let mut command = std::process::Command::new(python);
    command
        .arg(repo_path("test-support/helm_client.py"))
        .arg(kubeconfig)
        .arg("kube-system")
        .args(args);
    let out = tokio::task::spawn_blocking(move || command.output().expect("python runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let value: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("helm {args:?} printed no JSON ({e}):\n{stdout}\n{stderr}");
    });
    (out.status.success(), value)
}

fn spec(values: Value) -> ReleaseSpec {
    ReleaseSpec {
        name: "karpenter".into(),
        namespace: "kube-system".into(),
        values,
    }
}

fn values() -> Value {
    json!({"settings": {"clusterName": "demo", "interruptionQueue": "Karpenter-demo"}})
}

/// Two schedulable nodes in two zones: room for both controller replicas
/// under the chart's hostname anti-affinity and zone spread.
fn add_nodes(sim: &kubesim::Kubesim) {
    for (name, zone) in [("system-a", "us-east-1a"), ("system-b", "us-east-1b")] {
        let resources = BTreeMap::from([
            ("cpu".to_string(), "4".to_string()),
            ("memory".to_string(), "16Gi".to_string()),
            ("pods".to_string(), "110".to_string()),
        ]);
        sim.register_node(&kubesim::nodes::NodeRegistration {
            name: name.into(),
            provider_id: format!("aws:///{zone}/i-{name}"),
            labels: BTreeMap::from([
                ("topology.kubernetes.io/zone".to_string(), zone.to_string()),
                ("kubernetes.io/os".to_string(), "linux".to_string()),
            ]),
            taints: Vec::new(),
            capacity: resources.clone(),
            allocatable: resources,
        })
        .unwrap();
    }
}

struct Cluster {
    sim: kubesim::Kubesim,
    _served: kubesim::serve::Served,
    kubeconfig: PathBuf,
    python: PathBuf,
}

async fn cluster(test: &str) -> Option<Cluster> {
    let env = DevEnv::load();
    let python = env.require(Part::HelmPython, test)?;
    let sim = kubesim::Kubesim::new();
    let dir = std::env::temp_dir().join(format!(
        "karpenter-helm-{}-{}",
        std::process::id(),
        test.replace(' ', "-")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let served = sim
        .serve(kubesim::ServeOptions::loopback(dir.join("kubeconfig")))
        .await
        .unwrap();
    let kubeconfig = served.kubeconfig.clone();
    Some(Cluster {
        sim,
        _served: served,
        kubeconfig,
        python,
    })
}

async fn replicas(client: &kube::Client) -> Option<i32> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "kube-system");
    let found = deployments.get_opt("karpenter").await.unwrap();
    found.map(|d| d.spec.unwrap().replicas.unwrap())
}

async fn statuses(client: &kube::Client) -> Vec<(u32, Status)> {
    let history = release::history(client, &spec(values())).await.unwrap();
    history.iter().map(|r| (r.version, r.info.status)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_helm_reads_upgrades_and_uninstalls_the_bootstrap_release() {
    let Some(c) = cluster("helm release").await else {
        return;
    };
    let _controllers = c
        .sim
        .start_controllers(kubesim::ControllerOptions::default());
    add_nodes(&c.sim);
    let client = c.sim.client();
    let helm = |args: Vec<String>| {
        let (python, kubeconfig) = (c.python.clone(), c.kubeconfig.clone());
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            helm(&python, &kubeconfig, &args).await
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let chart_dir = repo_path("charts/karpenter").to_string_lossy().to_string();

    // Plan changes nothing; apply installs revision 1 and the controller comes up.
    let planned = release::reconcile(&client, &spec(values()), Mode::Plan)
        .await
        .unwrap();
    assert_eq!(planned.action, Action::Create);
    assert!(statuses(&client).await.is_empty());
    let applied = release::reconcile(&client, &spec(values()), Mode::Apply)
        .await
        .unwrap();
    assert_eq!(applied.action, Action::Create);
    let mut seen = Vec::new();
    release::wait_available(&client, &spec(values()), Duration::from_secs(60), |a| {
        seen.push(a.clone())
    })
    .await
    .unwrap();
    assert!(seen.last().unwrap().is_available(), "{seen:?}");
    let again = release::reconcile(&client, &spec(values()), Mode::Apply)
        .await
        .unwrap();
    assert_eq!(again.action, Action::Unchanged);
    assert_eq!(statuses(&client).await, [(1, Status::Deployed)]);

    // Helm lists it, with its status, values and history.
    let (ok, listed) = helm(args(&["list", "-"])).await;
    assert!(ok, "{listed}");
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["name"], "karpenter");
    assert_eq!(listed[0]["version"], 1);
    assert_eq!(listed[0]["info"]["status"], "deployed");
    assert_eq!(listed[0]["chart"]["metadata"]["name"], "karpenter");
    let (ok, status) = helm(args(&["status", "karpenter"])).await;
    assert!(ok, "{status}");
    assert_eq!(status["info"]["status"], "deployed");
    assert_eq!(status["namespace"], "kube-system");
    let (ok, given) = helm(args(&["values", "karpenter"])).await;
    assert!(ok, "{given}");
    assert_eq!(given, values());

    // Helm renders the chart with the same values into the very manifest
    // the bootstrap recorded, and the bootstrap takes Helm's revision as its own.
    let values_json = values().to_string();
    let (ok, upgraded) = helm(args(&["upgrade", "karpenter", &chart_dir, &values_json])).await;
    assert!(ok, "{upgraded}");
    assert_eq!(upgraded["version"], 2);
    let ours = release::history(&client, &spec(values())).await.unwrap();
    assert_eq!(upgraded["manifest"].as_str().unwrap(), ours[0].manifest);
    let after_helm = release::reconcile(&client, &spec(values()), Mode::Apply)
        .await
        .unwrap();
    assert_eq!(after_helm.action, Action::Unchanged);

    // A Helm upgrade with other values is undone by the next apply.
    let one = json!({"settings": {"clusterName": "demo", "interruptionQueue": "Karpenter-demo"}, "replicas": 1});
    let (ok, upgraded) = helm(args(&[
        "upgrade",
        "karpenter",
        &chart_dir,
        &one.to_string(),
    ]))
    .await;
    assert!(ok, "{upgraded}");
    assert_eq!(replicas(&client).await, Some(1));
    let restored = release::reconcile(&client, &spec(values()), Mode::Apply)
        .await
        .unwrap();
    assert_eq!(
        restored.action,
        Action::Update(vec![
            "revision 4".into(),
            "values".into(),
            "manifest".into()
        ])
    );
    assert_eq!(replicas(&client).await, Some(2));
    assert_eq!(
        statuses(&client).await,
        [
            (1, Status::Superseded),
            (2, Status::Superseded),
            (3, Status::Superseded),
            (4, Status::Deployed)
        ]
    );
    let (ok, history) = helm(args(&["history", "karpenter"])).await;
    assert!(ok, "{history}");
    assert_eq!(history.as_array().unwrap().len(), 4);

    // Rollback: helm-sdkpy 0.1.32's binding never sets Helm v4's wait
    // strategy, so Rollback fails after recording the new revision as
    // pending-rollback (it does so for releases Helm installed too). Helm
    // did read our revision 4 to get there; the bootstrap then finishes
    // the rollback Helm left pending.
    let (ok, rolled) = helm(args(&["rollback", "karpenter", "4"])).await;
    assert!(!ok);
    assert!(
        rolled["message"]
            .as_str()
            .unwrap()
            .contains("wait strategy not set"),
        "helm-sdkpy's rollback failed another way: {rolled}"
    );
    assert_eq!(
        statuses(&client).await.last(),
        Some(&(5, Status::PendingRollback))
    );
    let finished = release::reconcile(&client, &spec(values()), Mode::Apply)
        .await
        .unwrap();
    assert_eq!(
        finished.action,
        Action::Update(vec!["finish revision 5".into()])
    );
    assert_eq!(statuses(&client).await.last(), Some(&(5, Status::Deployed)));

    // Helm uninstalls it: objects and every revision go.
    let (ok, uninstalled) = helm(args(&["uninstall", "karpenter"])).await;
    assert!(ok, "{uninstalled}");
    assert_eq!(replicas(&client).await, None);
    assert!(statuses(&client).await.is_empty());
    let planned = release::reconcile(&client, &spec(values()), Mode::Plan)
        .await
        .unwrap();
    assert_eq!(planned.action, Action::Create);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_objects_are_recreated_and_uninstall_leaves_nothing() {
    let Some(c) = cluster("helm drift").await else {
        return;
    };
    let client = c.sim.client();
    let spec = spec(values());
    release::reconcile(&client, &spec, Mode::Apply)
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "kube-system");
    let live = deployments.get("karpenter").await.unwrap();
    let labels = live.metadata.labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");
    let annotations = live.metadata.annotations.unwrap();
    assert_eq!(annotations["meta.helm.sh/release-name"], "karpenter");
    assert_eq!(annotations["meta.helm.sh/release-namespace"], "kube-system");
    let owners: Vec<String> = live
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(owners, ["helm"]);

    deployments
        .delete("karpenter", &DeleteParams::default())
        .await
        .unwrap();
    let planned = release::reconcile(&client, &spec, Mode::Plan)
        .await
        .unwrap();
    assert_eq!(
        planned.action,
        Action::Update(vec!["recreate Deployment/karpenter".into()])
    );
    release::reconcile(&client, &spec, Mode::Apply)
        .await
        .unwrap();
    assert_eq!(replicas(&client).await, Some(2));
    assert_eq!(
        statuses(&client).await,
        [(1, Status::Deployed)],
        "no new revision"
    );

    let removed = release::uninstall(&client, &spec, Mode::Apply)
        .await
        .unwrap();
    assert_eq!(removed.unwrap().action, Action::Delete);
    assert_eq!(replicas(&client).await, None);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let left = secrets
        .list(&ListParams::default().labels("owner=helm"))
        .await
        .unwrap();
    assert!(left.items.is_empty());
    assert!(
        release::uninstall(&client, &spec, Mode::Apply)
            .await
            .unwrap()
            .is_none()
    );
}

/// Every optional value upstream's chart has, set: real Helm renders the
/// chart into the very manifest the bootstrap renders and records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_upstream_value_renders_as_helm_renders_it() {
    let Some(c) = cluster("helm every value").await else {
        return;
    };
    let client = c.sim.client();
    let full = json!({
        "settings": {
            "clusterName": "demo", "interruptionQueue": "Karpenter-demo",
            "clusterCABundle": "Y2E=", "reservedENIs": "1", "amiRefreshInterval": "5m",
            "featureGates": {"spotToSpotConsolidation": true}
        },
        "additionalAnnotations": {"team": "platform"},
        "additionalClusterRoleRules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        "imagePullSecrets": [{"name": "registry"}],
        "service": {"annotations": {"prometheus.io/scrape": "true"}},
        "terminationGracePeriodSeconds": 60,
        "hostNetwork": true,
        "dnsConfig": {"options": [{"name": "ndots", "value": "1"}]},
        "initContainers": [{"name": "wait", "image": "busybox"}],
        "extraVolumes": [{"name": "token", "emptyDir": {}}],
        "logOutputPaths": ["stderr"],
        "affinity": {
            "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone"}}]},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": "kubernetes.io/hostname"},
                {"topologyKey": "topology.kubernetes.io/zone",
                 "labelSelector": {"matchLabels": {"app": "other"}}}]}
        },
        "controller": {
            "containerName": "karpenter-controller",
            "envFrom": [{"configMapRef": {"name": "extra"}}],
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"},
                                "seLinuxOptions": {"level": "s0"}},
            "extraVolumeMounts": [{"name": "token", "mountPath": "/var/run/token"}],
            "sidecarContainer": [{"name": "proxy", "image": "envoy"},
                                 {"name": "own", "image": "x", "volumeMounts": [{"name": "token", "mountPath": "/t"}]}],
            "sidecarVolumeMounts": [{"name": "token", "mountPath": "/sidecar"}]
        }
    });
    release::reconcile(&client, &spec(full.clone()), Mode::Apply)
        .await
        .unwrap();
    let chart_dir = repo_path("charts/karpenter").to_string_lossy().to_string();
    let values_json = full.to_string();
    let (ok, upgraded) = helm(
        &c.python,
        &c.kubeconfig,
        &["upgrade", "karpenter", &chart_dir, &values_json],
    )
    .await;
    assert!(ok, "{upgraded}");
    let ours = release::history(&client, &spec(full)).await.unwrap();
    let manifest = upgraded["manifest"].as_str().unwrap();
    assert_eq!(manifest, ours[0].manifest);
    for expected in [
        "karpenter-controller",
        "configMapRef",
        "imagePullSecrets",
        "hostNetwork: true",
        "terminationGracePeriodSeconds: 60",
        "name: proxy",
        "mountPath: /sidecar",
        "prometheus.io/scrape",
        "configmaps",
        "app: other",
        "CLUSTER_CA_BUNDLE",
        "SpotToSpotConsolidation=true",
    ] {
        assert!(
            manifest.contains(expected),
            "{expected} missing from:\n{manifest}"
        );
    }
}

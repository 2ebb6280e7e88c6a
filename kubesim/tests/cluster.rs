//! The controllers make the API server behave like a cluster: nodes turn Ready,
//! the scheduler binds or reports `Unschedulable` like kube-scheduler,
//! Deployments roll out through ReplicaSets, DaemonSets follow nodes,
//! evictions honour PodDisruptionBudgets, and pods leave with their nodes.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use kubesim::{ControllerOptions, Controllers, Kubesim, NodeRegistration};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use test_support::eventually;

fn cluster() -> (Kubesim, Client, Controllers) {
    let sim = Kubesim::new();
    let controllers = sim.start_controllers(ControllerOptions {
        node_ready_delay: Duration::from_millis(50),
        ..Default::default()
    });
    let client = sim.client();
    (sim, client, controllers)
}

fn add_node(sim: &Kubesim, name: &str, zone: &str, cpu: &str, taints: Vec<serde_json::Value>) {
    let resources: BTreeMap<String, String> = [("cpu", cpu), ("memory", "16Gi"), ("pods", "110")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    sim.register_node(&NodeRegistration {
        name: name.into(),
        provider_id: format!("aws:///{zone}/i-{name}"),
        labels: [("topology.kubernetes.io/zone".to_string(), zone.to_string())].into(),
        taints,
        capacity: resources.clone(),
        allocatable: resources,
    })
    .unwrap();
}

fn pod(name: &str, cpu: &str, extra: serde_json::Value) -> Pod {
    let mut p = json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]}
    });
    json_patch::merge(&mut p, &extra);
    serde_json::from_value(p).unwrap()
}

fn condition(pod: &Pod, type_: &str) -> Option<(String, Option<String>, Option<String>)> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_turn_ready_and_pods_run_or_are_reported_unschedulable() {
    let (sim, client, _controllers) = cluster();
    add_node(&sim, "n1", "us-east-1a", "2", vec![]);
    let nodes: Api<Node> = Api::all(client.clone());
    eventually("node Ready", || async {
        nodes
            .get("n1")
            .await
            .unwrap()
            .status
            .unwrap()
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
    .await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("fits", "1500m", json!({})))
        .await
        .unwrap();
    eventually("pod running", || async {
        let p = pods.get("fits").await.unwrap();
        p.status.as_ref().and_then(|s| s.phase.clone()).as_deref() == Some("Running")
            && condition(&p, "Ready").is_some_and(|c| c.0 == "True")
    })
    .await;
    assert_eq!(
        pods.get("fits")
            .await
            .unwrap()
            .spec
            .unwrap()
            .node_name
            .as_deref(),
        Some("n1")
    );

    pods.create(&PostParams::default(), &pod("too-big", "1", json!({})))
        .await
        .unwrap();
    eventually("Unschedulable condition", || async {
        condition(&pods.get("too-big").await.unwrap(), "PodScheduled")
            == Some((
                "False".into(),
                Some("Unschedulable".into()),
                Some("0/1 nodes are available: 1 Insufficient cpu.".into()),
            ))
    })
    .await;

    // A node still tainted unregistered is not used; once the taint goes, it is.
    add_node(
        &sim,
        "n2",
        "us-east-1b",
        "4",
        vec![json!({"key": "karpenter.sh/unregistered", "effect": "NoExecute"})],
    );
    eventually("reason mentions the taint", || async {
        condition(&pods.get("too-big").await.unwrap(), "PodScheduled")
            .and_then(|c| c.2)
            .is_some_and(|m| m.contains("untolerated taint {karpenter.sh/unregistered: }"))
    })
    .await;
    nodes
        .patch(
            "n2",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": null}})),
        )
        .await
        .unwrap();
    eventually("pod bound to n2", || async {
        pods.get("too-big")
            .await
            .unwrap()
            .spec
            .unwrap()
            .node_name
            .as_deref()
            == Some("n2")
    })
    .await;

    // Cordoned nodes take no new pods.
    nodes
        .patch(
            "n2",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"unschedulable": true}})),
        )
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("after-cordon", "1", json!({})))
        .await
        .unwrap();
    eventually("cordon reason", || async {
        condition(&pods.get("after-cordon").await.unwrap(), "PodScheduled")
            .and_then(|c| c.2)
            .is_some_and(|m| m.contains("1 node(s) were unschedulable"))
    })
    .await;

    // Pods leave with their node; a deleted bound pod is removed by the kubelet.
    pods.delete("fits", &DeleteParams::default()).await.unwrap();
    eventually("graceful delete done", || async {
        pods.get_opt("fits").await.unwrap().is_none()
    })
    .await;
    sim.remove_node("n2").unwrap();
    eventually("pod garbage-collected", || async {
        pods.get_opt("too-big").await.unwrap().is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployments_roll_out_through_replica_sets_and_scale() {
    let (sim, client, _controllers) = cluster();
    add_node(&sim, "n1", "us-east-1a", "8", vec![]);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let available = |n: i32| {
        let deployments = deployments.clone();
        move || {
            let deployments = deployments.clone();
            async move {
                let d = deployments.get("web").await.unwrap();
                let s = d.status.unwrap_or_default();
                s.available_replicas == Some(n)
                    && s.updated_replicas == Some(n)
                    && s.replicas == Some(n)
                    && s.observed_generation == d.metadata.generation
            }
        }
    };
    eventually("3 available", available(3)).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        pods.list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items
            .len(),
        3
    );

    deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 5}})),
        )
        .await
        .unwrap();
    eventually("5 available", available(5)).await;

    deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}})))
        .await
        .unwrap();
    eventually("rolled out", available(5)).await;
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    eventually("old ReplicaSet scaled to zero", || async {
        let sets = replica_sets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        sets.len() == 2
            && sets
                .iter()
                .filter(|rs| rs.spec.as_ref().unwrap().replicas == Some(0))
                .count()
                == 1
    })
    .await;
    eventually("only new pods", || async {
        let pods = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .unwrap()
            .items;
        pods.len() == 5
            && pods
                .iter()
                .all(|p| p.spec.as_ref().unwrap().containers[0].image.as_deref() == Some("nginx:2"))
    })
    .await;

    deployments
        .delete("web", &DeleteParams::background())
        .await
        .unwrap();
    eventually("pods collected with the deployment", || async {
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_sets_follow_nodes() {
    let (sim, client, _controllers) = cluster();
    add_node(&sim, "n1", "us-east-1a", "4", vec![]);
    add_node(
        &sim,
        "gpu",
        "us-east-1a",
        "4",
        vec![json!({"key": "nvidia.com/gpu", "effect": "NoSchedule"})],
    );
    let daemon_sets: Api<DaemonSet> = Api::namespaced(client.clone(), "kube-system");
    let ds: DaemonSet = serde_json::from_value(json!({
        "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "agent"}]}}}
    }))
    .unwrap();
    daemon_sets
        .create(&PostParams::default(), &ds)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "kube-system");
    let nodes_with_agent = || async {
        let mut nodes: Vec<String> = pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter_map(|p| p.spec.as_ref()?.node_name.clone())
            .collect();
        nodes.sort();
        nodes
    };
    eventually("agent on the untainted node only", || async {
        nodes_with_agent().await == ["n1"]
    })
    .await;
    add_node(&sim, "n2", "us-east-1b", "4", vec![]);
    eventually("agent on the new node", || async {
        nodes_with_agent().await == ["n1", "n2"]
    })
    .await;
    eventually("status counts", || async {
        let s = daemon_sets.get("agent").await.unwrap().status.unwrap();
        s.desired_number_scheduled == 2 && s.number_ready == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_honour_disruption_budgets() {
    let (sim, client, _controllers) = cluster();
    add_node(&sim, "n1", "us-east-1a", "8", vec![]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for name in ["a", "b"] {
        pods.create(&PostParams::default(), &pod(name, "100m", json!({})))
            .await
            .unwrap();
    }
    let budgets: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let pdb: PodDisruptionBudget =
        serde_json::from_value(json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}})).unwrap();
    budgets.create(&PostParams::default(), &pdb).await.unwrap();
    eventually("budget allows one", || async {
        budgets
            .get("web")
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.disruptions_allowed == 1 && s.current_healthy == 2)
    })
    .await;
    pods.evict("a", &EvictParams::default()).await.unwrap();
    match pods.evict("b", &EvictParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 429);
            assert!(
                status.message.contains("disruption budget"),
                "{}",
                status.message
            );
        }
        other => panic!("expected 429, got {other:?}"),
    }
    eventually("a gone", || async {
        pods.get_opt("a").await.unwrap().is_none()
    })
    .await;
    assert!(
        pods.get("b")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );
    assert_eq!(pods.get("b").await.unwrap().name_any(), "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_pods_stop_within_their_grace_period() {
    let sim = Kubesim::new();
    let options = ControllerOptions {
        node_ready_delay: Duration::from_millis(50),
        pod_shutdown: Duration::from_secs(3),
        ..Default::default()
    };
    let _controllers = sim.start_controllers(options);
    let client = sim.client();
    add_node(&sim, "n1", "us-east-1a", "8", vec![]);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("slow", "100m", json!({})))
        .await
        .unwrap();
    pods.create(
        &PostParams::default(),
        &pod(
            "quick",
            "100m",
            json!({"spec": {"terminationGracePeriodSeconds": 0}}),
        ),
    )
    .await
    .unwrap();
    for name in ["slow", "quick"] {
        eventually("running", || async {
            pods.get(name)
                .await
                .unwrap()
                .status
                .and_then(|s| s.phase)
                .as_deref()
                == Some("Running")
        })
        .await;
    }
    pods.delete("slow", &DeleteParams::default()).await.unwrap();
    pods.delete("quick", &DeleteParams::default())
        .await
        .unwrap();
    // The slow pod is terminating (30 s grace, 3 s to stop); the quick one has no grace.
    let terminating = pods.get("slow").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    eventually("quick gone", || async {
        pods.get_opt("quick").await.unwrap().is_none()
    })
    .await;
    assert!(
        pods.get_opt("slow").await.unwrap().is_some(),
        "still stopping"
    );
    eventually("slow gone", || async {
        pods.get_opt("slow").await.unwrap().is_none()
    })
    .await;

    // deletecollection by label selector.
    for i in 0..3 {
        let labelled = json!({"metadata": {"labels": {"batch": "yes"}}, "spec": {"terminationGracePeriodSeconds": 0}});
        pods.create(
            &PostParams::default(),
            &pod(&format!("batch-{i}"), "0", labelled),
        )
        .await
        .unwrap();
    }
    pods.create(&PostParams::default(), &pod("keep", "0", json!({})))
        .await
        .unwrap();
    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("batch=yes"),
    )
    .await
    .unwrap();
    eventually("batch gone", || async {
        pods.list(&ListParams::default().labels("batch=yes"))
            .await
            .unwrap()
            .items
            .is_empty()
    })
    .await;
    assert!(pods.get_opt("keep").await.unwrap().is_some());
}

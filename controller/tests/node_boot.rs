//! Nodes on the simulated cluster register what their user data says: the
//! simulated EC2 renders the launch's user data as the EC2 provider does, the
//! instance boots it (`karpenter_sim::boot`), and the Node's labels,
//! taints and allocatable are the agent's reading of it. User data the
//! family cannot merge keeps the EC2NodeClass not Ready and launches nothing.

mod sim;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::events::v1::Event;
use karpenter_api::quantity::Quantity;
use karpenter_api::v1::EC2NodeClass;
use karpenter_controller::cloud::CloudProvider;
use karpenter_sim::demo::Timing;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use test_support::eventually;

async fn patch_class(cluster: &karpenter_sim::demo::SimCluster, spec: serde_json::Value) {
    sim::patch_spec::<EC2NodeClass>(cluster, "default", spec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_register_the_allocatable_labels_and_taints_of_their_user_data() {
    let cluster = sim::cluster(Timing::at_speed(50.0)).await;
    patch_class(
        &cluster,
        json!({"kubelet": {"maxPods": 30, "systemReserved": {"memory": "512Mi", "cpu": "100m"},
            "evictionHard": {"memory.available": "300Mi"}},
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "rootVolume": true,
                "ebs": {"volumeSize": "60Gi", "volumeType": "gp3", "encrypted": true}}]}),
    )
    .await;
    let _controller = sim::start(&cluster, sim::settings("boot", false));
    sim::scale(&cluster, &[("web", 6)]).await;
    sim::all_running(&cluster, 6).await;

    let nodes: Api<Node> = Api::all(cluster.client());
    let nodes = nodes.list(&ListParams::default()).await.unwrap().items;
    assert!(!nodes.is_empty());
    let claims = sim::claims(&cluster).await;
    for node in &nodes {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels
                .get("karpenter.sh/do-not-sync-taints")
                .map(String::as_str),
            Some("true")
        );
        assert_eq!(
            labels
                .get("karpenter.k8s.aws/ec2nodeclass")
                .map(String::as_str),
            Some("default")
        );
        let provider_id = node.spec.as_ref().and_then(|s| s.provider_id.clone());
        let claim = claims
            .iter()
            .find(|c| c.status.as_ref().and_then(|s| s.provider_id.clone()) == provider_id)
            .expect("a claim per node");
        let planned = claim
            .status
            .as_ref()
            .and_then(|s| s.allocatable.clone())
            .unwrap();
        let reported = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.clone())
            .unwrap();
        for resource in ["cpu", "memory", "pods", "ephemeral-storage"] {
            let q = |m: &std::collections::BTreeMap<
                String,
                k8s_openapi::apimachinery::pkg::api::resource::Quantity,
            >|
             -> Quantity { m[resource].0.parse().unwrap() };
            assert_eq!(
                q(&reported),
                q(&planned),
                "{resource} of {:?}",
                node.metadata.name
            );
        }
        assert_eq!(reported["pods"].0, "30");
        assert!(
            !reported.contains_key("vpc.amazonaws.com/efa"),
            "no pod asked for EFA, so no adapter is attached"
        );
    }
}

/// Creates a pod asking for `cpu` and one `resource`, waits until it runs;
/// returns its Node and the Node's instance type.
async fn run_pod(
    cluster: &karpenter_sim::demo::SimCluster,
    name: &str,
    cpu: &str,
    resource: &str,
) -> (Node, String) {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(cluster.client(), "default");
    let pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {
            "requests": {"cpu": cpu, resource: "1"}, "limits": {resource: "1"}}}]}
    }))
    .unwrap();
    pods.create(&Default::default(), &pod).await.unwrap();
    sim::all_running(cluster, 1).await;
    let node_name = pods
        .get(name)
        .await
        .unwrap()
        .spec
        .unwrap()
        .node_name
        .unwrap();
    let nodes: Api<Node> = Api::all(cluster.client());
    let node = nodes.get(&node_name).await.unwrap();
    let instance_type =
        node.metadata.labels.as_ref().unwrap()["node.kubernetes.io/instance-type"].clone();
    (node, instance_type)
}

/// A pod asking for `vpc.amazonaws.com/efa` gets a node of a type with
/// adapters, launched with all of them (the device plugin advertises what
/// is attached), which registers and is Initialized.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pod_asking_for_efa_runs_on_a_node_launched_with_every_adapter() {
    let cluster = sim::cluster(Timing::at_speed(50.0)).await;
    let _controller = sim::start(&cluster, sim::settings("efa", false));
    let (node, instance_type) = run_pod(&cluster, "mpi-worker", "4", "vpc.amazonaws.com/efa").await;
    let t = karpenter_controller::catalog::Catalog::us_east_1()
        .get(&instance_type)
        .unwrap()
        .clone();
    assert!(t.efas > 0, "{instance_type} has no EFA");
    let allocatable = node.status.unwrap().allocatable.unwrap();
    assert_eq!(allocatable["vpc.amazonaws.com/efa"].0, t.efas.to_string());
    let claim = sim::claims(&cluster).await.remove(0);
    let status = claim.status.unwrap();
    assert_eq!(
        status.capacity.unwrap()["vpc.amazonaws.com/efa"].0,
        t.efas.to_string()
    );
    // The pod may run a moment before the lifecycle pass marks the claim.
    eventually(
        "the node registered its adapters, so the claim is Initialized",
        || async {
            sim::claims(&cluster).await[0]
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "Initialized" && c.status == "True")
                })
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn user_data_the_family_cannot_merge_keeps_the_class_not_ready_and_launches_nothing() {
    let cluster = sim::cluster(Timing::at_speed(50.0)).await;
    patch_class(
        &cluster,
        json!({"userData": "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/x-shellscript\n\necho never closed"}),
    )
    .await;
    let _controller = sim::start(&cluster, sim::settings("bad-user-data", false));
    let classes: Api<EC2NodeClass> = Api::all(cluster.client());
    eventually("the class says why it is not ready", || async {
        let class = classes.get("default").await.unwrap();
        let conditions = class.status.and_then(|s| s.conditions).unwrap_or_default();
        conditions.iter().any(|c| {
            c.type_ == "ValidationSucceeded"
                && c.status == "False"
                && c.reason == "UserDataInvalid"
                && c.message.contains("spec.userData")
                && c.message.contains("never ends")
        }) && conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False")
    })
    .await;
    sim::scale(&cluster, &[("web", 3)]).await;
    // Provisioning has looked at the pods and found nowhere to put them.
    let events: Api<Event> = Api::namespaced(cluster.client(), "default");
    eventually("a FailedScheduling event from provisioning", || async {
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("FailedScheduling"))
    })
    .await;
    assert!(sim::claims(&cluster).await.is_empty(), "no NodeClaim");
    assert!(cluster.ec2.list().await.unwrap().is_empty(), "no instance");
}

/// A pod asking for a branch interface (security groups for pods) runs on
/// a trunking-compatible type, whose node advertises the type's branch
/// interfaces; the claim waits for what its pods asked for only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pod_asking_for_a_pod_eni_runs_on_a_trunking_compatible_node() {
    let cluster = sim::cluster(Timing::at_speed(50.0)).await;
    let (metrics, _controller) = sim::start(&cluster, sim::settings("pod-eni", false));
    let (node, instance_type) =
        run_pod(&cluster, "payments", "1", "vpc.amazonaws.com/pod-eni").await;
    let branches = karpenter_controller::catalog::branch_interfaces(&instance_type);
    assert!(branches > 0, "{instance_type} cannot trunk");
    let allocatable = node.status.unwrap().allocatable.unwrap();
    assert_eq!(
        allocatable["vpc.amazonaws.com/pod-eni"].0,
        branches.to_string()
    );
    // controller-runtime's families count the reconciles that got it there.
    let text = metrics.encode();
    for controller in ["provisioner", "nodeclaim.lifecycle", "nodeclass"] {
        let line = format!(
            "controller_runtime_reconcile_total{{controller=\"{controller}\",result=\"success\"}}"
        );
        assert!(text.contains(&line), "{line} missing");
    }
    assert!(text.contains(
        "controller_runtime_max_concurrent_reconciles{controller=\"nodeclaim.lifecycle\"} 16"
    ));
    // The pod's scheduling decision, and its binding and start after it, are timed.
    eventually("the pod's provisioning times are observed", || async {
        let text = metrics.encode();
        [
            "karpenter_pods_scheduling_decision_duration_seconds_count",
            "karpenter_pods_provisioning_bound_duration_seconds_count",
            "karpenter_pods_provisioning_startup_duration_seconds_count",
        ]
        .iter()
        .all(|name| {
            text.lines()
                .any(|l| l.starts_with(name) && l.ends_with(" 1"))
        })
    })
    .await;
}

//! Taking over a cluster upstream Karpenter v1.14.1 ran, on kubesim and the
//! simulated EC2: two NodePools, each with its own EC2NodeClass, and their
//! NodeClaims and Nodes rewritten to exactly what upstream leaves (each
//! field says where upstream writes it); our controller started on them
//! re-stamps the drift hashes and, while every disruption method has its
//! chance, drifts, deletes, launches and terminates nothing. Then an edit
//! of one class's AMI selector drifts exactly that class's nodes.

mod sim;

use k8s_openapi::api::core::v1::Node;
use karpenter_api::v1::{EC2NodeClass, NodeClaim, NodePool};
use karpenter_controller::cloud::CloudProvider;
use karpenter_sim::demo::{SimCluster, Timing};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use sim::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A second pool of the team's: tainted, with its own class and Deployment.
const BATCH: &str = r#"
apiVersion: karpenter.sh/v1
kind: NodePool
metadata:
  name: batch
spec:
  disruption:
    consolidateAfter: 2s
    budgets: [{nodes: "100%"}]
  template:
    spec:
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: batch}
      requirements:
        - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
      taints:
        - {key: batch, value: "true", effect: NoSchedule}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: batch-jobs
  namespace: default
spec:
  replicas: 3
  selector: {matchLabels: {app: batch-jobs}}
  template:
    metadata: {labels: {app: batch-jobs}}
    spec:
      nodeSelector: {karpenter.sh/nodepool: batch}
      tolerations: [{key: batch, operator: Equal, value: "true", effect: NoSchedule}]
      containers:
        - name: job
          image: busybox
          resources: {requests: {cpu: "1", memory: 1Gi}}
"#;

/// Whether the claim's `Drifted` condition is True.
fn drifted(claim: &NodeClaim) -> bool {
    claim
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Drifted" && c.status == "True"))
}

/// Claim names by NodePool.
async fn claims_by_pool(cluster: &SimCluster) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for claim in claims(cluster).await {
        let pool = claim
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("karpenter.sh/nodepool").cloned())
            .unwrap_or_default();
        out.entry(pool)
            .or_default()
            .push(claim.metadata.name.unwrap_or_default());
    }
    out
}

/// The upstream hash annotations of pool `pool` and class `class`: values
/// as upstream's hashstructure (FormatV2) writes them, versions v3 (core
/// `pkg/apis/v1/nodepool.go` `NodePoolHashVersion`) and v5 (AWS
/// `pkg/apis/v1/ec2nodeclass.go` `EC2NodeClassHashVersion`).
fn upstream_hashes(pool: &str, class: &str) -> (Value, Value) {
    let pool_hash = if pool == "default" {
        "6821555240504101244"
    } else {
        "11130436462381528407"
    };
    let class_hash = if class == "default" {
        "15616957348189460630"
    } else {
        "4526219813232911011"
    };
    (
        json!({"karpenter.sh/nodepool-hash": pool_hash, "karpenter.sh/nodepool-hash-version": "v3"}),
        json!({"karpenter.k8s.aws/ec2nodeclass-hash": class_hash, "karpenter.k8s.aws/ec2nodeclass-hash-version": "v5"}),
    )
}

/// Rewrites every NodePool, EC2NodeClass, NodeClaim and Node to what
/// upstream v1.14.1 leaves, field by field (sources are upstream's files).
async fn as_upstream_leaves_them(cluster: &SimCluster) {
    let pools: Api<NodePool> = Api::all(cluster.client());
    let classes: Api<EC2NodeClass> = Api::all(cluster.client());
    let claims_api: Api<NodeClaim> = Api::all(cluster.client());
    let nodes: Api<Node> = Api::all(cluster.client());
    let merge = |v: Value| Patch::Merge(v);
    let params = PatchParams::default();
    for name in ["default", "batch"] {
        let (pool_hash, class_hash) = upstream_hashes(name, name);
        // core pkg/controllers/nodepool/hash/controller.go: the hash and its version.
        pools
            .patch(
                name,
                &params,
                &merge(json!({"metadata": {"annotations": pool_hash}})),
            )
            .await
            .unwrap();
        // aws pkg/controllers/nodeclass/hash/controller.go: the same for the class;
        // aws pkg/controllers/nodeclass/controller.go: the termination finalizer.
        classes
            .patch(
                name,
                &params,
                &merge(json!({"metadata": {"annotations": class_hash,
                    "finalizers": ["karpenter.k8s.aws/termination"]}})),
            )
            .await
            .unwrap();
    }
    for mut claim in claims_api.list(&Default::default()).await.unwrap().items {
        let name = claim.metadata.name.clone().unwrap();
        let labels = claim.metadata.labels.clone().unwrap_or_default();
        let pool_name = labels["karpenter.sh/nodepool"].clone();
        let class_name = claim.spec.template.node_class_ref.name.clone();
        let pool = pools.get(&pool_name).await.unwrap();
        let (pool_hash, class_hash) = upstream_hashes(&pool_name, &class_name);
        let mut annotations: BTreeMap<String, String> = serde_json::from_value(pool_hash).unwrap();
        // aws pkg/cloudprovider/cloudprovider.go Create: the class hash and version.
        annotations.extend(serde_json::from_value::<BTreeMap<String, String>>(class_hash).unwrap());
        // aws pkg/controllers/nodeclaim/tagging/controller.go: Name and nodeclaim tags written.
        annotations.insert("karpenter.k8s.aws/tagged".into(), "true".into());
        claim.metadata.annotations = Some(annotations.clone());
        // core pkg/controllers/nodeclaim/lifecycle/controller.go: the termination finalizer.
        claim.metadata.finalizers = Some(vec![karpenter_api::labels::TERMINATION_FINALIZER.into()]);
        // core pkg/controllers/provisioning/scheduling/nodeclaimtemplate.go ToNodeClaim:
        // owned by the NodePool, blocking its deletion.
        claim.metadata.owner_references = Some(vec![
            serde_json::from_value(json!({
                "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "name": pool_name,
                "uid": pool.metadata.uid, "blockOwnerDeletion": true
            }))
            .unwrap(),
        ]);
        claim.metadata.managed_fields = None;
        let claim = claims_api
            .replace(&name, &PostParams::default(), &claim)
            .await
            .unwrap();

        // core pkg/controllers/nodeclaim/lifecycle/registration.go syncNode: the
        // finalizer, the NodeClaim as owner, its labels and annotations, and the
        // registered (registration.go) and initialized (initialization.go) labels.
        let node_name = claim
            .status
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap();
        let mut node = nodes.get(&node_name).await.unwrap();
        node.metadata.finalizers = Some(vec![karpenter_api::labels::TERMINATION_FINALIZER.into()]);
        node.metadata.owner_references = Some(vec![
            serde_json::from_value(json!({
                "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim", "name": name,
                "uid": claim.metadata.uid, "blockOwnerDeletion": true
            }))
            .unwrap(),
        ]);
        let node_labels = node.metadata.labels.get_or_insert_with(Default::default);
        node_labels.extend(labels);
        node_labels.insert("karpenter.sh/registered".into(), "true".into());
        node_labels.insert("karpenter.sh/initialized".into(), "true".into());
        node.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .extend(annotations);
        node.metadata.managed_fields = None;
        nodes
            .replace(&node_name, &PostParams::default(), &node)
            .await
            .unwrap();
    }
}

/// Waits until the set of claims has not changed for `quiet`.
async fn settled(cluster: &SimCluster, quiet: Duration) {
    let began = Instant::now();
    let mut last = claims_by_pool(cluster).await;
    let mut since = Instant::now();
    while since.elapsed() < quiet {
        assert!(
            began.elapsed() < DEADLINE,
            "the claims never settled: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = claims_by_pool(cluster).await;
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cluster_upstream_ran_is_taken_over_without_drift_and_an_ami_edit_drifts_its_nodes() {
    let cluster = cluster(Timing::at_speed(40.0)).await;
    patch_spec::<NodePool>(
        &cluster,
        "default",
        json!({"disruption": {"consolidateAfter": "2s", "budgets": [{"nodes": "100%"}]}}),
    )
    .await;
    // The batch class: the demo's, under another name.
    let classes: Api<EC2NodeClass> = Api::all(cluster.client());
    let mut batch_class = classes.get("default").await.unwrap();
    batch_class.metadata = kube::api::ObjectMeta {
        name: Some("batch".into()),
        ..Default::default()
    };
    batch_class.status = None;
    classes
        .create(&PostParams::default(), &batch_class)
        .await
        .unwrap();
    cluster.apply(BATCH).await.unwrap();

    // Upstream's nodes, launched (the instances' tags are the same) and settled.
    let mut settings = settings("upstream", false);
    settings.disruption_poll_interval = Duration::from_millis(250);
    let (_, first) = start(&cluster, settings.clone());
    scale(&cluster, &[("worker", 6)]).await;
    all_running(&cluster, 9).await;
    settled(&cluster, Duration::from_secs(4)).await;
    first.abort();
    as_upstream_leaves_them(&cluster).await;
    let before = claims_by_pool(&cluster).await;
    assert!(
        before.get("default").is_some_and(|c| !c.is_empty()),
        "{before:?}"
    );
    assert!(
        before.get("batch").is_some_and(|c| !c.is_empty()),
        "{before:?}"
    );
    let instances = cluster.ec2.list().await.unwrap().len();

    // Our controller takes over: claims re-stamped with this project's versions.
    settings.pod_name = "successor".into();
    let (metrics, _second) = start(&cluster, settings);
    test_support::eventually(
        "every claim re-stamped with this project's versions",
        || async {
            claims(&cluster).await.iter().all(|c| {
                let a = c.metadata.annotations.clone().unwrap_or_default();
                a.get("karpenter.sh/nodepool-hash-version")
                    .map(String::as_str)
                    == Some(karpenter_api::v1::NODEPOOL_HASH_VERSION)
                    && a.get("karpenter.k8s.aws/ec2nodeclass-hash-version")
                        .map(String::as_str)
                        == Some(karpenter_api::v1::EC2NODECLASS_HASH_VERSION)
            })
        },
    )
    .await;
    // Twenty disruption passes (consolidation after 2 s, drift, expiry,
    // emptiness) later: nothing drifted, deleted, launched or terminated.
    after_disruption_passes(&metrics, 20, Duration::from_secs(3)).await;
    assert_eq!(claims_by_pool(&cluster).await, before, "no claim replaced");
    assert!(
        claims(&cluster)
            .await
            .iter()
            .all(|c| !drifted(c) && c.metadata.deletion_timestamp.is_none())
    );
    assert_eq!(
        cluster.ec2.list().await.unwrap().len(),
        instances,
        "no instance launched or terminated"
    );
    let pools: Api<NodePool> = Api::all(cluster.client());
    let annotations = pools
        .get("default")
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap_or_default();
    assert_eq!(
        annotations
            .get("karpenter.sh/nodepool-hash-version")
            .map(String::as_str),
        Some(karpenter_api::v1::NODEPOOL_HASH_VERSION),
        "a version upstream does not know: after a rollback its hash controller re-stamps, too"
    );

    // The default class now selects another AMI: exactly its nodes drift.
    patch_spec::<EC2NodeClass>(
        &cluster,
        "default",
        json!({"amiFamily": "AL2023", "amiSelectorTerms": [{"id": "ami-0123456789abcdef0"}]}),
    )
    .await;
    let defaults = &before["default"];
    let began = Instant::now();
    loop {
        let now = claims(&cluster).await;
        let gone_or_drifted = defaults.iter().all(|name| {
            now.iter()
                .find(|c| c.metadata.name.as_ref() == Some(name))
                .is_none_or(|c| drifted(c) || c.metadata.deletion_timestamp.is_some())
        });
        for claim in &now {
            let name = claim.metadata.name.clone().unwrap_or_default();
            if before["batch"].contains(&name) {
                assert!(!drifted(claim), "{name} of the batch class drifted");
            }
        }
        let batch_now = claims_by_pool(&cluster)
            .await
            .get("batch")
            .cloned()
            .unwrap_or_default();
        assert_eq!(batch_now, before["batch"], "the batch pool's claims stay");
        if gone_or_drifted {
            break;
        }
        assert!(
            began.elapsed() < DEADLINE,
            "the default class's nodes did not drift"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

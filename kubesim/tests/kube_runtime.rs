//! kube-rs beyond CRUD: Karpenter's CRDs and typed kinds with defaults and
//! validation, a `Controller` reconcile loop with the finalizer helper, the Lease
//! semantics leader election relies on, and a client built from the kubeconfig
//! `serve` writes (TLS, bearer token).

mod common;

use common::install_crds;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use karpenter_api::v1::{EC2NodeClass, NodePool};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::{Controller, wait};
use kube::{Client, ResourceExt};
use kubesim::{Kubesim, ServeOptions};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

fn example<T: serde::de::DeserializeOwned>(file: &str, kind: &str) -> T {
    use serde::Deserialize;
    let path = test_support::repo_path("examples").join(file);
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| serde_json::Value::deserialize(doc).unwrap())
        .find(|doc| doc["kind"] == kind)
        .map(|doc| serde_json::from_value(doc).unwrap())
        .unwrap()
}

#[tokio::test]
async fn karpenter_kinds_are_defaulted_and_validated() {
    let client = Kubesim::new().client();
    install_crds(&client).await;
    let pools: Api<NodePool> = Api::all(client.clone());
    let pool: NodePool = example("gitops/arm64.yaml", "NodePool");
    assert!(pool.spec.disruption.is_none());
    pools.create(&PostParams::default(), &pool).await.unwrap();
    let stored = pools.get("arm64").await.unwrap();
    let mut expected = pool.clone();
    karpenter_api::defaults::nodepool(&mut expected);
    assert_eq!(
        stored.spec, expected.spec,
        "the server defaults exactly as karpenter_api::defaults does"
    );

    let invalid: NodePool = example("invalid/nodepool-budgets.yaml", "NodePool");
    match pools.create(&PostParams::default(), &invalid).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
            assert!(
                status
                    .message
                    .contains("spec.disruption.budgets: 'schedule' must be set with 'duration'"),
                "{}",
                status.message
            );
            assert!(
                status
                    .message
                    .contains("spec.disruption.consolidationPolicy"),
                "{}",
                status.message
            );
        }
        other => panic!("expected 422, got {other:?}"),
    }

    let classes: Api<EC2NodeClass> = Api::all(client.clone());
    let class: EC2NodeClass = example("gitops/default.yaml", "EC2NodeClass");
    classes
        .create(&PostParams::default(), &class)
        .await
        .unwrap();
    assert_eq!(
        classes
            .get("default")
            .await
            .unwrap()
            .spec
            .metadata_options
            .unwrap()
            .http_tokens
            .as_deref(),
        Some("required")
    );
    // Transition rules (`oldSelf`) apply on update, as the CRD states them:
    // a NodePool's node class group is fixed...
    let patch = json!({"spec": {"template": {"spec": {"nodeClassRef": {"group": "example.com"}}}}});
    match pools
        .patch("arm64", &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Err(kube::Error::Api(status)) => assert!(
            status.message.contains("nodeClassRef.group is immutable"),
            "{}",
            status.message
        ),
        other => panic!("expected 422, got {other:?}"),
    }
    // ...while an EC2NodeClass may move from role to instance profile: upstream
    // v1.14's CRD has no rule against it (only the provider refuses it).
    let patch = json!({"spec": {"role": null, "instanceProfile": "Profile"}});
    classes
        .patch("default", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    // Status is a subresource: a main-resource write cannot change it.
    let mut with_status = classes.get("default").await.unwrap();
    with_status.status = Some(Default::default());
    with_status.status.as_mut().unwrap().instance_profile = Some("p".into());
    let replaced = classes
        .replace("default", &PostParams::default(), &with_status)
        .await
        .unwrap();
    assert!(replaced.status.is_none());
    let status_write = classes
        .replace_status("default", &PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(
        status_write.status.unwrap().instance_profile.as_deref(),
        Some("p")
    );
}

const FINALIZER: &str = "kubesim.test/cleanup";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reconciles_with_the_finalizer_helper() {
    let client = Kubesim::new().client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cleaned = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let reconcile = {
        let maps = maps.clone();
        let cleaned = cleaned.clone();
        move |cm: Arc<ConfigMap>, _: Arc<()>| {
            let maps = maps.clone();
            let cleaned = cleaned.clone();
            async move {
                let writer = maps.clone();
                finalizer(&maps, FINALIZER, cm, |event| async move {
                    match event {
                        Event::Apply(cm) => {
                            let patch = json!({"metadata": {"annotations": {"reconciled": "yes"}}});
                            writer
                                .patch(
                                    &cm.name_any(),
                                    &PatchParams::default(),
                                    &Patch::Merge(patch),
                                )
                                .await?;
                            Ok(Action::await_change())
                        }
                        Event::Cleanup(cm) => {
                            cleaned.lock().unwrap().push(cm.name_any());
                            Ok(Action::await_change())
                        }
                    }
                })
                .await
            }
        }
    };
    let controller = Controller::new(maps.clone(), Default::default())
        .run(
            reconcile,
            |_, _: &kube::runtime::finalizer::Error<kube::Error>, _| {
                Action::requeue(Duration::from_millis(50))
            },
            Arc::new(()),
        )
        .for_each(|_| async {});
    let task = tokio::spawn(controller);

    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "managed"}})).unwrap();
    maps.create(&PostParams::default(), &cm).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let uid = loop {
        let cm = maps.get("managed").await.unwrap();
        if cm.annotations().get("reconciled").map(String::as_str) == Some("yes")
            && cm.finalizers().contains(&FINALIZER.to_string())
        {
            break cm.uid().unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reconciled: {cm:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The finalizer may be gone (and the object with it) before a read
    // after the delete, so the uid is taken before.
    maps.delete("managed", &DeleteParams::default())
        .await
        .unwrap();
    let deleted =
        wait::await_condition(maps.clone(), "managed", wait::conditions::is_deleted(&uid));
    tokio::time::timeout(Duration::from_secs(10), deleted)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*cleaned.lock().unwrap(), ["managed"]);
    task.abort();
}

/// Who holds the leader-election Lease.
async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get("karpenter-leader-election")
        .await
        .unwrap()
        .spec
        .unwrap()
        .holder_identity
}

#[tokio::test]
async fn lease_semantics_for_leader_election() {
    let client = Kubesim::new().client();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let lease = |holder: &str| -> Lease {
        serde_json::from_value(json!({
            "metadata": {"name": "karpenter-leader-election"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": "2026-01-01T00:00:00.000000Z"}
        }))
        .unwrap()
    };
    // Only one contender creates the Lease.
    let held = leases
        .create(&PostParams::default(), &lease("a"))
        .await
        .unwrap();
    match leases.create(&PostParams::default(), &lease("b")).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 409),
        other => panic!("second create must conflict, got {other:?}"),
    }
    // Takeover is a compare-and-swap on resourceVersion: the one stale writer loses.
    let mut takeover = leases.get("karpenter-leader-election").await.unwrap();
    takeover.spec.as_mut().unwrap().holder_identity = Some("b".into());
    leases
        .replace(
            "karpenter-leader-election",
            &PostParams::default(),
            &takeover,
        )
        .await
        .unwrap();
    let mut late_renew = held.clone();
    late_renew.spec.as_mut().unwrap().renew_time = None;
    match leases
        .replace(
            "karpenter-leader-election",
            &PostParams::default(),
            &late_renew,
        )
        .await
    {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 409),
        other => panic!("stale renew must conflict, got {other:?}"),
    }
    assert_eq!(holder(&leases).await.as_deref(), Some("b"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_from_the_served_kubeconfig_over_tls() {
    let sim = Kubesim::new();
    let dir = std::env::temp_dir().join(format!("kubesim-tls-{}", std::process::id()));
    let path = dir.join("kubeconfig");
    let served = sim
        .serve(ServeOptions::loopback(path.clone()))
        .await
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600,
            "the kubeconfig holds a token"
        );
    }
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &Default::default())
        .await
        .unwrap();
    let client = Client::try_from(config).unwrap();
    let namespaces: Api<Namespace> = Api::all(client);
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert!(names.contains(&"kube-system".to_string()));

    // A wrong token is refused with 401.
    let mut wrong = kubeconfig;
    wrong.auth_infos[0].auth_info.as_mut().unwrap().token = Some("wrong".to_string().into());
    let config = kube::Config::from_custom_kubeconfig(wrong, &Default::default())
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(Client::try_from(config).unwrap());
    match namespaces.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    drop(served);
    let _ = std::fs::remove_dir_all(dir);
}

/// A TCP proxy whose live connections can be cut, to drop a client's watch.
struct CuttableProxy {
    address: std::net::SocketAddr,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>> =
            Default::default();
        let tracked = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tracked.lock().unwrap().push(task);
            }
        });
        CuttableProxy {
            address,
            connections,
            accept,
        }
    }

    /// Drops every open connection (the listener stays up).
    fn cut(&self) -> usize {
        let mut connections = self.connections.lock().unwrap();
        let cut = connections.iter().filter(|t| !t.is_finished()).count();
        connections.drain(..).for_each(|t| t.abort());
        cut
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_recovers_from_a_dropped_connection() {
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    let sim = Kubesim::new();
    let dir = std::env::temp_dir().join(format!("kubesim-drop-{}", std::process::id()));
    let served = sim
        .serve(ServeOptions::loopback(dir.join("kubeconfig")))
        .await
        .unwrap();
    let proxy = CuttableProxy::start(served.address).await;
    let kubeconfig = kube::config::Kubeconfig::read_from(dir.join("kubeconfig")).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    config.cluster_url = format!("https://{}", proxy.address).parse().unwrap();
    let client = Client::try_from(config).unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    // Writes go straight to the server, so only the watch crosses the proxy.
    let direct: Api<ConfigMap> = Api::namespaced(sim.client(), "default");

    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(maps, watcher::Config::default()).default_backoff(),
    )
    .applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while stream.next().await.is_some() {}
    });
    let cm = |name: &str| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
    };
    direct
        .create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();
    let wait_for = |n: usize| {
        let reader = reader.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while reader.state().len() != n {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "reflector has {} objects, want {n}",
                    reader.state().len()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(1).await;
    assert!(proxy.cut() >= 1, "the watch connection was open");
    direct
        .create(&PostParams::default(), &cm("while-down"))
        .await
        .unwrap();
    direct
        .create(&PostParams::default(), &cm("after"))
        .await
        .unwrap();
    wait_for(3).await;
    task.abort();
    drop(proxy);
    drop(served);
    let _ = std::fs::remove_dir_all(dir);
}

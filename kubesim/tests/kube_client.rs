//! kube-rs conformance: typed and dynamic CRUD, selectors, paging, patches,
//! optimistic concurrency, finalizers, garbage collection, watches and reflectors
//! (including recovery from 410 Gone), server-side apply, all through
//! `kube::Client` against the in-process API server.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, ResourceExt};
use kubesim::Kubesim;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use test_support::eventually;

fn config_map(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": labels.iter().cloned().collect::<BTreeMap<_, _>>()},
        "data": {"key": "value"}
    }))
    .unwrap()
}

fn error_code(e: kube::Error) -> u16 {
    match e {
        kube::Error::Api(status) => status.code,
        other => panic!("expected an API error, got {other}"),
    }
}

/// 12k names from a 27^5 suffix space collide about five times (birthday
/// bound), so without the API server's retry this fails 99 times in 100.
#[tokio::test]
async fn generate_name_draws_again_on_collision() {
    let client = Kubesim::new().client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let results: Vec<_> = futures::stream::iter(0..12_000)
        .map(|_| {
            let maps = maps.clone();
            let generated = generated.clone();
            async move { maps.create(&PostParams::default(), &generated).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} creates failed: {:?}",
        failed.len(),
        failed.first()
    );
    let names: std::collections::HashSet<_> =
        results.into_iter().map(|r| r.unwrap().name_any()).collect();
    assert_eq!(names.len(), 12_000);
}

#[tokio::test]
async fn typed_crud_with_conflicts_and_errors() {
    let client = Kubesim::new().client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let created = maps
        .create(&PostParams::default(), &config_map("a", &[]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    assert_eq!(
        error_code(
            maps.create(&PostParams::default(), &config_map("a", &[]))
                .await
                .unwrap_err()
        ),
        409
    );
    assert_eq!(error_code(maps.get("missing").await.unwrap_err()), 404);

    let mut fresh = maps.get("a").await.unwrap();
    fresh
        .data
        .get_or_insert_default()
        .insert("key".into(), "changed".into());
    let replaced = maps
        .replace("a", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(replaced.resource_version(), created.resource_version());
    // A write with the old resourceVersion loses.
    assert_eq!(
        error_code(
            maps.replace("a", &PostParams::default(), &fresh)
                .await
                .unwrap_err()
        ),
        409
    );

    let generated: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let generated = maps
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(generated.name_any().starts_with("gen-") && generated.name_any().len() == 9);

    // Namespaced objects need their namespace.
    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    assert_eq!(
        error_code(
            elsewhere
                .create(&PostParams::default(), &config_map("x", &[]))
                .await
                .unwrap_err()
        ),
        404
    );

    maps.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(error_code(maps.get("a").await.unwrap_err()), 404);
}

#[tokio::test]
async fn list_selectors_and_paging() {
    let client = Kubesim::new().client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..7 {
        let tier = if i % 2 == 0 { "front" } else { "back" };
        maps.create(
            &PostParams::default(),
            &config_map(&format!("m{i}"), &[("tier", tier), ("app", "web")]),
        )
        .await
        .unwrap();
    }
    let front = maps
        .list(&ListParams::default().labels("tier=front"))
        .await
        .unwrap();
    assert_eq!(front.items.len(), 4);
    let set = maps
        .list(&ListParams::default().labels("tier in (back),app"))
        .await
        .unwrap();
    assert_eq!(set.items.len(), 3);
    let by_name = maps
        .list(&ListParams::default().fields("metadata.name=m3"))
        .await
        .unwrap();
    assert_eq!(
        by_name
            .items
            .iter()
            .map(|m| m.name_any())
            .collect::<Vec<_>>(),
        ["m3"]
    );

    let mut names = Vec::new();
    let mut params = ListParams::default().limit(3);
    loop {
        let page = maps.list(&params).await.unwrap();
        assert!(page.items.len() <= 3);
        names.extend(page.items.iter().map(|m| m.name_any()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(names, ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
    let all: Api<ConfigMap> = Api::all(client);
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        7
    );
}

#[tokio::test]
async fn patches_merge_json_strategic_and_apply() {
    let client = Kubesim::new().client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    maps.create(&PostParams::default(), &config_map("p", &[("a", "1")]))
        .await
        .unwrap();
    let pp = PatchParams::default();
    let merged = maps
        .patch(
            "p",
            &pp,
            &Patch::Merge(json!({"metadata": {"labels": {"b": "2"}}})),
        )
        .await
        .unwrap();
    assert_eq!(merged.labels().len(), 2);
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "remove", "path": "/metadata/labels/a"}])).unwrap();
    let jsoned = maps.patch("p", &pp, &Patch::<()>::Json(ops)).await.unwrap();
    assert_eq!(jsoned.labels().keys().collect::<Vec<_>>(), ["b"]);
    let strategic = maps
        .patch("p", &pp, &Patch::Strategic(json!({"data": {"other": "x"}})))
        .await
        .unwrap();
    assert_eq!(strategic.data.unwrap().len(), 2);

    let apply = PatchParams::apply("kubesim-test");
    let desired = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "v"}});
    let created = maps
        .patch("applied", &apply, &Patch::Apply(&desired))
        .await
        .unwrap();
    assert_eq!(created.data.unwrap()["k"], "v");
    let managers: Vec<_> = created
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .map(|m| m.manager.unwrap())
        .collect();
    assert_eq!(managers, ["kubesim-test"]);
    let desired = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "v2"}});
    let updated = maps
        .patch("applied", &apply, &Patch::Apply(&desired))
        .await
        .unwrap();
    assert_eq!(updated.data.unwrap()["k"], "v2");

    // Another manager changing an owned field conflicts unless it forces.
    let other = PatchParams::apply("other-manager");
    let theirs = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"k": "theirs"}});
    match maps.patch("applied", &other, &Patch::Apply(&theirs)).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409);
            assert!(
                status
                    .message
                    .contains(r#"conflict with "kubesim-test": .data.k"#),
                "{}",
                status.message
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let forced = maps
        .patch("applied", &other.clone().force(), &Patch::Apply(&theirs))
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["k"], "theirs");

    // A field the first manager stops applying, and nobody else owns, is removed.
    let with_extra = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {"extra": "1"}});
    maps.patch("applied", &apply, &Patch::Apply(&with_extra))
        .await
        .unwrap();
    let without = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}, "data": {}});
    let pruned = maps
        .patch("applied", &apply, &Patch::Apply(&without))
        .await
        .unwrap();
    let data = pruned.data.unwrap_or_default();
    assert!(!data.contains_key("extra"), "{data:?}");
    assert_eq!(data["k"], "theirs", "owned by the other manager, kept");
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let client = Kubesim::new().client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut cm = config_map("held", &[]);
    cm.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    maps.create(&PostParams::default(), &cm).await.unwrap();
    maps.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = maps.get("held").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    maps.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(error_code(maps.get("held").await.unwrap_err()), 404);
}

#[tokio::test]
async fn owner_references_garbage_collect_and_orphan() {
    let client = Kubesim::new().client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner = maps
        .create(&PostParams::default(), &config_map("owner", &[]))
        .await
        .unwrap();
    for name in ["dep-1", "dep-2"] {
        let mut dep = config_map(name, &[]);
        dep.metadata.owner_references = Some(vec![
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "owner".into(),
                uid: owner.uid().unwrap(),
                ..Default::default()
            },
        ]);
        maps.create(&PostParams::default(), &dep).await.unwrap();
    }
    maps.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    assert_eq!(error_code(maps.get("dep-1").await.unwrap_err()), 404);
    assert_eq!(error_code(maps.get("dep-2").await.unwrap_err()), 404);

    let owner = maps
        .create(&PostParams::default(), &config_map("owner2", &[]))
        .await
        .unwrap();
    let mut dep = config_map("kept", &[]);
    dep.metadata.owner_references = Some(vec![
        k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "owner2".into(),
            uid: owner.uid().unwrap(),
            ..Default::default()
        },
    ]);
    maps.create(&PostParams::default(), &dep).await.unwrap();
    maps.delete("owner2", &DeleteParams::orphan())
        .await
        .unwrap();
    assert!(
        maps.get("kept")
            .await
            .unwrap()
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
}

#[tokio::test]
async fn namespace_deletion_removes_its_objects() {
    let client = Kubesim::new().client();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    let ns = namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Active"));
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    maps.create(&PostParams::default(), &config_map("x", &[]))
        .await
        .unwrap();
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(error_code(maps.get("x").await.unwrap_err()), 404);
    assert_eq!(error_code(namespaces.get("team").await.unwrap_err()), 404);
}

#[tokio::test]
async fn raw_watch_from_a_version_and_410_when_too_old() {
    let sim = Kubesim::with_watch_history(10);
    let maps: Api<ConfigMap> = Api::namespaced(sim.client(), "default");
    let first = maps
        .create(&PostParams::default(), &config_map("w0", &[]))
        .await
        .unwrap();
    let mut stream = maps
        .watch(
            &WatchParams::default().timeout(5),
            &first.resource_version().unwrap(),
        )
        .await
        .unwrap()
        .boxed();
    maps.create(&PostParams::default(), &config_map("w1", &[]))
        .await
        .unwrap();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Added(cm)) => assert_eq!(cm.name_any(), "w1"),
        other => panic!("expected ADDED w1, got {other:?}"),
    }
    // Push the first version out of the history.
    for i in 2..30 {
        maps.create(&PostParams::default(), &config_map(&format!("w{i}"), &[]))
            .await
            .unwrap();
    }
    let mut stale = maps
        .watch(&WatchParams::default(), &first.resource_version().unwrap())
        .await
        .unwrap()
        .boxed();
    match stale.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn watcher_and_reflector_follow_changes_and_recover_from_410() {
    let sim = Kubesim::with_watch_history(5);
    let client = sim.client();
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let (reader, writer) = reflector::store();
    let stream = reflector(
        writer,
        watcher(maps.clone(), watcher::Config::default().labels("app=web")),
    )
    .applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = stream.boxed();
        // Errors (a 410 among them) are reported, then the watcher recovers.
        while stream.next().await.is_some() {}
    });
    for i in 0..20 {
        maps.create(
            &PostParams::default(),
            &config_map(&format!("r{i}"), &[("app", "web")]),
        )
        .await
        .unwrap();
    }
    maps.create(
        &PostParams::default(),
        &config_map("other", &[("app", "db")]),
    )
    .await
    .unwrap();
    eventually("20 objects in the reflector", || async {
        reader.state().len() == 20
    })
    .await;
    maps.delete("r0", &DeleteParams::default()).await.unwrap();
    // Leaving the selector reads as a deletion for the filtered watch.
    maps.patch(
        "r1",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}})),
    )
    .await
    .unwrap();
    eventually("r0 and r1 gone from the reflector", || async {
        reader.state().len() == 18
    })
    .await;
    task.abort();

    // A filtered watcher without bookmarks resumes from the version of the last
    // object it matched; writes it does not match push that version out of the
    // history, so its next watch gets 410 and it must re-list to converge.
    let (reader, writer) = reflector::store();
    let config = watcher::Config::default().labels("team=a").timeout(1);
    let stream = reflector(writer, watcher(maps.clone(), config)).applied_objects();
    let gone = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = gone.clone();
    let task = tokio::spawn(async move {
        let mut stream = stream.boxed();
        while let Some(item) = stream.next().await {
            if let Err(watcher::Error::WatchError(e)) = item
                && e.code == 410
            {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
    });
    maps.create(&PostParams::default(), &config_map("a0", &[("team", "a")]))
        .await
        .unwrap();
    eventually("a0 in the reflector", || async {
        reader.state().len() == 1
    })
    .await;
    for i in 0..10 {
        maps.create(
            &PostParams::default(),
            &config_map(&format!("b{i}"), &[("team", "b")]),
        )
        .await
        .unwrap();
    }
    // Let the 1 s watch expire so the watcher resumes from a compacted version.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    maps.create(&PostParams::default(), &config_map("a1", &[("team", "a")]))
        .await
        .unwrap();
    eventually("a1 after the 410 re-list", || async {
        reader.state().len() == 2
    })
    .await;
    assert!(
        gone.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the watcher must have seen 410 Gone"
    );
    task.abort();
}

#[tokio::test]
async fn pod_binding_sets_node_and_condition() {
    let client = Kubesim::new().client();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
    )
    .unwrap();
    let pod = pods.create(&PostParams::default(), &pod).await.unwrap();
    assert_eq!(pod.status.unwrap().phase.as_deref(), Some("Pending"));
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}});
    let request = http::Request::post("/api/v1/namespaces/default/pods/p/binding")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).unwrap())
        .unwrap();
    client
        .request_status::<serde_json::Value>(request)
        .await
        .unwrap();
    let bound = pods.get("p").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("node-1"));
    let conditions = bound.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "PodScheduled" && c.status == "True")
    );
}

#[tokio::test]
async fn dynamic_api_discovers_built_in_kinds() {
    let client: Client = Kubesim::new().client();
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    let (resource, caps) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "apps",
            "v1",
            "Deployment",
        ))
        .unwrap();
    assert_eq!(resource.plural, "deployments");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client, "default", &resource);
    let obj: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": []}}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
    assert_eq!(api.get("d").await.unwrap().metadata.generation, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_requests_are_conditional_only_when_they_name_a_resource_version() {
    use k8s_openapi::api::apps::v1::Deployment;
    let sim = Kubesim::new();
    let deployments: Api<Deployment> = Api::namespaced(sim.client(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
    }))
    .unwrap();
    let created = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let stale = created.resource_version().unwrap();

    // Another writer keeps changing the Deployment while it is scaled.
    let writer = {
        let deployments = deployments.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                let patch = json!({"metadata": {"annotations": {"touched": i.to_string()}}});
                deployments
                    .patch("web", &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .unwrap();
            }
        })
    };
    for replicas in 2..40 {
        deployments
            .patch_scale(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": replicas}})),
            )
            .await
            .unwrap_or_else(|e| panic!("an unconditional scale conflicted: {e}"));
    }
    writer.await.unwrap();
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(39)
    );

    // Naming a stale resourceVersion makes the request conditional.
    let conditional = json!({"metadata": {"resourceVersion": stale}, "spec": {"replicas": 3}});
    let err = deployments
        .patch_scale("web", &PatchParams::default(), &Patch::Merge(conditional))
        .await
        .unwrap_err();
    assert_eq!(error_code(err), 409);
}

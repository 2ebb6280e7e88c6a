//! RBAC, evaluated: every Kubernetes request the controller makes in an
//! end-to-end run (provisioning, registration, a spot interruption and its
//! drain, consolidation, events, leader election) is held against the
//! ClusterRole and Roles the chart renders for its service account. kubesim
//! authorizes nothing, so a missing permission would only show on a real
//! cluster; here any request the chart does not allow fails the test.

use karpenter_bootstrap::helm::chart::Chart;
use karpenter_bootstrap::helm::render::{ReleaseInfo, render};
use karpenter_controller::cloud::CloudProvider;
use karpenter_controller::settings::Settings;
use karpenter_sim::demo::{self, SimCluster, Timing};
use karpenter_sim::ec2::SimEvent;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// One RBAC rule, with the namespace it applies in (`None`: cluster-wide).
#[derive(Debug)]
struct Rule {
    namespace: Option<String>,
    groups: Vec<String>,
    resources: Vec<String>,
    names: Vec<String>,
    verbs: Vec<String>,
}

/// The rules bound to the chart's service account.
fn chart_rules() -> Vec<Rule> {
    let release = ReleaseInfo {
        name: "karpenter",
        namespace: "kube-system",
        revision: 1,
    };
    let docs = render(
        &Chart::embedded(),
        release,
        &json!({"settings": {"clusterName": "demo"}}),
    )
    .unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    };
    let bound = |kind: &str, name: &str| {
        docs.iter().any(|d| {
            let o = &d.object;
            o["kind"].as_str().is_some_and(|k| k.ends_with("Binding"))
                && o["roleRef"]["kind"] == kind
                && o["roleRef"]["name"] == name
                && o["subjects"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s["kind"] == "ServiceAccount" && s["name"] == "karpenter")
        })
    };
    let mut rules = Vec::new();
    for d in &docs {
        let o = &d.object;
        let kind = o["kind"].as_str().unwrap_or_default();
        let name = o["metadata"]["name"].as_str().unwrap_or_default();
        if !matches!(kind, "ClusterRole" | "Role") || !bound(kind, name) {
            continue;
        }
        let namespace = (kind == "Role").then(|| {
            o["metadata"]["namespace"]
                .as_str()
                .unwrap_or("kube-system")
                .to_string()
        });
        for r in o["rules"].as_array().into_iter().flatten() {
            rules.push(Rule {
                namespace: namespace.clone(),
                groups: strings(&r["apiGroups"]),
                resources: strings(&r["resources"]),
                names: strings(&r["resourceNames"]),
                verbs: strings(&r["verbs"]),
            });
        }
    }
    rules
}

/// A request as RBAC sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Attributes {
    verb: String,
    group: String,
    resource: String,
    namespace: Option<String>,
    name: Option<String>,
}

/// RBAC's reading of an API request path (`None`: not a resource request).
fn attributes(method: &http::Method, path: &str, query: &str) -> Option<Attributes> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => (String::new(), rest),
        ["apis", group, _version, rest @ ..] => (group.to_string(), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
        rest => (None, rest),
    };
    let (resource, name, sub) = match rest {
        [resource] => (resource.to_string(), None, None),
        [resource, name] => (resource.to_string(), Some(name.to_string()), None),
        [resource, name, sub] => (resource.to_string(), Some(name.to_string()), Some(*sub)),
        _ => return None,
    };
    let watch = query
        .split('&')
        .any(|p| p == "watch=true" || p == "watch=1");
    let verb = match (method.as_str(), &name) {
        ("GET", _) if watch => "watch",
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", None) => "deletecollection",
        ("DELETE", Some(_)) => "delete",
        _ => return None,
    };
    let resource = match sub {
        Some(sub) => format!("{resource}/{sub}"),
        None => resource,
    };
    // A create names its object in the body, not the path.
    let name = if verb == "create" && sub.is_none() {
        None
    } else {
        name
    };
    Some(Attributes {
        verb: verb.to_string(),
        group,
        resource,
        namespace,
        name,
    })
}

fn allowed(rules: &[Rule], a: &Attributes) -> bool {
    let any = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
    rules.iter().any(|r| {
        r.namespace
            .as_ref()
            .is_none_or(|ns| a.namespace.as_ref() == Some(ns))
            && any(&r.groups, &a.group)
            && any(&r.resources, &a.resource)
            && any(&r.verbs, &a.verb)
            && (r.names.is_empty() || a.name.as_ref().is_some_and(|n| r.names.contains(n)))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_request_of_the_controller_is_allowed_by_the_charts_rbac() {
    let timing = Timing::at_speed(40.0);
    let cluster = SimCluster::start(&timing, 3).await.unwrap();
    cluster.apply(demo::DEFAULT_MANIFESTS).await.unwrap();
    let scenario = demo::Scenario::parse(demo::DEFAULT_SCENARIO).unwrap();
    cluster.apply(&scenario.manifests()).await.unwrap();
    cluster
        .apply(
            &json!({"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "default"},
                "spec": {"disruption": {"consolidateAfter": "0s"}}})
            .to_string(),
        )
        .await
        .ok();
    let recorder = kubesim::Faults::new();
    let mut settings = Settings::defaults("demo");
    settings.pod_name = "karpenter-abc".into();
    settings.system_namespace = "kube-system".into();
    settings.batch_idle_duration = Duration::from_millis(300);
    settings.disruption_poll_interval = Duration::from_millis(250);
    let (_, run) = cluster.controller_with_client(
        cluster.sim.faulty_client(&recorder),
        settings,
        std::future::pending(),
    );
    let controller = tokio::spawn(run);
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(cluster.client(), "default");
    let running = |want: usize| {
        let pods = pods.clone();
        async move {
            let list = pods.list(&Default::default()).await.unwrap().items;
            let up = list
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            list.len() == want && up == want
        }
    };
    cluster
        .scale("default", [("web", 12), ("worker", 6)])
        .await
        .unwrap();
    test_support::eventually_within(Duration::from_secs(90), "18 pods running", || running(18))
        .await;
    // A spot interruption: cordon, drain through evictions, replacement.
    let spot = cluster
        .ec2
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.capacity_type.label() == "spot")
        .expect("spot capacity");
    cluster
        .interrupt(SimEvent::SpotInterruption, &spot.provider_id)
        .unwrap();
    test_support::eventually_within(
        Duration::from_secs(90),
        "the interrupted instance gone",
        || async { cluster.ec2.get(&spot.provider_id).await.is_err() },
    )
    .await;
    // Scale-in: emptiness and consolidation.
    cluster
        .scale("default", [("web", 2), ("worker", 0)])
        .await
        .unwrap();
    test_support::eventually_within(Duration::from_secs(90), "2 pods running", || running(2)).await;
    controller.abort();

    let rules = chart_rules();
    let mut denied = BTreeSet::new();
    let mut checked = BTreeSet::new();
    for (method, path, query) in recorder.requests() {
        let Some(a) = attributes(&method, &path, &query) else {
            continue;
        };
        if !allowed(&rules, &a) {
            denied.insert(a.clone());
        }
        checked.insert((a.verb, a.group, a.resource));
    }
    eprintln!(
        "RBAC: {} distinct (verb, group, resource) requests checked:",
        checked.len()
    );
    for (verb, group, resource) in &checked {
        eprintln!("  {verb:<17} {group:<22} {resource}");
    }
    assert!(
        denied.is_empty(),
        "the chart's RBAC does not allow: {denied:#?}"
    );
    assert!(
        checked
            .iter()
            .any(|(v, _, r)| v == "create" && r == "pods/eviction"),
        "the drain was exercised"
    );
}

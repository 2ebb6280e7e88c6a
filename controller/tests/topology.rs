//! Topology spread, pod (anti-)affinity, preferences and their relaxation,
//! and volume topology, against the real us-east-1 catalog.

mod common;

use common::{node, pod, pool, pool_with};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use karpenter_api::labels::{CAPACITY_TYPE, ZONE};
use karpenter_controller::scheduling::{
    PodInfo, Pool, Solution, pod_info, solve, volume_requirements,
};
use karpenter_controller::state::CachedPod;
use serde_json::{Value, json};
use std::collections::BTreeMap;

const GI: i64 = 1 << 30;

fn zones(list: &[&str]) -> Pool {
    pool_with(
        "zonal",
        json!({"template": {"spec": {"requirements": [{"key": ZONE, "operator": "In", "values": list}]}}}),
    )
}

/// `count` pods labelled `app`, with `extra` merged into each.
fn app(app: &str, count: usize, extra: Value) -> Vec<PodInfo> {
    (0..count)
        .map(|i| {
            let mut extra = extra.clone();
            json_patch::merge(&mut extra, &json!({"metadata": {"labels": {"app": app}}}));
            pod(&format!("{app}-{i}"), "500m", "512Mi", extra)
        })
        .collect()
}

fn spread(key: &str, max_skew: i32, rest: Value) -> Value {
    let mut constraint = json!({"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "web"}}});
    json_patch::merge(&mut constraint, &rest);
    json!({"spec": {"topologySpreadConstraints": [constraint]}})
}

fn affinity(kind: &str, mode: &str, key: &str, app: &str) -> Value {
    let term = json!({"topologyKey": key, "labelSelector": {"matchLabels": {"app": app}}});
    let terms = if mode == "required" {
        json!({"requiredDuringSchedulingIgnoredDuringExecution": [term]})
    } else {
        json!({"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 50, "podAffinityTerm": term}]})
    };
    json!({"spec": {"affinity": {kind: terms}}})
}

/// How many of `pods` (by name prefix) each value of `key` got, over new claims.
fn per_domain(solution: &Solution, key: &str, prefix: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for claim in &solution.claims {
        let domain = claim
            .requirements
            .get(key)
            .and_then(|r| r.values())
            .filter(|v| v.len() == 1)
            .map_or("(undecided)".to_string(), |v| {
                v.iter().next().unwrap().clone()
            });
        let n = claim
            .pods
            .iter()
            .filter(|p| p.starts_with(&format!("default/{prefix}")))
            .count();
        *out.entry(domain).or_insert(0) += n;
    }
    out.retain(|_, n| *n > 0);
    out
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Pool zones, running web pods in us-east-1a, pending pods, spread extras,
/// expected pods per zone, unschedulable pods.
type SpreadCase = (
    &'static [&'static str],
    usize,
    usize,
    Value,
    &'static [(&'static str, usize)],
    usize,
);

#[test]
fn zone_spreads_balance_new_nodes_and_count_running_pods() {
    // (pool zones, running web pods in us-east-1a, pending pods, spread extras, expected per zone, unschedulable)
    let cases: Vec<SpreadCase> = vec![
        (
            &["us-east-1a", "us-east-1b", "us-east-1c"],
            0,
            6,
            json!({}),
            &[("us-east-1a", 2), ("us-east-1b", 2), ("us-east-1c", 2)],
            0,
        ),
        // Two running in 1a: the new ones fill 1b and 1c first.
        (
            &["us-east-1a", "us-east-1b", "us-east-1c"],
            2,
            4,
            json!({}),
            &[("us-east-1b", 2), ("us-east-1c", 2)],
            0,
        ),
        // minDomains 3 with two zones: the minimum counts as zero, so each zone takes one.
        (
            &["us-east-1a", "us-east-1b"],
            0,
            3,
            json!({"minDomains": 3}),
            &[("us-east-1a", 1), ("us-east-1b", 1)],
            1,
        ),
        // maxSkew 2 with 1a already two ahead: 1b gets the first pod, then 1a
        // may run up to two ahead again (maxSkew 1 would have kept it at 2).
        (
            &["us-east-1a", "us-east-1b"],
            2,
            3,
            json!({"maxSkew": 2}),
            &[("us-east-1a", 1), ("us-east-1b", 2)],
            0,
        ),
    ];
    for (i, (pool_zones, running, pending, extra, expected, unschedulable)) in
        cases.into_iter().enumerate()
    {
        let constraint = spread(ZONE, 1, extra);
        let nodes = if running > 0 {
            // A full node: its pods count, but it has no room.
            vec![node(
                "full",
                &[(ZONE, "us-east-1a")],
                0,
                0,
                app("web-running", running, json!({}))
                    .into_iter()
                    .map(relabel_web)
                    .collect(),
            )]
        } else {
            vec![]
        };
        let solution = solve(
            &app("web", pending, constraint.clone()),
            nodes,
            vec![zones(pool_zones)],
        );
        let got = per_domain(&solution, ZONE, "web-");
        assert_eq!(got, counts(expected), "case {i}: {solution:#?}");
        assert_eq!(
            solution.unschedulable.len(),
            unschedulable,
            "case {i}: {:?}",
            solution.unschedulable
        );
        if unschedulable > 0 {
            assert!(
                solution.unschedulable[0]
                    .1
                    .contains("topology spread on topology.kubernetes.io/zone (maxSkew 1)"),
                "{:?}",
                solution.unschedulable
            );
        }
    }
}

fn relabel_web(mut pod: PodInfo) -> PodInfo {
    pod.labels.insert("app".into(), "web".into());
    pod
}

#[test]
fn hostname_and_capacity_type_spreads() {
    // maxSkew 1 on hostname: one web pod per node; maxSkew 2: two.
    for (skew, nodes) in [(1, 4), (2, 2)] {
        let solution = solve(
            &app("web", 4, spread("kubernetes.io/hostname", skew, json!({}))),
            vec![],
            vec![pool("default")],
        );
        assert_eq!(solution.claims.len(), nodes, "maxSkew {skew}");
        assert!(
            solution
                .claims
                .iter()
                .all(|c| c.pods.len() == skew as usize)
        );
    }
    // Spread over capacity types: half spot, half on-demand.
    let solution = solve(
        &app("web", 4, spread(CAPACITY_TYPE, 1, json!({}))),
        vec![],
        vec![pool("default")],
    );
    assert_eq!(
        per_domain(&solution, CAPACITY_TYPE, "web-"),
        counts(&[("on-demand", 2), ("spot", 2)])
    );
}

#[test]
fn spread_policies_and_match_label_keys() {
    let pool_abc = || zones(&["us-east-1a", "us-east-1b", "us-east-1c"]);
    let only_ab = json!({"spec": {"nodeSelector": {}, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["us-east-1a", "us-east-1b"]}]}]}}}}});
    // Honor (default): the pod's own zones are the domains, so 1a and 1b share four pods.
    let mut honor = spread(ZONE, 1, json!({}));
    json_patch::merge(&mut honor, &only_ab);
    let solution = solve(&app("web", 4, honor), vec![], vec![pool_abc()]);
    assert_eq!(
        per_domain(&solution, ZONE, "web-"),
        counts(&[("us-east-1a", 2), ("us-east-1b", 2)])
    );
    // Ignore: 1c counts as an (always empty) domain, so 1a and 1b take one each.
    let mut ignore = spread(ZONE, 1, json!({"nodeAffinityPolicy": "Ignore"}));
    json_patch::merge(&mut ignore, &only_ab);
    let solution = solve(&app("web", 4, ignore), vec![], vec![pool_abc()]);
    assert_eq!(
        per_domain(&solution, ZONE, "web-"),
        counts(&[("us-east-1a", 1), ("us-east-1b", 1)])
    );
    assert_eq!(solution.unschedulable.len(), 2);

    // matchLabelKeys: two revisions of a Deployment spread independently.
    let revision = |hash: &str| {
        let mut extra = spread(
            "kubernetes.io/hostname",
            1,
            json!({"matchLabelKeys": ["pod-template-hash"]}),
        );
        json_patch::merge(
            &mut extra,
            &json!({"metadata": {"labels": {"pod-template-hash": hash}}}),
        );
        extra
    };
    let mut pods = app("web-old", 2, revision("old"));
    pods.extend(app("web-new", 2, revision("new")));
    for p in &mut pods {
        p.labels.insert("app".into(), "web".into());
    }
    // The selector (app=web) comes from the helper; relabelling after digestion
    // keeps each revision's hash in its selector.
    let solution = solve(&pods, vec![], vec![pool("default")]);
    assert_eq!(
        solution.claims.len(),
        2,
        "one old and one new pod per node: {solution:#?}"
    );
}

#[test]
fn required_pod_affinity_and_anti_affinity() {
    // Affinity to a running pod: the new pods follow it to its zone.
    let db = app("db", 1, json!({}));
    let running = vec![node("db-node", &[(ZONE, "us-east-1c")], 0, 0, db)];
    let solution = solve(
        &app("web", 3, affinity("podAffinity", "required", ZONE, "db")),
        running,
        vec![pool("default")],
    );
    assert_eq!(
        per_domain(&solution, ZONE, "web-"),
        counts(&[("us-east-1c", 3)])
    );

    // Affinity to a pod that is pending in the same batch and sorts later (smaller).
    let mut pods = app(
        "web",
        2,
        affinity("podAffinity", "required", "kubernetes.io/hostname", "cache"),
    );
    pods.push(pod(
        "cache-0",
        "100m",
        "64Mi",
        json!({"metadata": {"labels": {"app": "cache"}}}),
    ));
    let solution = solve(&pods, vec![], vec![pool("default")]);
    assert!(
        solution.unschedulable.is_empty(),
        "{:?}",
        solution.unschedulable
    );
    assert_eq!(solution.claims.len(), 1, "all on the cache pod's node");

    // Affinity to nothing: explained.
    let solution = solve(
        &app(
            "web",
            1,
            affinity("podAffinity", "required", ZONE, "missing"),
        ),
        vec![],
        vec![pool("default")],
    );
    assert!(
        solution.unschedulable[0].1.contains(
            "pod affinity on topology.kubernetes.io/zone: no pod matches its selector yet"
        ),
        "{:?}",
        solution.unschedulable
    );

    // Self anti-affinity on hostname: one per node, even with room to share.
    let solution = solve(
        &app(
            "web",
            3,
            affinity(
                "podAntiAffinity",
                "required",
                "kubernetes.io/hostname",
                "web",
            ),
        ),
        vec![],
        vec![pool("default")],
    );
    assert_eq!(solution.claims.len(), 3);

    // Self anti-affinity on zone: one per zone; the seventh pod has no zone left.
    let solution = solve(
        &app(
            "web",
            7,
            affinity("podAntiAffinity", "required", ZONE, "web"),
        ),
        vec![],
        vec![pool("default")],
    );
    assert_eq!(solution.claims.len(), 6, "us-east-1 has six zones");
    assert_eq!(per_domain(&solution, ZONE, "web-").len(), 6);
    assert_eq!(solution.unschedulable.len(), 1);
}

#[test]
fn running_pods_anti_affinity_keeps_pending_pods_away() {
    // A running pod repels web pods from its node (which has room) and, on zone, from its zone.
    for (key, nominated) in [("kubernetes.io/hostname", false), (ZONE, false)] {
        let guard: CachedPod = serde_json::from_value(json!({"metadata": {"name": "guard", "namespace": "default", "labels": {"app": "guard"}},
            "spec": {"containers": [{"name": "c"}], "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": key, "labelSelector": {"matchLabels": {"app": "web"}}}]}}}})).unwrap();
        let guard = pod_info(&guard).unwrap();
        let roomy = node("roomy", &[(ZONE, "us-east-1a")], 8000, 32 * GI, vec![guard]);
        let solution = solve(
            &app("web", 2, json!({})),
            vec![roomy],
            vec![zones(&["us-east-1a", "us-east-1b"])],
        );
        assert_eq!(!solution.nominations.is_empty(), nominated, "{key}");
        if key == ZONE {
            assert_eq!(
                per_domain(&solution, ZONE, "web-"),
                counts(&[("us-east-1b", 2)])
            );
        }
    }
    // Without the guard, the roomy node takes them.
    let roomy = node("roomy", &[(ZONE, "us-east-1a")], 8000, 32 * GI, vec![]);
    let solution = solve(
        &app("web", 2, json!({})),
        vec![roomy],
        vec![pool("default")],
    );
    assert_eq!(solution.nominations.len(), 2);
}

#[test]
fn preferences_are_kept_when_possible_and_relaxed_in_order() {
    let preferred_zone = |weight: i32, zone: &str| json!({"weight": weight, "preference": {"matchExpressions": [{"key": ZONE, "operator": "In", "values": [zone]}]}});
    // (preferred node-affinity terms, zone expected)
    let cases = vec![
        (vec![preferred_zone(10, "us-east-1d")], Some("us-east-1d")),
        // The heavier term cannot be met (no such zone): the next one applies.
        (
            vec![
                preferred_zone(10, "us-east-1b"),
                preferred_zone(90, "eu-west-1a"),
            ],
            Some("us-east-1b"),
        ),
        // Nothing can be met: the pod still runs.
        (vec![preferred_zone(90, "eu-west-1a")], None),
    ];
    for (terms, expected) in cases {
        let extra = json!({"spec": {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": terms}}}});
        let solution = solve(&app("web", 1, extra), vec![], vec![pool("default")]);
        assert!(
            solution.unschedulable.is_empty(),
            "{:?}",
            solution.unschedulable
        );
        if let Some(zone) = expected {
            assert_eq!(per_domain(&solution, ZONE, "web-"), counts(&[(zone, 1)]));
        }
    }

    // Preferred anti-affinity holds while it can: 3 pods, 2 zones allowed → the third shares.
    let solution = solve(
        &app(
            "web",
            3,
            affinity("podAntiAffinity", "preferred", ZONE, "web"),
        ),
        vec![],
        vec![zones(&["us-east-1a", "us-east-1b"])],
    );
    assert!(solution.unschedulable.is_empty());
    assert_eq!(per_domain(&solution, ZONE, "web-").len(), 2);

    // ScheduleAnyway: enforced while possible, given up when not.
    let anyway = spread(ZONE, 1, json!({"whenUnsatisfiable": "ScheduleAnyway"}));
    let full_b = node("full-b", &[(ZONE, "us-east-1b")], 0, 0, vec![]);
    let strict = solve(
        &app("web", 2, spread(ZONE, 1, json!({}))),
        vec![full_b.clone()],
        vec![zones(&["us-east-1a"])],
    );
    assert_eq!(
        strict.unschedulable.len(),
        1,
        "1b cannot grow, so 1a may run only one ahead"
    );
    let relaxed = solve(
        &app("web", 2, anyway),
        vec![full_b],
        vec![zones(&["us-east-1a"])],
    );
    assert!(relaxed.unschedulable.is_empty());
}

#[test]
fn prefer_no_schedule_taints_are_avoided_then_tolerated() {
    let soft = |name: &str, weight: i32| {
        pool_with(
            name,
            json!({"weight": weight, "template": {"spec": {"taints": [{"key": "spot-only", "value": "true", "effect": "PreferNoSchedule"}]}}}),
        )
    };
    // A heavier pool with a PreferNoSchedule taint loses to an untainted one...
    let solution = solve(
        &app("web", 1, json!({})),
        vec![],
        vec![soft("tainted", 90), pool("plain")],
    );
    assert_eq!(solution.claims[0].pool, "plain");
    // ...but is used when it is the only one.
    let solution = solve(&app("web", 1, json!({})), vec![], vec![soft("tainted", 90)]);
    assert_eq!(solution.claims[0].pool, "tainted");
}

#[test]
fn volumes_pin_zones() {
    let pod_with_claim: CachedPod =
        serde_json::from_value(json!({"metadata": {"name": "db", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}))
        .unwrap();
    let claim = |volume: Option<&str>, class: &str| -> PersistentVolumeClaim {
        serde_json::from_value(json!({"metadata": {"name": "data", "namespace": "default"},
            "spec": {"storageClassName": class, "volumeName": volume}}))
        .unwrap()
    };
    let pv: PersistentVolume = serde_json::from_value(json!({"metadata": {"name": "pv-1"},
        "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [{"key": ZONE, "operator": "In", "values": ["us-east-1d"]}]}]}}}})).unwrap();
    let class: StorageClass = serde_json::from_value(json!({"metadata": {"name": "zonal"}, "provisioner": "ebs.csi.aws.com",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowedTopologies": [{"matchLabelExpressions": [{"key": ZONE, "values": ["us-east-1f"]}]}]})).unwrap();
    // (claims, expected zone)
    let cases = vec![
        (vec![claim(Some("pv-1"), "zonal")], Ok("us-east-1d")),
        (vec![claim(None, "zonal")], Ok("us-east-1f")),
        (vec![], Err("persistentvolumeclaim default/data not found")),
    ];
    for (claims, expected) in cases {
        let pinned = volume_requirements(
            &pod_with_claim,
            &claims,
            std::slice::from_ref(&pv),
            std::slice::from_ref(&class),
        );
        match expected {
            Ok(zone) => {
                let mut info = pod_info(&pod_with_claim).unwrap();
                info.restrict(&pinned.unwrap());
                let solution = solve(&[info], vec![], vec![pool("default")]);
                let got = solution.claims[0]
                    .requirements
                    .get(ZONE)
                    .and_then(|r| r.values())
                    .unwrap();
                assert_eq!(got.iter().collect::<Vec<_>>(), vec![zone]);
            }
            Err(message) => assert_eq!(pinned.unwrap_err().to_string(), message),
        }
    }
}

#[test]
fn malformed_topology_rules_are_named() {
    // (pod spec, expected error)
    let cases = [
        (
            json!({"topologySpreadConstraints": [{"maxSkew": 0, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule"}]}),
            "default/bad: spec.topologySpreadConstraints[0].maxSkew: must be greater than zero (got 0)",
        ),
        (
            json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"topologyKey": ZONE, "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["x"]}]}}]}}}),
            "default/bad: app: unknown operator \"Near\"",
        ),
    ];
    for (spec, expected) in cases {
        let mut p = json!({"metadata": {"name": "bad", "namespace": "default"}, "spec": {"containers": [{"name": "c"}]}});
        json_patch::merge(&mut p, &json!({"spec": spec}));
        let err = pod_info(&serde_json::from_value::<CachedPod>(p).unwrap()).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
}

//! Consolidation decisions against the scheduling engine and the real
//! us-east-1 catalog, without a cluster: when nodes are deleted, when one
//! cheaper node replaces several, and what holds a replacement back (the
//! minimum saving, spot capacity without `SpotToSpotConsolidation`).

mod common;

use common::{node, pod, pool, pool_with};
use karpenter_controller::controllers::disruption::command::{
    Action, Movable, Rules, evaluate, multi_node, single_node,
};
use karpenter_controller::controllers::disruption::world::World;
use karpenter_controller::scheduling::{ExistingNode, PodInfo};
use serde_json::json;

const GIB: i64 = 1 << 30;

const RULES: Rules = Rules {
    min_saving: 0.01,
    spot_to_spot: false,
    balanced: None,
};

/// A node `name` with `cpu_milli` and `memory` left and `pods` on it, and
/// the same node as consolidation sees it (costing `price` an hour).
fn candidate(
    name: &str,
    cpu_milli: i64,
    memory: i64,
    pods: Vec<PodInfo>,
    price: f64,
) -> (ExistingNode, Movable) {
    let existing = node(name, &[], cpu_milli, memory, pods.clone());
    let movable = Movable {
        claim: format!("claim-{name}"),
        node: name.into(),
        price,
        spot: false,
        disruption: 1.0 + pods.len() as f64,
        pods,
        pool: "default".into(),
    };
    (existing, movable)
}

/// A NodePool of on-demand capacity (spot prices are low enough that two
/// tiny nodes can cost less than one holding both pods).
fn on_demand() -> karpenter_controller::scheduling::Pool {
    pool_with(
        "default",
        json!({"template": {"spec": {"requirements": [
            {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]}]}}}),
    )
}

fn small(name: &str) -> PodInfo {
    pod(name, "500m", "1Gi", json!({}))
}

#[test]
fn nodes_whose_pods_fit_elsewhere_are_deleted_together() {
    let (n1, a) = candidate("a", 3500, 7 * GIB, vec![small("a1")], 0.192);
    let (n2, b) = candidate("b", 3500, 7 * GIB, vec![small("b1")], 0.192);
    let big = node("big", &[], 8000, 16 * GIB, vec![]);
    let world = World::new(vec![n1, n2, big], vec![pool("default")]);
    let command = multi_node(&world, &[&a, &b], &RULES).expect("both can go");
    assert_eq!(command.claims, ["claim-a", "claim-b"]);
    assert!(matches!(command.action, Action::Delete));
    assert!((command.saving - 0.384).abs() < 1e-9);
    assert_eq!((command.kind(), command.pods), ("multi", 2));
}

#[test]
fn several_full_price_nodes_are_replaced_by_one_cheaper_node() {
    let (n1, a) = candidate("a", 0, 0, vec![small("a1")], 0.192);
    let (n2, b) = candidate("b", 0, 0, vec![small("b1")], 0.192);
    let (n3, c) = candidate("c", 0, 0, vec![small("c1")], 0.192);
    let world = World::new(vec![n1, n2, n3], vec![on_demand()]);
    let command = multi_node(&world, &[&a, &b, &c], &RULES).expect("one node holds all three");
    assert_eq!(command.claims.len(), 3);
    let Action::Replace(new) = &command.action else {
        panic!("expected a replacement, got {:?}", command.action);
    };
    assert_eq!(new.pods.len(), 3);
    assert!(new.price < 0.576 - RULES.min_saving, "{}", new.price);
    assert!((command.saving - (0.576 - new.price)).abs() < 1e-9);
    assert!(!new.instance_types.is_empty());
}

#[test]
fn a_replacement_must_save_the_minimum() {
    // The cheapest type that holds 1.5 CPU and 3 GiB costs more than
    // $0.01/h, so no replacement saves $0.01/h on a node priced just above it.
    let pods = vec![small("a1"), small("a2"), small("a3")];
    let (n1, mut a) = candidate("a", 0, 0, pods, 0.0);
    let world = World::new(vec![n1], vec![pool("default")]);
    a.price = 10.0;
    let Ok(cheap) = evaluate(&world, &[&a], &RULES) else {
        panic!("a $10/h node is replaced");
    };
    let Action::Replace(new) = cheap.action else {
        panic!("a replacement")
    };
    a.price = new.price + RULES.min_saving / 2.0;
    let refused = evaluate(&world, &[&a], &RULES).unwrap_err();
    assert!(refused.0.contains("costs less than"), "{refused}");
    let relaxed = Rules {
        min_saving: RULES.min_saving / 4.0,
        ..RULES
    };
    assert!(evaluate(&world, &[&a], &relaxed).is_ok());
}

#[test]
fn spot_nodes_are_replaced_only_with_spot_to_spot_but_always_deleted() {
    let (n1, mut a) = candidate("a", 0, 0, vec![small("a1")], 0.5);
    a.spot = true;
    let world = World::new(vec![n1], vec![pool("default")]);
    let refused = evaluate(&world, &[&a], &RULES).unwrap_err();
    assert!(refused.0.contains("SpotToSpotConsolidation"), "{refused}");
    let gated = Rules {
        spot_to_spot: true,
        ..RULES
    };
    assert!(matches!(
        evaluate(&world, &[&a], &gated).unwrap().action,
        Action::Replace(_)
    ));
    let room = node("room", &[], 4000, 8 * GIB, vec![]);
    let (n1, a_again) = candidate("a", 0, 0, vec![small("a1")], 0.5);
    let world = World::new(vec![n1, room], vec![pool("default")]);
    let spot = Movable {
        spot: true,
        ..a_again
    };
    assert!(matches!(
        evaluate(&world, &[&spot], &RULES).unwrap().action,
        Action::Delete
    ));
}

#[test]
fn the_longest_prefix_that_can_go_is_chosen_and_single_node_finds_the_rest() {
    // a and b fit on `room`; c's pod needs a zone no pool offers, so every
    // prefix holding c fails; d fits on `room` alone too.
    let pinned = pod(
        "c1",
        "500m",
        "1Gi",
        json!({"spec": {"nodeSelector": {"topology.kubernetes.io/zone": "mars-1a"}}}),
    );
    let (n1, a) = candidate("a", 0, 0, vec![small("a1")], 0.2);
    let (n2, b) = candidate("b", 0, 0, vec![small("b1")], 0.2);
    let (n3, c) = candidate("c", 0, 0, vec![pinned], 0.2);
    let (n4, d) = candidate("d", 0, 0, vec![small("d1")], 0.2);
    let room = node("room", &[], 1000, 2 * GIB, vec![]);
    let world = World::new(vec![n1, n2, n3, n4, room], vec![pool("default")]);
    let command = multi_node(&world, &[&a, &b, &c, &d], &RULES).unwrap();
    assert_eq!(command.claims, ["claim-a", "claim-b"]);
    assert!(matches!(command.action, Action::Delete));
    let single = single_node(&world, [&c, &d], &RULES).unwrap();
    assert_eq!(single.claims, ["claim-d"]);
    assert_eq!(single.kind(), "single");
}

#[test]
fn a_full_node_is_replaced_by_one_cheaper_node_not_several_small_ones() {
    // Small burstable types are cheaper per CPU, so the engine alone would
    // spread these pods over several tiny nodes; consolidation launches one.
    let pods: Vec<PodInfo> = (0..16)
        .map(|i| pod(&format!("x{i}"), "500m", "1Gi", json!({})))
        .collect();
    let (n1, a) = candidate("a", 0, 0, pods, 0.384);
    let other = node("b", &[], 1000, 2 * GIB, vec![]);
    let world = World::new(vec![n1, other], vec![on_demand()]);
    let command = evaluate(&world, &[&a], &RULES).unwrap();
    let Action::Replace(new) = &command.action else {
        panic!("expected a replacement, got {:?}", command.action);
    };
    assert_eq!(new.pods.len() + command.moves.len(), 16);
    assert!(command.moves.iter().all(|(_, to)| to == "b"));
    assert!(new.price < 0.384 - RULES.min_saving, "{}", new.price);
}

#[test]
fn a_set_with_an_on_demand_node_may_be_replaced_without_spot_to_spot() {
    let (n1, mut a) = candidate("a", 0, 0, vec![small("a1")], 0.3);
    let (n2, b) = candidate("b", 0, 0, vec![small("b1")], 0.3);
    a.spot = true;
    let world = World::new(vec![n1, n2], vec![pool("default")]);
    assert!(matches!(
        evaluate(&world, &[&a, &b], &RULES).unwrap().action,
        Action::Replace(_)
    ));
    assert!(evaluate(&world, &[&a], &RULES).is_err());
}

/// Under `Balanced`, a replacement must save at least half as large a share
/// of the pool's cost as the share of its disruption it causes; the same
/// move passes under the default policy.
#[test]
fn balanced_replaces_a_node_only_when_the_saving_is_worth_the_disruption() {
    use karpenter_controller::controllers::disruption::balanced::{Balanced, PoolTotals};
    use std::collections::BTreeMap;
    use std::sync::Arc;
    let pods = vec![small("a1"), small("a2"), small("a3")];
    let (n1, mut a) = candidate("a", 0, 0, pods, 0.0);
    let world = World::new(vec![n1], vec![pool("default")]);
    a.price = 10.0;
    let Action::Replace(cheapest) = evaluate(&world, &[&a], &RULES).unwrap().action else {
        panic!("a $10/h node is replaced");
    };
    // The pool: this node's disruption (1 + 3 pods) is 10% of the pool's.
    let balanced = |pool_cost: f64| Rules {
        balanced: Some(Arc::new(Balanced::new(BTreeMap::from([(
            "default".to_string(),
            PoolTotals {
                cost: pool_cost,
                disruption: 40.0,
            },
        )])))),
        ..RULES
    };
    // The node costs `price`; replacing it saves price - cheapest.price.
    a.price = cheapest.price + 0.2;
    // In a $2/h pool that saving is 10% of the cost for 10% of the
    // disruption (score 1): approved.
    assert!(evaluate(&world, &[&a], &balanced(2.0)).is_ok());
    // In a $10/h pool it is 2% for 10% (score 0.2): refused, with the numbers.
    let refused = evaluate(&world, &[&a], &balanced(10.0)).unwrap_err();
    assert!(
        refused.0.contains("NodePool default is Balanced"),
        "{refused}"
    );
    assert!(refused.0.contains("scores 0.20, under 0.50"), "{refused}");
    // The default policy takes the same move.
    assert!(evaluate(&world, &[&a], &RULES).is_ok());
}

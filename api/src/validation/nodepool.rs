//! NodePool validation.

use super::template::{self, Owner};
use super::{Errors, FieldPath, ValidationErrors};
use crate::v1::{Budget, CONSOLIDATION_POLICIES, DISRUPTION_REASONS, Disruption, NodePool};

/// Validates a NodePool, reporting every problem at once.
pub fn nodepool(pool: &NodePool) -> Result<(), ValidationErrors> {
    let mut errors = Errors::default();
    let name = pool.metadata.name.as_deref();
    super::check_name(&mut errors, name);
    let spec = FieldPath::new("spec");
    let tmpl = spec.child("template");
    let labels = pool
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref());
    template::template_labels(&mut errors, &tmpl.child("metadata").child("labels"), labels);
    template::template_spec(
        &mut errors,
        &tmpl.child("spec"),
        &pool.spec.template.spec,
        Owner::NodePool,
    );
    if let Some(disruption) = &pool.spec.disruption {
        check_disruption(&mut errors, &spec.child("disruption"), disruption);
    }
    for (resource, q) in pool.spec.limits.iter().flatten() {
        super::check_quantity(&mut errors, &spec.child("limits").key(resource), &q.0);
    }
    if let Some(weight) = pool.spec.weight {
        errors.check(
            (1..=100).contains(&weight),
            &spec.child("weight"),
            format!("must be between 1 and 100 (got {weight})"),
        );
    }
    if let Some(replicas) = pool.spec.replicas {
        errors.check(
            replicas >= 0,
            &spec.child("replicas"),
            format!("must not be negative (got {replicas})"),
        );
        let limits = pool.spec.limits.as_ref();
        errors.check(
            limits.is_none_or(|l| l.keys().all(|k| k == "nodes")),
            &spec,
            "only 'limits.nodes' is supported on static NodePools",
        );
        errors.check(
            pool.spec.weight.is_none(),
            &spec,
            "'weight' is not supported on static NodePools",
        );
    }
    errors.finish("NodePool", name)
}

/// Validates a change from `old` to `new` (upstream's transition rules: the
/// node class's group and kind, static or dynamic provisioning), then `new`.
pub fn nodepool_update(old: &NodePool, new: &NodePool) -> Result<(), ValidationErrors> {
    let mut errors = Errors::default();
    let spec = FieldPath::new("spec");
    let (was, is) = (
        &old.spec.template.spec.node_class_ref,
        &new.spec.template.spec.node_class_ref,
    );
    let reference = spec.child("template").child("spec").child("nodeClassRef");
    errors.check(
        was.group == is.group,
        &reference,
        "nodeClassRef.group is immutable",
    );
    errors.check(
        was.kind == is.kind,
        &reference,
        "nodeClassRef.kind is immutable",
    );
    errors.check(
        old.spec.replicas.is_some() == new.spec.replicas.is_some(),
        &spec,
        "Cannot transition NodePool between static (replicas set) and dynamic (replicas unset) provisioning modes",
    );
    super::with_object_rules(
        errors,
        "NodePool",
        new.metadata.name.as_deref(),
        nodepool(new),
    )
}

fn check_disruption(errors: &mut Errors, path: &FieldPath, d: &Disruption) {
    match &d.consolidate_after {
        Some(text) => {
            errors.result(
                &path.child("consolidateAfter"),
                crate::duration::parse_nillable(text),
            );
        }
        // Upstream's schema: required inside `disruption` (an absent
        // `disruption` is defaulted with it).
        None => errors.add(&path.child("consolidateAfter"), "Required value"),
    }
    if let Some(policy) = &d.consolidation_policy {
        errors.check(
            CONSOLIDATION_POLICIES.contains(&policy.as_str()),
            &path.child("consolidationPolicy"),
            format!(
                "must be one of {} (got {policy:?})",
                CONSOLIDATION_POLICIES.join(", ")
            ),
        );
    }
    let budgets = d.budgets.as_deref().unwrap_or_default();
    let budgets_path = path.child("budgets");
    errors.check(
        budgets.len() <= 50,
        &budgets_path,
        format!("must have at most 50 items (got {})", budgets.len()),
    );
    for (i, budget) in budgets.iter().enumerate() {
        check_budget(errors, &budgets_path.index(i), budget);
    }
}

fn check_budget(errors: &mut Errors, path: &FieldPath, b: &Budget) {
    if let Some(nodes) = &b.nodes {
        errors.check(
            is_budget_nodes(nodes),
            &path.child("nodes"),
            format!("must be a node count such as '5' or a percentage from '0%' to '100%' (got {nodes:?})"),
        );
    }
    if b.schedule.is_some() != b.duration.is_some() {
        errors.add(path, "'schedule' must be set with 'duration'");
    }
    if let Some(schedule) = &b.schedule {
        errors.result(&path.child("schedule"), crate::schedule::parse(schedule));
    }
    if let Some(duration) = &b.duration {
        errors.result(
            &path.child("duration"),
            crate::duration::parse_budget(duration),
        );
    }
    for (i, reason) in b.reasons.iter().flatten().enumerate() {
        errors.check(
            DISRUPTION_REASONS.contains(&reason.as_str()),
            &path.child("reasons").index(i),
            format!("must be one of Underutilized, Empty, Drifted (got {reason:?})"),
        );
    }
}

/// `^((100|[0-9]{1,2})%|[0-9]+)$`.
fn is_budget_nodes(text: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match text.strip_suffix('%') {
        Some(percent) => digits(percent) && (percent.len() <= 2 || percent == "100"),
        None => digits(text),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn budget_nodes_pattern() {
        for ok in ["0", "10", "100%", "0%", "5%", "99%", "1000"] {
            assert!(super::is_budget_nodes(ok), "{ok}");
        }
        for bad in ["", "%", "101%", "-1", "1.5", "10 %", "abc", "100%%"] {
            assert!(!super::is_budget_nodes(bad), "{bad}");
        }
    }
}

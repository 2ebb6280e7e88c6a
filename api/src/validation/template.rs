//! Checks shared by NodePool templates and NodeClaims: requirements, taints,
//! labels, the node class reference and durations.

use super::{Errors, FieldPath};
use crate::labels;
use crate::v1::{
    NodeClaimTemplateSpec, NodeClassReference, NodeSelectorRequirementWithMinValues, OPERATORS,
    StringMap, Taint,
};

/// Which object a template spec belongs to: a NodeClaim's requirements may
/// name `karpenter.sh/nodepool` (its NodePool puts it there), a NodePool's not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// A NodePool's `spec.template.spec`.
    NodePool,
    /// A NodeClaim's `spec`.
    NodeClaim,
}

/// Checks the spec a NodePool template and a NodeClaim share, found at `path`.
pub(crate) fn template_spec(
    errors: &mut Errors,
    path: &FieldPath,
    spec: &NodeClaimTemplateSpec,
    owner: Owner,
) {
    requirements(
        errors,
        &path.child("requirements"),
        &spec.requirements,
        owner,
    );
    taints(errors, &path.child("taints"), spec.taints.as_deref());
    taints(
        errors,
        &path.child("startupTaints"),
        spec.startup_taints.as_deref(),
    );
    node_class_ref(errors, &path.child("nodeClassRef"), &spec.node_class_ref);
    lifetimes(
        errors,
        path,
        spec.expire_after.as_deref(),
        spec.termination_grace_period.as_deref(),
    );
}

/// Checks `requirements` (keys, operators, value counts, integer bounds, minValues).
fn requirements(
    errors: &mut Errors,
    path: &FieldPath,
    reqs: &[NodeSelectorRequirementWithMinValues],
    owner: Owner,
) {
    errors.check(
        reqs.len() <= 100,
        path,
        format!("must have at most 100 items (got {})", reqs.len()),
    );
    for (i, req) in reqs.iter().enumerate() {
        let path = path.index(i);
        requirement(errors, &path, req, owner);
    }
}

fn requirement(
    errors: &mut Errors,
    path: &FieldPath,
    req: &NodeSelectorRequirementWithMinValues,
    owner: Owner,
) {
    let key_path = path.child("key");
    let key = labels::normalize(&req.key);
    match labels::check_key(&req.key) {
        Err(rule) => errors.add(&key_path, rule),
        Ok(()) if owner == Owner::NodeClaim && key == labels::NODEPOOL => {}
        Ok(()) => {
            if let Some(rule) = labels::restriction(key) {
                errors.add(&key_path, rule);
            }
        }
    }
    let values = req.values();
    let values_path = path.child("values");
    let op = req.operator.as_str();
    if !OPERATORS.contains(&op) {
        errors.add(
            &path.child("operator"),
            format!("must be one of {} (got {op:?})", OPERATORS.join(", ")),
        );
    }
    match op {
        "In" => errors.check(!values.is_empty(), &values_path, "requirements with operator 'In' must have a value defined"),
        "Exists" | "DoesNotExist" => errors.check(
            values.is_empty(),
            &values_path,
            format!("requirements with operator '{op}' must not have values"),
        ),
        "Gt" | "Lt" | "Gte" | "Lte" => errors.check(
            values.len() == 1 && values[0].parse::<u64>().is_ok() && !values[0].starts_with('+'),
            &values_path,
            "requirements operator 'Gt', 'Lt', 'Gte', or 'Lte' must have a single positive integer value",
        ),
        _ => {}
    }
    if matches!(op, "In" | "NotIn") {
        for (j, value) in values.iter().enumerate() {
            if let Err(rule) = labels::check_value(value) {
                errors.add(&values_path.index(j), rule);
            }
        }
    }
    if let Some(min) = req.min_values {
        let min_path = path.child("minValues");
        errors.check(
            (1..=50).contains(&min),
            &min_path,
            format!("must be between 1 and 50 (got {min})"),
        );
        if op == "In" {
            errors.check(
                values.len() >= min.max(0) as usize,
                &min_path,
                format!(
                    "requirements with 'minValues' must have at least that many values specified in the 'values' field ({min} > {})",
                    values.len()
                ),
            );
        }
    }
}

/// Checks a list of taints (key syntax, value syntax, effect).
fn taints(errors: &mut Errors, path: &FieldPath, taints: Option<&[Taint]>) {
    for (i, taint) in taints.unwrap_or_default().iter().enumerate() {
        let path = path.index(i);
        if let Err(rule) = labels::check_key(&taint.key) {
            errors.add(&path.child("key"), rule);
        }
        if let Some(value) = &taint.value
            && let Err(rule) = labels::check_value(value)
        {
            errors.add(&path.child("value"), rule);
        }
        const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
        errors.check(
            EFFECTS.contains(&taint.effect.as_str()),
            &path.child("effect"),
            format!(
                "must be one of NoSchedule, PreferNoSchedule, NoExecute (got {:?})",
                taint.effect
            ),
        );
    }
}

/// Checks template labels: syntax, restricted domains, at most 100.
pub(crate) fn template_labels(
    errors: &mut Errors,
    path: &FieldPath,
    labels_map: Option<&StringMap>,
) {
    let Some(map) = labels_map else { return };
    errors.check(
        map.len() <= 100,
        path,
        format!("must have at most 100 labels (got {})", map.len()),
    );
    for (key, value) in map {
        let path = path.key(key);
        match labels::check_key(key) {
            Err(rule) => errors.add(&path, rule),
            Ok(()) => {
                if let Some(rule) = labels::restriction(key) {
                    errors.add(&path, rule);
                }
            }
        }
        if let Err(rule) = labels::check_value(value) {
            errors.add(&path, rule);
        }
    }
}

/// Checks a node class reference: non-empty, and an EC2NodeClass of `karpenter.k8s.aws`.
fn node_class_ref(errors: &mut Errors, path: &FieldPath, r: &NodeClassReference) {
    for (field, value) in [("group", &r.group), ("kind", &r.kind), ("name", &r.name)] {
        errors.check(
            !value.is_empty(),
            &path.child(field),
            format!("{field} may not be empty"),
        );
    }
    if !r.group.is_empty() {
        errors.check(
            r.group == labels::AWS_GROUP,
            &path.child("group"),
            format!(
                "must be 'karpenter.k8s.aws', the group of EC2NodeClass (got {:?})",
                r.group
            ),
        );
    }
    if !r.kind.is_empty() {
        errors.check(
            r.kind == "EC2NodeClass",
            &path.child("kind"),
            format!("must be 'EC2NodeClass' (got {:?})", r.kind),
        );
    }
}

/// Checks `expireAfter` (or `Never`) and `terminationGracePeriod`.
fn lifetimes(
    errors: &mut Errors,
    path: &FieldPath,
    expire_after: Option<&str>,
    grace: Option<&str>,
) {
    if let Some(text) = expire_after {
        errors.result(
            &path.child("expireAfter"),
            crate::duration::parse_nillable(text),
        );
    }
    if let Some(text) = grace {
        errors.result(
            &path.child("terminationGracePeriod"),
            crate::duration::parse(text),
        );
    }
}

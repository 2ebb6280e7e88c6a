//! NodeClaim validation.

use super::{Errors, FieldPath, ValidationErrors, template};
use crate::v1::NodeClaim;

/// Validates a NodeClaim, reporting every problem at once.
pub fn nodeclaim(claim: &NodeClaim) -> Result<(), ValidationErrors> {
    let mut errors = Errors::default();
    let name = claim.metadata.name.as_deref();
    super::check_name(&mut errors, name);
    let spec = FieldPath::new("spec");
    let s = &claim.spec;
    template::requirements(&mut errors, &spec.child("requirements"), &s.requirements);
    template::taints(&mut errors, &spec.child("taints"), s.taints.as_deref());
    template::taints(
        &mut errors,
        &spec.child("startupTaints"),
        s.startup_taints.as_deref(),
    );
    template::node_class_ref(&mut errors, &spec.child("nodeClassRef"), &s.node_class_ref);
    template::lifetimes(
        &mut errors,
        &spec,
        s.expire_after.as_deref(),
        s.termination_grace_period.as_deref(),
    );
    let requests = spec.child("resources").child("requests");
    for (resource, q) in s
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .into_iter()
        .flatten()
    {
        super::check_quantity(&mut errors, &requests.key(resource), &q.0);
    }
    errors.finish("NodeClaim", name)
}

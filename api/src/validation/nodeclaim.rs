//! NodeClaim validation.

use super::template::{self, Owner};
use super::{Errors, FieldPath, ValidationErrors};
use crate::v1::NodeClaim;

/// Validates a NodeClaim, reporting every problem at once.
pub fn nodeclaim(claim: &NodeClaim) -> Result<(), ValidationErrors> {
    let mut errors = Errors::default();
    let name = claim.metadata.name.as_deref();
    super::check_name(&mut errors, name);
    let spec = FieldPath::new("spec");
    template::template_spec(&mut errors, &spec, &claim.spec.template, Owner::NodeClaim);
    let requests = spec.child("resources").child("requests");
    let resources = claim.spec.resources.as_ref();
    for (resource, q) in resources
        .and_then(|r| r.requests.as_ref())
        .into_iter()
        .flatten()
    {
        super::check_quantity(&mut errors, &requests.key(resource), &q.0);
    }
    errors.finish("NodeClaim", name)
}

/// Validates a change from `old` to `new`: a NodeClaim's spec never changes
/// (upstream's transition rule), then `new` itself.
pub fn nodeclaim_update(old: &NodeClaim, new: &NodeClaim) -> Result<(), ValidationErrors> {
    let mut errors = Errors::default();
    errors.check(
        old.spec == new.spec,
        &FieldPath::new("spec"),
        "spec is immutable",
    );
    super::with_object_rules(
        errors,
        "NodeClaim",
        new.metadata.name.as_deref(),
        nodeclaim(new),
    )
}

//! NodeClaim validation.

use super::{Errors, FieldPath, ValidationErrors, template};
use crate::v1::NodeClaim;

/// Validates a NodeClaim, reporting every problem at once.
pub fn nodeclaim(claim: &NodeClaim) -> Result<(), ValidationErrors> {
    let mut errors = Errors::default();
    let name = claim.metadata.name.as_deref();
    super::check_name(&mut errors, name);
    let spec = FieldPath::new("spec");
    template::template_spec(&mut errors, &spec, &claim.spec.template);
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

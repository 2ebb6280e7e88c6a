//! Validation with the effect of upstream's OpenAPI and CEL rules.
//!
//! Every check runs; [`ValidationErrors`] holds all the problems of an object,
//! each with the field path (`spec.template.spec.requirements[2].values`) and
//! the rule it breaks, in upstream's wording where upstream has one.
//!
//! ```
//! use karpenter_api::{validation, v1::NodePool};
//! let pool: NodePool = serde_norway::from_str(r#"
//! apiVersion: karpenter.sh/v1
//! kind: NodePool
//! metadata: {name: bad}
//! spec:
//!   weight: 0
//!   template:
//!     spec:
//!       nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
//!       requirements: [{key: example.com/team, operator: In}]
//! "#).unwrap();
//! let errors = validation::nodepool(&pool).unwrap_err();
//! assert_eq!(errors.len(), 2);
//! assert!(errors.to_string().contains("spec.weight: must be between 1 and 100"));
//! ```

mod ec2nodeclass;
mod network;
mod nodeclaim;
mod nodepool;
mod template;

pub use ec2nodeclass::{ec2nodeclass, ec2nodeclass_update};
pub use nodeclaim::{nodeclaim, nodeclaim_update};
pub use nodepool::{nodepool, nodepool_update};

use std::fmt;

/// Where this validation refuses more than upstream's CEL rules: upstream
/// writes these exclusivity rules as `!self.all(x, has(x.id) && ...)`, which
/// fails only when *every* term combines the fields; here any term that does
/// is refused (what the rules mean to say). Only the provider and the
/// controller are stricter; an API server with the generated CRDs is upstream's.
pub const STRICTER_THAN_CEL: &[&str] = &[
    "'id' is mutually exclusive, cannot be set with a combination of other fields in a subnet selector term",
    "'id' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
    "'name' is mutually exclusive, cannot be set with a combination of other fields in a security group selector term",
    "'id' is mutually exclusive, cannot be set along with other fields in a capacity reservation selector term",
];

/// A field path such as `spec.template.spec.requirements[2].values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath(String);

impl FieldPath {
    /// A root path (`spec`, `metadata`).
    pub fn new(root: &str) -> Self {
        FieldPath(root.to_string())
    }

    /// A child field: `spec` -> `spec.template`.
    pub fn child(&self, name: &str) -> Self {
        FieldPath(format!("{}.{}", self.0, name))
    }

    /// A list element: `requirements` -> `requirements[2]`.
    pub fn index(&self, i: usize) -> Self {
        FieldPath(format!("{}[{}]", self.0, i))
    }

    /// A map entry: `labels` -> `labels[team]`.
    pub fn key(&self, key: &str) -> Self {
        FieldPath(format!("{}[{}]", self.0, key))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One broken rule at one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where: `spec.weight`.
    pub path: String,
    /// What rule is broken, in plain words.
    pub rule: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.rule)
    }
}

/// All the problems of one object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors {
    /// The object kind and name, for messages (`NodePool "default"`).
    pub object: String,
    /// Each problem, in the order the fields appear.
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    /// Number of problems.
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// True when there are no problems (never for a returned error).
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// True when some problem is at `path` and its rule contains `text`.
    pub fn contains(&self, path: &str, text: &str) -> bool {
        self.errors
            .iter()
            .any(|e| e.path == path && e.rule.contains(text))
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.errors.len();
        write!(
            f,
            "{} is invalid ({count} problem{}):",
            self.object,
            if count == 1 { "" } else { "s" }
        )?;
        for error in &self.errors {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

/// Collects problems while the checks walk an object.
#[derive(Debug, Default)]
pub(crate) struct Errors(Vec<FieldError>);

impl Errors {
    /// Records that `path` breaks `rule`.
    pub(crate) fn add(&mut self, path: &FieldPath, rule: impl Into<String>) {
        self.0.push(FieldError {
            path: path.to_string(),
            rule: rule.into(),
        });
    }

    /// Records `rule` at `path` unless `ok`.
    pub(crate) fn check(&mut self, ok: bool, path: &FieldPath, rule: impl Into<String>) {
        if !ok {
            self.add(path, rule);
        }
    }

    /// Records the error of a check (its message is the broken rule).
    pub(crate) fn result<T, E: Into<String>>(
        &mut self,
        path: &FieldPath,
        result: Result<T, E>,
    ) -> Option<T> {
        result.map_err(|rule| self.add(path, rule.into())).ok()
    }

    /// Ok when nothing was recorded, otherwise every problem.
    pub(crate) fn finish(self, kind: &str, name: Option<&str>) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            return Ok(());
        }
        Err(ValidationErrors {
            object: format!("{kind} {:?}", name.unwrap_or("")),
            errors: self.0,
        })
    }
}

/// The transition problems in `errors` followed by the object's own, if any.
pub(crate) fn with_object_rules(
    errors: Errors,
    kind: &str,
    name: Option<&str>,
    object: Result<(), ValidationErrors>,
) -> Result<(), ValidationErrors> {
    let mut all = match errors.finish(kind, name) {
        Ok(()) => return object,
        Err(e) => e,
    };
    if let Err(more) = object {
        all.errors.extend(more.errors);
    }
    Err(all)
}

/// Checks an object name used as a label value (NodePool, NodeClaim, EC2NodeClass names).
pub(crate) fn check_name(errors: &mut Errors, name: Option<&str>) {
    let path = FieldPath::new("metadata").child("name");
    match name {
        None | Some("") => errors.add(&path, "name is required"),
        Some(name) => {
            let valid = crate::labels::check_dns_subdomain(name).is_ok() && name.len() <= 63;
            errors.check(
                valid,
                &path,
                format!("must be a lowercase RFC 1123 name of at most 63 characters, since nodes are labelled with it (got {name:?})"),
            );
        }
    }
}

/// Checks that a quantity string parses and is not negative.
pub(crate) fn check_quantity(errors: &mut Errors, path: &FieldPath, text: &str) {
    match text.parse::<crate::quantity::Quantity>() {
        Ok(q) if q.nanos() < 0 => errors.add(path, format!("must not be negative (got {text:?})")),
        Ok(_) => {}
        Err(e) => errors.add(path, e.to_string()),
    }
}

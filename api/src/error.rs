//! The API crate's errors: what it says when a value breaks a rule.

/// A value that breaks a rule of the Karpenter or Kubernetes API (a label
/// key, a duration, a requirement's operator, a cron schedule). The message
/// states the rule and the value; callers prefix the field's path. Never
/// worth retrying: the input has to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(rule: String) -> Self {
        Invalid(rule)
    }
}

impl From<&str> for Invalid {
    fn from(rule: &str) -> Self {
        Invalid(rule.to_string())
    }
}

/// Validation messages are collected as text with their field paths.
impl From<Invalid> for String {
    fn from(invalid: Invalid) -> Self {
        invalid.0
    }
}

/// Why two sets of requirements cannot hold together: the first key whose
/// values do not meet, or a label with no known values. Not a failure of
/// the caller: an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Incompatible(pub String);

impl From<Incompatible> for String {
    fn from(reason: Incompatible) -> Self {
        reason.0
    }
}

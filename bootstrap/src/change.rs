//! What reconciling a resource found or did.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Whether reconciling only looks or also changes things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Read, and say what would change.
    Plan,
    /// Make it so.
    Apply,
}

/// What a resource needs (or got).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// It does not exist: created.
    Create,
    /// It exists but differs: these fields are updated.
    Update(Vec<String>),
    /// It is as it should be.
    Unchanged,
    /// It exists but the bootstrap did not create it: used as it is, never
    /// changed or deleted.
    Foreign,
    /// It is (to be) deleted.
    Delete,
}

/// One resource's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The resource, as `kind name` (`sqs-queue Karpenter-demo`).
    pub resource: String,
    /// What it needs or got.
    pub action: Action,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Create => write!(f, "+ {}", self.resource),
            Action::Update(fields) => write!(f, "~ {} ({})", self.resource, fields.join(", ")),
            Action::Unchanged => write!(f, "  {}", self.resource),
            Action::Foreign => write!(f, "  {} (not created here; left as it is)", self.resource),
            Action::Delete => write!(f, "- {}", self.resource),
        }
    }
}

/// AWS calls made, mutating ones apart (a second `apply` makes none).
#[derive(Debug, Default)]
pub struct Calls {
    reads: AtomicUsize,
    writes: AtomicUsize,
}

impl Calls {
    /// Counts a call that only reads.
    pub fn read(&self) {
        self.reads.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a call that changes something.
    pub fn write(&self) {
        self.writes.fetch_add(1, Ordering::Relaxed);
    }

    /// Calls that only read.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }

    /// Calls that changed something.
    pub fn writes(&self) -> usize {
        self.writes.load(Ordering::Relaxed)
    }
}

impl Change {
    /// The change as JSON, for `--output json`.
    pub fn to_json(&self) -> serde_json::Value {
        let (action, fields) = match &self.action {
            Action::Create => ("create", Vec::new()),
            Action::Update(fields) => ("update", fields.clone()),
            Action::Unchanged => ("unchanged", Vec::new()),
            Action::Foreign => ("foreign", Vec::new()),
            Action::Delete => ("delete", Vec::new()),
        };
        serde_json::json!({"resource": self.resource, "action": action, "fields": fields})
    }
}

//! Reading an old object field by field: every field is either taken by a
//! mapping or, at the end, reported as having no v1 equivalent, so nothing
//! in the input is dropped without a word.

use super::{Finding, Severity};
use serde_json::{Map, Value};

/// What the conversion of one object has to say, in order.
#[derive(Debug, Default)]
pub(super) struct Report {
    /// `Provisioner default (old.yaml)`.
    pub object: String,
    /// What was found, in the order it was found.
    pub findings: Vec<Finding>,
}

impl Report {
    /// A report about `object`.
    pub fn new(object: String) -> Self {
        Report {
            object,
            findings: Vec::new(),
        }
    }

    /// Something the user must decide or do before applying the output.
    pub fn action(&mut self, path: &str, message: impl Into<String>) {
        self.push(Severity::Action, path, message.into());
    }

    /// How a field was mapped where the mapping is worth knowing (a
    /// behaviour kept on purpose, a default that changed in v1).
    pub fn note(&mut self, path: &str, message: impl Into<String>) {
        self.push(Severity::Note, path, message.into());
    }

    fn push(&mut self, severity: Severity, path: &str, message: String) {
        self.findings.push(Finding {
            object: self.object.clone(),
            path: path.to_string(),
            message,
            severity,
        });
    }
}

/// An old object's mapping, consumed as it is converted.
pub(super) struct Fields {
    path: String,
    map: Map<String, Value>,
}

impl Fields {
    /// The fields of `value` at `path`; a value that is not a mapping is
    /// reported and read as empty.
    pub fn of(path: &str, value: Value, report: &mut Report) -> Self {
        let map = match value {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => {
                report.action(
                    path,
                    format!("expected a mapping, found {other}; not converted"),
                );
                Map::new()
            }
        };
        Fields {
            path: path.to_string(),
            map,
        }
    }

    /// The path of `key` in the input (`spec.provider.tags`).
    pub fn path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// Takes `key` (`null` counts as absent).
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key).filter(|v| !v.is_null())
    }

    /// Takes `key`, which must be a string.
    pub fn take_str(&mut self, key: &str, report: &mut Report) -> Option<String> {
        match self.take(key)? {
            Value::String(s) => Some(s),
            other => {
                report.action(
                    &self.path(key),
                    format!("expected a string, found {other}; not converted"),
                );
                None
            }
        }
    }

    /// Takes `key`, a mapping, as fields of its own.
    pub fn take_fields(&mut self, key: &str, report: &mut Report) -> Option<Fields> {
        let value = self.take(key)?;
        Some(Fields::of(&self.path(key), value, report))
    }

    /// Takes `key`, a mapping of strings (`subnetSelector`); numbers and
    /// booleans are written as strings, anything else is reported.
    pub fn take_string_map(
        &mut self,
        key: &str,
        report: &mut Report,
    ) -> Option<Map<String, Value>> {
        let path = self.path(key);
        let Value::Object(map) = self.take(key)? else {
            report.action(&path, "expected a mapping of strings; not converted");
            return None;
        };
        Some(
            map.into_iter()
                .filter_map(|(k, v)| match v {
                    Value::String(_) => Some((k, v)),
                    Value::Number(_) | Value::Bool(_) => Some((k, Value::String(v.to_string()))),
                    _ => {
                        report.action(&format!("{path}.{k}"), "expected a string; not converted");
                        None
                    }
                })
                .collect(),
        )
    }

    /// Takes `key` and sets it under `to` in `out` unchanged.
    pub fn move_to(&mut self, key: &str, out: &mut Map<String, Value>, to: &str) {
        if let Some(v) = self.take(key) {
            out.insert(to.to_string(), v);
        }
    }

    /// Takes each of `keys` and sets it under the same name in `out`.
    pub fn move_same(&mut self, keys: &[&str], out: &mut Map<String, Value>) {
        for key in keys {
            self.move_to(key, out, key);
        }
    }

    /// Drops `keys` without a word (what the API server or upstream's
    /// controller wrote, which v1 writes again).
    pub fn drop(&mut self, keys: &[&str]) {
        for key in keys {
            self.map.remove(*key);
        }
    }

    /// Reports every field nothing took: it has no v1 equivalent.
    pub fn finish(self, report: &mut Report) {
        for (key, _) in self.map {
            let path = if self.path.is_empty() {
                key
            } else {
                format!("{}.{key}", self.path)
            };
            report.action(&path, "has no v1 equivalent and was left out; remove it, or say what it was for in the EC2NodeClass or NodePool by hand");
        }
    }
}

//! A CRD's CEL validation rules (`x-kubernetes-validations`), evaluated as the
//! API server evaluates them: on create against the new object, on update
//! with `oldSelf` bound to the stored object (transition rules). `kube-cel`
//! does the evaluation; rules are compiled once per served CRD version.
//!
//! What this does not do that a real API server does: estimate rule cost
//! (the server refuses a CRD whose rules could cost too much), and evaluate
//! the few CEL functions `kube-cel` lacks (a rule using one is refused with
//! the CRD, so it is never silently skipped).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use kube_cel::{CompiledSchema, ErrorKind, Validator};
use serde_json::Value;
use std::fmt;

/// The compiled rules of one schema.
pub struct CelRules(CompiledSchema);

impl fmt::Debug for CelRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CelRules")
    }
}

impl PartialEq for CelRules {
    /// Rules are compared by identity: two compilations are never "the same".
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl CelRules {
    /// Compiles every rule of `schema`; `Ok(None)` when it has none, the
    /// compile errors (path and message) when a rule does not compile.
    pub fn compile(schema: &JSONSchemaProps) -> Result<Option<Self>, Vec<String>> {
        let json = serde_json::to_value(schema).map_err(|e| vec![e.to_string()])?;
        if !has_rules(&json) {
            return Ok(None);
        }
        let compiled = kube_cel::compile_schema(&json);
        let mut problems = Vec::new();
        collect_errors(&compiled, "openAPIV3Schema", &mut problems);
        if problems.is_empty() {
            Ok(Some(CelRules(compiled)))
        } else {
            Err(problems)
        }
    }

    /// The rules `obj` breaks, as (field path, message); `old` is the stored
    /// object on an update.
    pub fn check(&self, obj: &Value, old: Option<&Value>) -> Vec<(String, String)> {
        match Validator::new().validate_compiled(&self.0, obj, old) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .into_vec()
                .into_iter()
                .map(|e| {
                    let message = match e.kind {
                        // As the API server words a rule that failed to evaluate.
                        ErrorKind::EvaluationError => format!("Invalid value: {}", e.message),
                        _ => e.message,
                    };
                    (e.field_path, message)
                })
                .collect(),
        }
    }
}

fn has_rules(v: &Value) -> bool {
    match v {
        Value::Object(map) => {
            map.contains_key("x-kubernetes-validations") || map.values().any(has_rules)
        }
        Value::Array(items) => items.iter().any(has_rules),
        _ => false,
    }
}

fn collect_errors(s: &CompiledSchema, path: &str, out: &mut Vec<String>) {
    for error in s.compilation_errors() {
        out.push(format!("{path}: {error}"));
    }
    for (name, child) in &s.properties {
        collect_errors(child, &format!("{path}.{name}"), out);
    }
    if let Some(items) = &s.items {
        collect_errors(items, &format!("{path}[]"), out);
    }
    if let Some(values) = &s.additional_properties {
        collect_errors(values, &format!("{path}{{}}"), out);
    }
}

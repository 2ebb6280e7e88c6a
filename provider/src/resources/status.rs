//! Computed attributes read from an object's `status`.

use crate::cty::{Type, Value};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// One computed attribute and how to read it from `status`.
pub struct StatusAttr {
    /// Its name (`status_conditions`).
    pub name: &'static str,
    /// Its type.
    pub ty: Type,
    /// What it is.
    pub description: &'static str,
    /// Reads it from the object's `status` (null when absent).
    pub read: fn(&Json) -> Value,
}

/// Each condition's type and status (`Ready = "True"`).
pub fn conditions() -> StatusAttr {
    StatusAttr {
        name: "status_conditions",
        ty: Type::Map(Box::new(Type::String)),
        description: "Each status condition's type and status (`Ready = \"True\"`).",
        read: |status| {
            let items = status["conditions"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            Value::Map(
                items
                    .iter()
                    .filter_map(|c| {
                        Some((
                            c["type"].as_str()?.to_string(),
                            Value::String(c["status"].as_str()?.to_string()),
                        ))
                    })
                    .collect(),
            )
        },
    }
}

/// A map of strings at `status[key]` (quantities written as strings).
pub fn string_map(status: &Json, key: &str) -> Value {
    let map: BTreeMap<String, Value> = status[key]
        .as_object()
        .map(|r| {
            r.iter()
                .map(|(k, v)| {
                    let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    (k.clone(), Value::String(text))
                })
                .collect()
        })
        .unwrap_or_default();
    Value::Map(map)
}

/// The `field` of each item of the list at `status[key]`.
pub fn list_of(status: &Json, key: &str, field: &str) -> Value {
    let items = status[key]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    Value::List(
        items
            .iter()
            .filter_map(|i| i[field].as_str().map(|s| Value::String(s.to_string())))
            .collect(),
    )
}

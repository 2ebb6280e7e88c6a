//! What the API server does with a CRD's structural schema besides defaulting:
//! pruning unknown fields and checking types, enums, patterns, required
//! fields, bounds and list sizes. (CEL rules are evaluated by [`crate::cel`].)

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::Value;

/// Removes fields the schema does not declare (unless it preserves unknown
/// fields), and nulls it does not allow.
pub(crate) fn prune(schema: &JSONSchemaProps, value: &mut Value) {
    if schema.x_kubernetes_preserve_unknown_fields == Some(true) {
        return;
    }
    match value {
        Value::Object(map) => {
            let additional = match &schema.additional_properties {
                Some(JSONSchemaPropsOrBool::Schema(s)) => Some(s.as_ref()),
                _ => None,
            };
            let allow_any = matches!(
                schema.additional_properties,
                Some(JSONSchemaPropsOrBool::Bool(true))
            );
            map.retain(
                |key, child| match schema.properties.as_ref().and_then(|p| p.get(key)) {
                    // As the API server: a null where the schema does not
                    // allow one is dropped before defaulting, as if absent.
                    Some(prop) if child.is_null() => prop.nullable == Some(true),
                    Some(prop) => {
                        prune(prop, child);
                        true
                    }
                    None => match additional {
                        Some(extra) => {
                            prune(extra, child);
                            true
                        }
                        None => allow_any,
                    },
                },
            );
        }
        Value::Array(items) => {
            if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
                items.iter_mut().for_each(|child| prune(item, child));
            }
        }
        _ => {}
    }
}

/// Checks a value against the schema, adding (field path, problem) pairs to
/// `out`; returns whether every value had its schema's type (CEL rules are
/// evaluated only then).
pub(crate) fn validate(
    schema: &JSONSchemaProps,
    value: &Value,
    path: &str,
    out: &mut Vec<(String, String)>,
) -> bool {
    if value.is_null() {
        if schema.nullable != Some(true) && schema.type_.is_some() {
            out.push((
                path.into(),
                "Invalid value: \"null\": must not be null".into(),
            ));
            return false;
        }
        return true;
    }
    if let Some(problem) = type_problem(schema, value) {
        out.push((path.into(), problem));
        return false;
    }
    let mut typed = true;
    if let Some(allowed) = &schema.enum_
        && !allowed.iter().any(|a| a.0 == *value)
    {
        let list: Vec<String> = allowed.iter().map(|a| a.0.to_string()).collect();
        out.push((
            path.into(),
            format!(
                "Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ),
        ));
    }
    bounds(schema, value, path, out);
    if let (Some(pattern), Value::String(text)) = (&schema.pattern, value)
        && !matches_pattern(pattern, text)
    {
        out.push((
            path.into(),
            format!("Invalid value: {value}: should match '{pattern}'"),
        ));
    }
    match value {
        Value::Object(map) => {
            for required in schema.required.iter().flatten() {
                if !map.contains_key(required) {
                    out.push((child(path, required), "Required value".into()));
                }
            }
            for (key, child_value) in map {
                let prop = schema.properties.as_ref().and_then(|p| p.get(key)).or(
                    match &schema.additional_properties {
                        Some(JSONSchemaPropsOrBool::Schema(s)) => Some(s.as_ref()),
                        _ => None,
                    },
                );
                if let Some(prop) = prop {
                    typed &= validate(prop, child_value, &child(path, key), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(JSONSchemaPropsOrArray::Schema(item)) = &schema.items {
                for (i, child_value) in items.iter().enumerate() {
                    typed &= validate(item, child_value, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
    typed
}

/// Whether `text` matches an OpenAPI `pattern` (ECMA-262 regular expressions,
/// which Karpenter's patterns use only in the part RE2 and Rust share). An
/// uncompilable pattern matches nothing, as the API server refuses such a CRD.
fn matches_pattern(pattern: &str, text: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static COMPILED: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let mut cache = COMPILED
        .get_or_init(Default::default)
        .lock()
        .expect("pattern cache");
    cache
        .entry(pattern.to_string())
        .or_insert_with(|| regex::Regex::new(pattern).ok())
        .as_ref()
        .is_some_and(|re| re.is_match(text))
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_problem(schema: &JSONSchemaProps, value: &Value) -> Option<String> {
    if schema.x_kubernetes_int_or_string == Some(true) {
        return (!(value.is_string() || value.is_i64() || value.is_u64()))
            .then(|| format!("Invalid value: {value}: must be an integer or a string"));
    }
    let expected = schema.type_.as_deref()?;
    let ok = match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    (!ok).then(|| {
        format!(
            "Invalid value: \"{}\": {path_type} expected",
            json_type(value),
            path_type = expected
        )
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn bounds(schema: &JSONSchemaProps, value: &Value, path: &str, out: &mut Vec<(String, String)>) {
    let mut check = |ok: bool, message: String| {
        if !ok {
            out.push((path.to_string(), message));
        }
    };
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.minimum {
            check(
                n >= min,
                format!("Invalid value: {value}: should be greater than or equal to {min}"),
            );
        }
        if let Some(max) = schema.maximum {
            check(
                n <= max,
                format!("Invalid value: {value}: should be less than or equal to {max}"),
            );
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as i64;
        if let Some(max) = schema.max_length {
            check(
                len <= max,
                format!("Too long: may not be more than {max} bytes"),
            );
        }
        if let Some(min) = schema.min_length {
            check(
                len >= min,
                format!("Invalid value: {value}: should be at least {min} chars long"),
            );
        }
    }
    if let Some(items) = value.as_array() {
        let len = items.len() as i64;
        if let Some(max) = schema.max_items {
            check(
                len <= max,
                format!("Too many: {len}: must have at most {max} items"),
            );
        }
        if let Some(min) = schema.min_items {
            check(
                len >= min,
                format!("Invalid value: {len}: should have at least {min} items"),
            );
        }
    }
    if let Some(map) = value.as_object()
        && let Some(max) = schema.max_properties
    {
        let len = map.len() as i64;
        check(
            len <= max,
            format!("Too many: {len}: must have at most {max} items"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As the API server: an explicit `null` where the schema does not allow
    /// one is dropped (then defaulted); where it allows one, it stays.
    #[test]
    fn nulls_the_schema_does_not_allow_are_dropped() {
        let schema: JSONSchemaProps = serde_json::from_value(serde_json::json!({
            "type": "object",
            "properties": {
                "a": {"type": "string"},
                "b": {"type": "string", "nullable": true}
            }
        }))
        .unwrap();
        let mut value = serde_json::json!({"a": null, "b": null});
        prune(&schema, &mut value);
        assert_eq!(value, serde_json::json!({"b": null}));
    }
}

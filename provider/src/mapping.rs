//! One table per Kubernetes kind maps Terraform's attributes and blocks
//! (snake_case) onto the object's JSON (camelCase), both ways, and gives the
//! Terraform schema. A field omitted from the configuration is never sent;
//! a block is read back only where the configuration (or the prior state)
//! has it, or, on import, where it differs from what the API server would
//! default it to, so server-side defaults never show up as a diff.

use crate::cty::{Type, Value};
use crate::schema::{Attribute, Block, NestedBlock, Nesting, Presence};
use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// One field of an object.
#[derive(Debug, Clone)]
pub enum Field {
    /// A value: string, number, bool, list or map of strings.
    Attr {
        /// Terraform's name.
        tf: &'static str,
        /// The JSON key.
        json: &'static str,
        /// Its type.
        ty: Type,
        /// Required, optional, or optional and defaulted by the server.
        presence: Presence,
        /// What it means.
        description: &'static str,
    },
    /// A nested object (once) or a list of objects.
    Block {
        /// Terraform's name.
        tf: &'static str,
        /// The JSON key.
        json: &'static str,
        /// Once or a list.
        nesting: Nesting,
        /// Its fields.
        fields: Vec<Field>,
        /// What it is.
        description: &'static str,
    },
}

impl Field {
    /// Terraform's name of the field.
    pub fn tf(&self) -> &'static str {
        match self {
            Field::Attr { tf, .. } | Field::Block { tf, .. } => tf,
        }
    }

    fn json(&self) -> &'static str {
        match self {
            Field::Attr { json, .. } | Field::Block { json, .. } => json,
        }
    }
}

/// The Terraform schema of `fields`, with `extra` attributes first.
pub fn block(fields: &[Field], extra: Vec<Attribute>, description: &'static str) -> Block {
    let mut out = Block {
        attributes: extra,
        blocks: Vec::new(),
        description,
    };
    for field in fields {
        match field {
            Field::Attr {
                tf,
                ty,
                presence,
                description,
                ..
            } => out
                .attributes
                .push(Attribute::new(tf, ty.clone(), *presence, description)),
            Field::Block {
                tf,
                nesting,
                fields,
                description,
                ..
            } => out.blocks.push(NestedBlock {
                name: tf,
                nesting: *nesting,
                max_items: 0,
                block: block(fields, Vec::new(), description),
            }),
        }
    }
    out
}

/// The JSON object for a Terraform value (null and unknown fields left out).
pub fn to_json(value: &Value, fields: &[Field]) -> Map<String, Json> {
    let mut out = Map::new();
    for field in fields {
        let v = value.get(field.tf());
        let json = match (field, v) {
            (_, Value::Null | Value::Unknown) => continue,
            (Field::Attr { .. }, v) => scalar_to_json(v),
            (
                Field::Block {
                    nesting: Nesting::Single,
                    fields,
                    ..
                },
                v,
            ) => Json::Object(to_json(v, fields)),
            (Field::Block { fields, .. }, Value::List(items)) => {
                if items.is_empty() {
                    continue;
                }
                Json::Array(
                    items
                        .iter()
                        .map(|i| Json::Object(to_json(i, fields)))
                        .collect(),
                )
            }
            (Field::Block { .. }, _) => continue,
        };
        out.insert(field.json().to_string(), json);
    }
    out
}

fn scalar_to_json(value: &Value) -> Json {
    match value {
        Value::Null | Value::Unknown => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Number(n) => Json::Number(n.clone()),
        Value::String(s) => Json::String(s.clone()),
        Value::List(items) => Json::Array(items.iter().map(scalar_to_json).collect()),
        Value::Map(map) => Json::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), scalar_to_json(v)))
                .collect(),
        ),
    }
}

/// A JSON value as an attribute of type `ty` (numbers and booleans read
/// as strings where the attribute is a string, as quantities often are).
pub fn scalar_from_json(json: &Json, ty: &Type) -> Value {
    match (json, ty) {
        (Json::Null, _) => Value::Null,
        (Json::String(s), _) => Value::String(s.clone()),
        (Json::Number(n), Type::String) => Value::String(n.to_string()),
        (Json::Bool(b), Type::String) => Value::String(b.to_string()),
        (Json::Number(n), _) => Value::Number(n.clone()),
        (Json::Bool(b), _) => Value::Bool(*b),
        (Json::Array(items), Type::List(t)) => {
            Value::List(items.iter().map(|i| scalar_from_json(i, t)).collect())
        }
        (Json::Object(map), Type::Map(t)) => Value::Map(
            map.iter()
                .map(|(k, v)| (k.clone(), scalar_from_json(v, t)))
                .collect(),
        ),
        _ => Value::Null,
    }
}

/// Where a block is read back: shaped like the configuration or prior
/// state, or (on import) wherever it differs from the server's default.
/// Both carry the server's defaults at the same level, so a list block the
/// configuration leaves empty and the server defaults (a NodePool's
/// budgets) is left out too.
#[derive(Debug, Clone, Copy)]
pub enum Shape<'a> {
    /// Like this value (blocks it lacks are left out), with the defaults.
    Like(&'a Value, &'a Json),
    /// Everything except blocks equal to these defaults.
    Import(&'a Json),
}

impl<'a> Shape<'a> {
    fn defaults(self) -> &'a Json {
        match self {
            Shape::Like(_, defaults) | Shape::Import(defaults) => defaults,
        }
    }
}

/// The Terraform value of a JSON object, shaped by `shape`.
pub fn from_json(json: &Json, fields: &[Field], shape: Shape<'_>) -> Value {
    let mut out = BTreeMap::new();
    for field in fields {
        let v = &json[field.json()];
        let default = &shape.defaults()[field.json()];
        let value = match field {
            Field::Attr { ty, .. } => scalar_from_json(v, ty),
            Field::Block {
                tf,
                nesting: Nesting::Single,
                fields,
                ..
            } => {
                let inner = match shape {
                    Shape::Like(like, _) => match like.get(tf) {
                        Value::Null => None,
                        present => Some(Shape::Like(present, default)),
                    },
                    Shape::Import(_) => (v != default).then_some(Shape::Import(default)),
                };
                match (inner, v) {
                    (Some(inner), Json::Object(_)) => from_json(v, fields, inner),
                    _ => Value::Null,
                }
            }
            Field::Block { tf, fields, .. } => {
                let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
                let like_items: &[Value] = match shape {
                    Shape::Like(like, _) => match like.get(tf) {
                        Value::List(items) => items,
                        _ => &[],
                    },
                    Shape::Import(_) => &[],
                };
                // Left out: nothing there, or a list the configuration
                // does not have that equals the server's default.
                let keep = !items.is_empty() && (!like_items.is_empty() || v != default);
                Value::List(if keep {
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| {
                            let inner = match like_items.get(i) {
                                Some(like) => Shape::Like(like, &default[i]),
                                None => Shape::Import(&default[i]),
                            };
                            from_json(item, fields, inner)
                        })
                        .collect()
                } else {
                    Vec::new()
                })
            }
        };
        out.insert(field.tf().to_string(), value);
    }
    Value::Map(out)
}

/// Terraform's path of the field at JSON path `path` (`template.spec.requirements[0].operator`).
pub fn tf_path(path: &str, fields: &[Field]) -> Vec<PathStep> {
    let mut steps = Vec::new();
    let mut current = fields;
    for segment in path.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<i64>().ok()),
            None => (segment, None),
        };
        let Some(field) = current.iter().find(|f| f.json() == key) else {
            break;
        };
        steps.push(PathStep::Attribute(field.tf().to_string()));
        if let Some(i) = index {
            steps.push(PathStep::Index(i));
        }
        match field {
            Field::Block { fields, .. } => current = fields,
            Field::Attr { .. } => break,
        }
    }
    steps
}

/// One step of a Terraform attribute path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// An attribute or block name.
    Attribute(String),
    /// A list index.
    Index(i64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields() -> Vec<Field> {
        vec![
            Field::Attr {
                tf: "weight",
                json: "weight",
                ty: Type::Number,
                presence: Presence::Optional,
                description: "",
            },
            Field::Block {
                tf: "disruption",
                json: "disruption",
                nesting: Nesting::Single,
                description: "",
                fields: vec![Field::Attr {
                    tf: "consolidate_after",
                    json: "consolidateAfter",
                    ty: Type::String,
                    presence: Presence::OptionalComputed,
                    description: "",
                }],
            },
            Field::Block {
                tf: "requirement",
                json: "requirements",
                nesting: Nesting::List,
                description: "",
                fields: vec![Field::Attr {
                    tf: "values",
                    json: "values",
                    ty: Type::List(Box::new(Type::String)),
                    presence: Presence::Optional,
                    description: "",
                }],
            },
        ]
    }

    #[test]
    fn blocks_the_configuration_lacks_stay_out_of_state() {
        let server = json!({"weight": 10, "disruption": {"consolidateAfter": "0s"},
                            "requirements": [{"values": ["a"]}]});
        let config = from_json(
            &json!({"weight": 10, "requirements": [{"values": ["a"]}]}),
            &fields(),
            Shape::Import(&json!({})),
        );
        let state = from_json(&server, &fields(), Shape::Like(&config, &json!({})));
        assert_eq!(state.get("disruption"), &Value::Null);
        assert_eq!(
            Json::Object(to_json(&state, &fields())),
            json!({"weight": 10, "requirements": [{"values": ["a"]}]})
        );
        let imported = from_json(
            &server,
            &fields(),
            Shape::Import(&json!({"disruption": {"consolidateAfter": "0s"}})),
        );
        assert_eq!(
            imported.get("disruption"),
            &Value::Null,
            "equal to the default"
        );
        let changed = from_json(
            &json!({"disruption": {"consolidateAfter": "5m"}}),
            &fields(),
            Shape::Import(&json!({"disruption": {"consolidateAfter": "0s"}})),
        );
        assert_eq!(
            changed.get("disruption").get("consolidate_after").as_str(),
            Some("5m")
        );
    }

    #[test]
    fn json_paths_become_terraform_paths() {
        assert_eq!(
            tf_path("requirements[2].values", &fields()),
            [
                PathStep::Attribute("requirement".into()),
                PathStep::Index(2),
                PathStep::Attribute("values".into())
            ]
        );
    }
}

//! Terraform's values on the wire: msgpack encoded by type (cty's rules),
//! with unknown values as msgpack extension 0 (any extension reads as
//! unknown: Terraform 1.6+ sends refined unknowns as other payloads).

use rmpv::Value as Msg;
use serde_json::json;
use std::collections::BTreeMap;

/// A cty type, as the schema declares it.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// `string`
    String,
    /// `number`
    Number,
    /// `bool`
    Bool,
    /// `list(T)`
    List(Box<Type>),
    /// `map(T)`
    Map(Box<Type>),
    /// `object({...})`
    Object(BTreeMap<String, Type>),
}

impl Type {
    /// The type as cty's JSON (the schema's `type` bytes).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Type::String => json!("string"),
            Type::Number => json!("number"),
            Type::Bool => json!("bool"),
            Type::List(t) => json!(["list", t.to_json()]),
            Type::Map(t) => json!(["map", t.to_json()]),
            Type::Object(attrs) => {
                let attrs: serde_json::Map<String, serde_json::Value> = attrs
                    .iter()
                    .map(|(k, t)| (k.clone(), t.to_json()))
                    .collect();
                json!(["object", attrs])
            }
        }
    }
}

/// A Terraform value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// Not known until apply.
    Unknown,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// A list, set or tuple.
    List(Vec<Value>),
    /// A map or object.
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// Whether the value, or anything inside it, is unknown.
    pub fn has_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::List(items) => items.iter().any(Value::has_unknown),
            Value::Map(map) => map.values().any(Value::has_unknown),
            _ => false,
        }
    }

    /// The attribute `name` of an object (null when absent).
    pub fn get(&self, name: &str) -> &Value {
        match self {
            Value::Map(map) => map.get(name).unwrap_or(&Value::Null),
            _ => &Value::Null,
        }
    }

    /// The string, when the value is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Why bytes are not a value of the expected type.
#[derive(Debug, thiserror::Error)]
#[error("invalid value from Terraform: {0}")]
pub struct DecodeError(String);

/// Decodes msgpack `bytes` as a value of type `ty`.
pub fn decode(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    let msg = rmpv::decode::read_value(&mut &bytes[..])
        .map_err(|e| DecodeError(format!("msgpack: {e}")))?;
    from_msg(&msg, ty)
}

fn from_msg(msg: &Msg, ty: &Type) -> Result<Value, DecodeError> {
    let wrong = || DecodeError(format!("{msg} is not a {}", ty.to_json()));
    Ok(match (msg, ty) {
        (Msg::Nil, _) => Value::Null,
        (Msg::Ext(..), _) => Value::Unknown,
        (Msg::Boolean(b), Type::Bool) => Value::Bool(*b),
        (Msg::String(s), Type::String) => Value::String(s.as_str().ok_or_else(wrong)?.into()),
        (Msg::Integer(i), Type::Number) => Value::Number(match (i.as_i64(), i.as_u64()) {
            (Some(v), _) => v.into(),
            (None, Some(v)) => v.into(),
            _ => return Err(wrong()),
        }),
        (Msg::F64(f), Type::Number) => {
            Value::Number(serde_json::Number::from_f64(*f).ok_or_else(wrong)?)
        }
        (Msg::F32(f), Type::Number) => {
            Value::Number(serde_json::Number::from_f64(f64::from(*f)).ok_or_else(wrong)?)
        }
        (Msg::String(s), Type::Number) => {
            let text = s.as_str().ok_or_else(wrong)?;
            Value::Number(text.parse().map_err(|_| wrong())?)
        }
        (Msg::Array(items), Type::List(t)) => Value::List(
            items
                .iter()
                .map(|i| from_msg(i, t))
                .collect::<Result<_, _>>()?,
        ),
        (Msg::Map(entries), Type::Map(t)) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| Ok((k.as_str().ok_or_else(wrong)?.to_string(), from_msg(v, t)?)))
                .collect::<Result<_, DecodeError>>()?,
        ),
        (Msg::Map(entries), Type::Object(attrs)) => {
            let mut out = BTreeMap::new();
            for (k, v) in entries {
                let key = k.as_str().ok_or_else(wrong)?;
                let t = attrs
                    .get(key)
                    .ok_or_else(|| DecodeError(format!("unexpected attribute {key:?}")))?;
                out.insert(key.to_string(), from_msg(v, t)?);
            }
            for key in attrs.keys() {
                out.entry(key.clone()).or_insert(Value::Null);
            }
            Value::Map(out)
        }
        _ => return Err(wrong()),
    })
}

/// Encodes `value` (of type `ty`) as msgpack.
pub fn encode(value: &Value, ty: &Type) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, &to_msg(value, ty)).expect("writing to memory");
    out
}

fn to_msg(value: &Value, ty: &Type) -> Msg {
    match (value, ty) {
        (Value::Null, _) => Msg::Nil,
        (Value::Unknown, _) => Msg::Ext(0, vec![0]),
        (Value::Bool(b), _) => Msg::Boolean(*b),
        (Value::String(s), _) => Msg::from(s.as_str()),
        (Value::Number(n), _) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Msg::from(i),
            (None, Some(u), _) => Msg::from(u),
            (None, None, Some(f)) => Msg::F64(f),
            _ => Msg::from(n.to_string()),
        },
        (Value::List(items), Type::List(t)) => {
            Msg::Array(items.iter().map(|i| to_msg(i, t)).collect())
        }
        (Value::Map(map), Type::Map(t)) => Msg::Map(
            map.iter()
                .map(|(k, v)| (Msg::from(k.as_str()), to_msg(v, t)))
                .collect(),
        ),
        (Value::Map(map), Type::Object(attrs)) => Msg::Map(
            attrs
                .iter()
                .map(|(k, t)| {
                    (
                        Msg::from(k.as_str()),
                        to_msg(map.get(k).unwrap_or(&Value::Null), t),
                    )
                })
                .collect(),
        ),
        // A value that does not fit its type is written as null.
        _ => Msg::Nil,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object() -> Type {
        Type::Object(BTreeMap::from([
            ("name".into(), Type::String),
            ("weight".into(), Type::Number),
            ("labels".into(), Type::Map(Box::new(Type::String))),
            ("values".into(), Type::List(Box::new(Type::String))),
            ("on".into(), Type::Bool),
        ]))
    }

    #[test]
    fn values_round_trip_with_nulls_and_unknowns() {
        let value = Value::Map(BTreeMap::from([
            ("name".into(), Value::String("default".into())),
            ("weight".into(), Value::Number(10.into())),
            ("labels".into(), Value::Unknown),
            (
                "values".into(),
                Value::List(vec![Value::String("a".into())]),
            ),
            ("on".into(), Value::Null),
        ]));
        let bytes = encode(&value, &object());
        assert_eq!(decode(&bytes, &object()).unwrap(), value);
        assert!(decode(&bytes, &object()).unwrap().has_unknown());
    }

    #[test]
    fn unknowns_are_cty_extension_zero_and_any_extension_reads_as_unknown() {
        assert_eq!(encode(&Value::Unknown, &Type::String), vec![0xd4, 0, 0]);
        let refined = [0xc7, 3, 0x0c, 1, 2, 3];
        assert_eq!(decode(&refined, &Type::String).unwrap(), Value::Unknown);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_an_error() {
        let bytes = encode(&Value::Bool(true), &Type::Bool);
        assert!(decode(&bytes, &Type::String).is_err());
        let number = encode(
            &Value::Number(serde_json::Number::from_f64(1.5).unwrap()),
            &Type::Number,
        );
        assert_eq!(
            decode(&number, &Type::Number).unwrap(),
            Value::Number(serde_json::Number::from_f64(1.5).unwrap())
        );
    }
}

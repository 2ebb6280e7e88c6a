//! Request bodies in Kubernetes' protobuf encoding, for the one kind real
//! clients send that way to kubesim: `Secret`.
//!
//! client-go's typed clientsets write core objects as protobuf when configured
//! to, and Helm's release storage does exactly that for its
//! `sh.helm.release.v1.*` Secrets. This module reads the `k8s\0` envelope
//! (a `runtime.Unknown` holding the type and the raw object) and turns a
//! Secret into the JSON object kubesim stores. Only the fields a stored Secret
//! keeps are read: `metadata` (name, generateName, namespace, uid,
//! resourceVersion, labels, annotations, finalizers), `data`, `stringData`,
//! `type` and `immutable`; fields kubesim assigns itself (timestamps,
//! generation, managedFields) are skipped. Other kinds are refused with 415,
//! as before, so a client learns at once that it must send JSON.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::status::ApiError;

/// The four bytes every protobuf-encoded Kubernetes object starts with.
const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf request body into the JSON form of the object.
pub(super) fn decode(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    let bad = |why: &str| ApiError::bad_request(format!("invalid protobuf body: {why}"));
    let unknown = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad("no k8s envelope"))?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for field in Fields(unknown) {
        match field.map_err(&bad)? {
            (1, Wire::Bytes(type_meta)) => {
                for f in Fields(type_meta) {
                    match f.map_err(&bad)? {
                        (1, Wire::Bytes(v)) => api_version = text(v).map_err(&bad)?,
                        (2, Wire::Bytes(v)) => kind = text(v).map_err(&bad)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(bytes)) => raw = bytes,
            _ => {}
        }
    }
    if (api_version.as_str(), kind.as_str()) != ("v1", "Secret") {
        return Err(ApiError::unsupported_media_type(content_type));
    }
    secret(raw).map_err(bad)
}

fn secret(raw: &[u8]) -> Result<Value, &'static str> {
    let mut secret = Map::new();
    secret.insert("apiVersion".into(), json!("v1"));
    secret.insert("kind".into(), json!("Secret"));
    let mut data = Map::new();
    let mut string_data = Map::new();
    for field in Fields(raw) {
        match field? {
            (1, Wire::Bytes(meta)) => {
                secret.insert("metadata".into(), object_meta(meta)?);
            }
            (2, Wire::Bytes(entry)) => {
                let (key, value) = map_entry(entry)?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(value);
                data.insert(text(key)?, Value::String(encoded));
            }
            (3, Wire::Bytes(v)) => {
                secret.insert("type".into(), Value::String(text(v)?));
            }
            (4, Wire::Bytes(entry)) => {
                let (key, value) = map_entry(entry)?;
                string_data.insert(text(key)?, Value::String(text(value)?));
            }
            (5, Wire::Varint(v)) => {
                secret.insert("immutable".into(), Value::Bool(v != 0));
            }
            _ => {}
        }
    }
    if !data.is_empty() {
        secret.insert("data".into(), Value::Object(data));
    }
    if !string_data.is_empty() {
        secret.insert("stringData".into(), Value::Object(string_data));
    }
    Ok(Value::Object(secret))
}

fn object_meta(raw: &[u8]) -> Result<Value, &'static str> {
    let mut meta = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    for field in Fields(raw) {
        let (number, wire) = field?;
        let Wire::Bytes(bytes) = wire else { continue };
        let name = match number {
            1 => "name",
            2 => "generateName",
            3 => "namespace",
            5 => "uid",
            6 => "resourceVersion",
            11 | 12 => {
                let (key, value) = map_entry(bytes)?;
                let target = if number == 11 {
                    &mut labels
                } else {
                    &mut annotations
                };
                target.insert(text(key)?, Value::String(text(value)?));
                continue;
            }
            14 => {
                finalizers.push(Value::String(text(bytes)?));
                continue;
            }
            _ => continue,
        };
        let value = text(bytes)?;
        if !value.is_empty() {
            meta.insert(name.into(), Value::String(value));
        }
    }
    for (key, map) in [("labels", labels), ("annotations", annotations)] {
        if !map.is_empty() {
            meta.insert(key.into(), Value::Object(map));
        }
    }
    if !finalizers.is_empty() {
        meta.insert("finalizers".into(), Value::Array(finalizers));
    }
    Ok(Value::Object(meta))
}

/// A protobuf map entry: key is field 1, value field 2.
fn map_entry(raw: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    let (mut key, mut value): (&[u8], &[u8]) = (&[], &[]);
    for field in Fields(raw) {
        match field? {
            (1, Wire::Bytes(k)) => key = k,
            (2, Wire::Bytes(v)) => value = v,
            _ => {}
        }
    }
    Ok((key, value))
}

fn text(bytes: &[u8]) -> Result<String, &'static str> {
    String::from_utf8(bytes.to_vec()).map_err(|_| "a string field is not UTF-8")
}

/// One field's payload, by wire type.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// Iterates the `(field number, payload)` pairs of one message.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Wire<'a>), &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        Some(self.field())
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Result<(u64, Wire<'a>), &'static str> {
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => self.skip(8)?,
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                let bytes = self
                    .0
                    .get(..len)
                    .ok_or("truncated length-delimited field")?;
                self.0 = &self.0[len..];
                Wire::Bytes(bytes)
            }
            5 => self.skip(4)?,
            _ => return Err("unsupported wire type"),
        };
        Ok((key >> 3, wire))
    }

    fn skip(&mut self, len: usize) -> Result<Wire<'a>, &'static str> {
        self.0 = self.0.get(len..).ok_or("truncated fixed-width field")?;
        Ok(Wire::Fixed)
    }

    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for (i, byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(value);
            }
        }
        Err("truncated varint")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_field(number: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::try_from(number << 3 | 2).unwrap()];
        out.push(u8::try_from(payload.len()).unwrap());
        out.extend_from_slice(payload);
        out
    }

    fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        [bytes_field(1, key.as_bytes()), bytes_field(2, value)].concat()
    }

    fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let type_meta = [
            bytes_field(1, api_version.as_bytes()),
            bytes_field(2, kind.as_bytes()),
        ]
        .concat();
        [
            MAGIC.to_vec(),
            bytes_field(1, &type_meta),
            bytes_field(2, raw),
        ]
        .concat()
    }

    #[test]
    fn a_helm_release_secret_decodes_to_its_json_form() {
        let meta = [
            bytes_field(1, b"sh.helm.release.v1.karpenter.v1"),
            bytes_field(3, b"kube-system"),
            bytes_field(11, &entry("owner", b"helm")),
            bytes_field(11, &entry("status", b"deployed")),
        ]
        .concat();
        let raw = [
            bytes_field(1, &meta),
            bytes_field(2, &entry("release", b"H4sI")),
            bytes_field(3, b"helm.sh/release.v1"),
            vec![5 << 3, 1],
        ]
        .concat();
        let secret = decode(
            &envelope("v1", "Secret", &raw),
            "application/vnd.kubernetes.protobuf",
        )
        .unwrap();
        assert_eq!(
            secret,
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
                "immutable": true,
                "metadata": {"name": "sh.helm.release.v1.karpenter.v1", "namespace": "kube-system",
                             "labels": {"owner": "helm", "status": "deployed"}},
                "data": {"release": "SDRzSQ=="}
            })
        );
    }

    #[test]
    fn other_kinds_and_broken_bodies_are_refused() {
        let refused = decode(
            &envelope("v1", "Pod", &[]),
            "application/vnd.kubernetes.protobuf",
        );
        assert_eq!(refused.unwrap_err().code, 415);
        let truncated = [MAGIC, &[0x0a, 0x05, b'v']].concat();
        let err = decode(&truncated, "application/vnd.kubernetes.protobuf").unwrap_err();
        assert_eq!(err.code, 400, "{}", err.message);
        assert!(decode(b"{}", "application/vnd.kubernetes.protobuf").is_err());
    }
}

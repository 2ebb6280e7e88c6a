//! Converted objects as Terraform: one `karpenter_ec2nodeclass` or
//! `karpenter_nodepool` resource each, and an `import` block (Terraform
//! 1.5 or later) for each, so that the first `terraform apply` adopts the
//! objects the cluster already holds instead of creating them.
//!
//! Names follow `terraform-provider-karpenter`'s rule: the spec's fields sit
//! at the resource's top level beside `name`, camelCase becomes snake_case,
//! a list of objects is a repeatable block named in the singular
//! (`requirements` → `requirement`), a mapping of strings is a map
//! attribute, any other object a block. The generated CRD schemas tell
//! which field is which. The provider's acceptance tests plan this output
//! against the provider itself (`provider/tests/terraform.rs`), which is
//! what keeps the two in step.
//!
//! A block whose value, once the API server has defaulted the object,
//! equals what it defaults an empty spec to (a `disruption` block saying
//! `WhenEmptyOrUnderutilized` after `0s`) is left out, as the provider's
//! import leaves it out: written, it would plan as a change after import.

use super::{Conversion, Kind, Object};
use serde_json::{Map, Value};

/// The Terraform configuration of `conversion`'s objects.
pub fn render(conversion: &Conversion) -> String {
    let class_labels: Vec<(String, String)> = conversion
        .objects
        .iter()
        .filter(|o| o.kind == Kind::EC2NodeClass)
        .map(|o| (o.name.clone(), label(&o.name)))
        .collect();
    let mut out = String::new();
    for object in &conversion.objects {
        let (resource, crd_kind) = match object.kind {
            Kind::EC2NodeClass => ("karpenter_ec2nodeclass", "EC2NodeClass"),
            Kind::NodePool => ("karpenter_nodepool", "NodePool"),
        };
        let label = label(&object.name);
        let mut lines = super::header(conversion, object);
        lines.extend(dropped_metadata(object));
        out.push_str(&super::comment(&lines));
        out.push_str(&format!("resource \"{resource}\" \"{label}\" {{\n"));
        out.push_str(&format!("  name = {}\n", string(&object.name)));
        let schema = spec_schema(crd_kind);
        let spec = object
            .manifest
            .get("spec")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let (server, defaults) = defaulted(object);
        let class_ref = |name: &str| {
            class_labels
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, l)| format!("karpenter_ec2nodeclass.{l}.name"))
        };
        let ctx = Context {
            class_ref: &class_ref,
        };
        let at = At {
            schema: &schema,
            server: &server,
            default: &defaults,
        };
        body(&mut out, 1, &spec, at, "", &ctx);
        out.push_str("}\n\n");
        out.push_str(&format!(
            "import {{\n  to = {resource}.{label}\n  id = {}\n}}\n\n",
            string(&object.name)
        ));
    }
    out
}

/// Metadata the provider's resources do not carry, said in a comment.
fn dropped_metadata(object: &Object) -> Vec<String> {
    ["labels", "annotations"]
        .into_iter()
        .filter_map(|key| {
            let map = object.manifest.pointer(&format!("/metadata/{key}"))?.as_object()?;
            let list: Vec<&str> = map.keys().map(String::as_str).collect();
            Some(format!(
                "The object's own {key} ({}) are not managed by this resource; keep them with kubectl if they matter.",
                list.join(", ")
            ))
        })
        .collect()
}

/// The object's spec as the API server defaults it, and an empty spec's
/// defaults.
fn defaulted(object: &Object) -> (Value, Value) {
    let manifest = object.manifest.clone();
    match object.kind {
        Kind::NodePool => {
            let server = serde_json::from_value::<karpenter_api::v1::NodePool>(manifest)
                .map(|mut p| {
                    karpenter_api::defaults::nodepool(&mut p);
                    serde_json::to_value(&p.spec).unwrap_or_default()
                })
                .unwrap_or_default();
            (server, karpenter_api::defaults::empty_nodepool_spec())
        }
        Kind::EC2NodeClass => {
            let server = serde_json::from_value::<karpenter_api::v1::EC2NodeClass>(manifest)
                .map(|mut c| {
                    karpenter_api::defaults::ec2nodeclass(&mut c);
                    serde_json::to_value(&c.spec).unwrap_or_default()
                })
                .unwrap_or_default();
            (server, karpenter_api::defaults::empty_ec2nodeclass_spec())
        }
    }
}

/// What the whole rendering shares.
struct Context<'a> {
    /// The reference to a converted class's name, when it is converted too.
    class_ref: &'a dyn Fn(&str) -> Option<String>,
}

/// Where a block is: its schema, its defaulted value, an empty spec's.
#[derive(Clone, Copy)]
struct At<'a> {
    schema: &'a Value,
    server: &'a Value,
    default: &'a Value,
}

impl<'a> At<'a> {
    fn field(&self, key: &str) -> (Value, &'a Value, &'a Value) {
        let schema = self
            .schema
            .pointer(&format!("/properties/{key}"))
            .cloned()
            .unwrap_or(Value::Null);
        (schema, &self.server[key], &self.default[key])
    }
}

/// The `spec` schema of a kind's generated CRD.
fn spec_schema(kind: &str) -> Value {
    karpenter_api::crd::all()
        .into_iter()
        .find(|(_, crd)| crd.spec.names.kind == kind)
        .and_then(|(_, crd)| crd.spec.versions[0].schema.clone())
        .and_then(|s| s.open_api_v3_schema)
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|s| s.pointer("/properties/spec").cloned())
        .unwrap_or(Value::Null)
}

/// How a field is written, from its schema.
enum Shape {
    /// `name = value`.
    Attribute,
    /// `name { ... }`.
    Block,
    /// `singular { ... }`, once per item.
    Blocks,
}

fn shape(schema: &Value, value: &Value) -> Shape {
    let ty = schema.get("type").and_then(Value::as_str);
    match (ty, value) {
        (Some("object"), Value::Object(_)) if schema.get("additionalProperties").is_none() => {
            Shape::Block
        }
        (Some("array"), Value::Array(_))
            if schema.pointer("/items/type").and_then(Value::as_str) == Some("object") =>
        {
            Shape::Blocks
        }
        _ => Shape::Attribute,
    }
}

/// A block's body: attributes first, then blocks, each in name order.
fn body(
    out: &mut String,
    depth: usize,
    fields: &Map<String, Value>,
    at: At<'_>,
    path: &str,
    ctx: &Context<'_>,
) {
    let indent = "  ".repeat(depth);
    let mut attributes = Vec::new();
    for (key, value) in fields {
        let (schema, _, _) = at.field(key);
        if !matches!(shape(&schema, value), Shape::Attribute) {
            continue;
        }
        let field_path = format!("{path}/{key}");
        let literal = match (field_path.as_str(), value) {
            ("/template/spec/nodeClassRef/name", Value::String(name)) => {
                (ctx.class_ref)(name).unwrap_or_else(|| string(name))
            }
            _ => literal(value, depth),
        };
        attributes.push((snake(key), literal));
    }
    aligned(out, &indent, &attributes);
    for (key, value) in fields {
        let (schema, server, default) = at.field(key);
        if server == default {
            continue;
        }
        let inner_path = format!("{path}/{key}");
        match (shape(&schema, value), value) {
            (Shape::Block, Value::Object(inner)) => {
                out.push_str(&format!("{indent}{} {{\n", snake(key)));
                let at = At {
                    schema: &schema,
                    server,
                    default,
                };
                body(out, depth + 1, inner, at, &inner_path, ctx);
                out.push_str(&format!("{indent}}}\n"));
            }
            (Shape::Blocks, Value::Array(items)) => {
                let name = singular(&snake(key));
                let item_schema = schema.get("items").cloned().unwrap_or(Value::Null);
                for (i, item) in items.iter().enumerate() {
                    out.push_str(&format!("{indent}{name} {{\n"));
                    if let Value::Object(inner) = item {
                        let at = At {
                            schema: &item_schema,
                            server: &server[i],
                            default: &default[i],
                        };
                        body(out, depth + 1, inner, at, &inner_path, ctx);
                    }
                    out.push_str(&format!("{indent}}}\n"));
                }
            }
            _ => {}
        }
    }
}

/// `name = value` lines, the `=` of neighbouring one-line values aligned
/// as `terraform fmt` aligns them.
fn aligned(out: &mut String, indent: &str, attributes: &[(String, String)]) {
    let mut start = 0;
    while start < attributes.len() {
        let mut end = start;
        while end < attributes.len() && !attributes[end].1.contains('\n') {
            end += 1;
        }
        let end = end.max(start + 1);
        let width = attributes[start..end]
            .iter()
            .map(|(k, _)| k.len())
            .max()
            .unwrap_or(0);
        for (key, value) in &attributes[start..end] {
            out.push_str(&format!("{indent}{key:<width$} = {value}\n"));
        }
        start = end;
    }
}

/// An attribute's value.
fn literal(value: &Value, depth: usize) -> String {
    match value {
        Value::String(s) => string(s),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|v| literal(v, depth)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(map) if map.is_empty() => "{}".to_string(),
        Value::Object(map) => {
            let entries: Vec<(String, String)> = map
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(_) => literal(v, depth + 1),
                        other => string(&other.to_string()),
                    };
                    (string(k), v)
                })
                .collect();
            let mut text = "{\n".to_string();
            aligned(&mut text, &"  ".repeat(depth + 1), &entries);
            text.push_str(&format!("{}}}", "  ".repeat(depth)));
            text
        }
        other => other.to_string(),
    }
}

/// A string literal; text of several lines ending in a newline as a heredoc.
fn string(s: &str) -> String {
    let template = |s: &str| s.replace("${", "$${").replace("%{", "%%{");
    if s.ends_with('\n') && s.len() > 1 && !s.lines().any(|l| l == "EOT") {
        return format!("<<EOT\n{}EOT", template(s));
    }
    let mut out = String::from("\"");
    for c in template(s).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A resource label for an object name (letters, digits, `_` and `-`,
/// not starting with a digit).
fn label(name: &str) -> String {
    let mut label: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !label.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        label.insert(0, '_');
    }
    label
}

/// `camelCase` as `snake_case`, acronyms as one word (`kmsKeyID` →
/// `kms_key_id`, `httpProtocolIPv6` → `http_protocol_ipv6`).
fn snake(key: &str) -> String {
    let key = key.replace("IPv6", "Ipv6");
    let chars: Vec<char> = key.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The singular of a list field's name (`budgets` → `budget`).
fn singular(name: &str) -> String {
    name.strip_suffix('s').unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_providers_rule() {
        for (json, tf) in [
            ("clusterDNS", "cluster_dns"),
            ("kmsKeyID", "kms_key_id"),
            ("httpProtocolIPv6", "http_protocol_ipv6"),
            (
                "imageGCHighThresholdPercent",
                "image_gc_high_threshold_percent",
            ),
            ("associatePublicIPAddress", "associate_public_ip_address"),
            ("cpuCFSQuota", "cpu_cfs_quota"),
            ("subnetSelectorTerms", "subnet_selector_terms"),
            ("expireAfter", "expire_after"),
        ] {
            assert_eq!(snake(json), tf, "{json}");
        }
        assert_eq!(singular("subnet_selector_terms"), "subnet_selector_term");
        assert_eq!(label("gpu.large"), "gpu_large");
        assert_eq!(label("1st"), "_1st");
    }

    #[test]
    fn strings_are_escaped_for_templates() {
        assert_eq!(string("a\"b${x}"), "\"a\\\"b$${x}\"");
        assert_eq!(
            string("#!/bin/bash\necho ${A}\n"),
            "<<EOT\n#!/bin/bash\necho $${A}\nEOT"
        );
        assert_eq!(string("no newline\nat end"), "\"no newline\\nat end\"");
    }
}

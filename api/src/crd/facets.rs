//! The schema constraints upstream's CRDs carry that the Rust types do not
//! say: patterns, enums, bounds, list and map types, the root fields, the
//! shape of `status.conditions`, and no `nullable` (so an explicit `null`
//! is dropped and defaulted, as upstream's CRDs make the API server do).
//! `controller/tests/upstream_contract.rs` compares the result with
//! upstream's files.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    JSON, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::json;
use std::collections::BTreeMap;

/// A label value (`validation.IsValidLabelValue`).
const LABEL_VALUE: &str = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";
/// A qualified name with an optional DNS-subdomain prefix (label keys, taint keys and values).
const QUALIFIED_NAME: &str = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(\/))?([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$";
/// A resource quantity.
const QUANTITY: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";
/// An eviction threshold: a percentage or a quantity.
const EVICTION_THRESHOLD: &str = r"^((\d{1,2}(\.\d{1,2})?|100(\.0{1,2})?)%||(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?)$";
/// A condition type (`metav1.Condition`).
const CONDITION_TYPE: &str = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$";
/// A condition reason (`metav1.Condition`).
const CONDITION_REASON: &str = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$";
/// A NodeClaim's condition reason, which may be empty.
const CONDITION_REASON_OR_EMPTY: &str = r"^([A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?|)$";

/// One constraint on a schema node.
enum Facet {
    Pattern(&'static str),
    MaxLength(i64),
    MinLength(i64),
    MaxItems(i64),
    NoMaxItems,
    NoMinItems,
    Enum(&'static [&'static str]),
    ListType(&'static str),
    MapType(&'static str),
    NoFormat,
    DefaultValue(serde_json::Value),
    /// A property of this object that must be present.
    Required(&'static str),
}

use Facet::*;

/// Taints, as a list (`spec.taints`, `spec.startupTaints` and the template's).
fn taints(path: &'static str, out: &mut Vec<(String, Facet)>) {
    out.push((path.into(), ListType("atomic")));
    out.push((
        format!("{path}[].effect"),
        Enum(&["NoSchedule", "PreferNoSchedule", "NoExecute"]),
    ));
    out.push((format!("{path}[].key"), Pattern(QUALIFIED_NAME)));
    out.push((format!("{path}[].key"), MinLength(1)));
    out.push((format!("{path}[].value"), Pattern(QUALIFIED_NAME)));
}

/// Node selector requirements (`spec.requirements` and the template's).
fn requirements(path: &'static str, out: &mut Vec<(String, Facet)>) {
    out.push((path.into(), ListType("atomic")));
    out.push((format!("{path}[].key"), Pattern(QUALIFIED_NAME)));
    out.push((format!("{path}[].minValues"), NoFormat));
    // Upstream puts these on the array, where the API server ignores them.
    out.push((format!("{path}[].values"), NoMaxItems));
    out.push((format!("{path}[].values"), Pattern(LABEL_VALUE)));
    out.push((format!("{path}[].values"), MaxLength(63)));
}

/// The constraints of `kind`, by property path.
fn facets(kind: &str) -> Vec<(String, Facet)> {
    let mut out = Vec::new();
    match kind {
        "NodePool" => {
            out.push(("spec.disruption".into(), Required("consolidateAfter")));
            out.push(("spec.disruption.budgets[]".into(), Required("nodes")));
            out.push(("spec.disruption.budgets".into(), ListType("atomic")));
            out.push(("spec.disruption.budgets[].reasons".into(), MaxItems(50)));
            out.push(("spec.disruption.budgets[].reasons".into(), ListType("set")));
            out.push(("spec.limits{}".into(), Pattern(QUANTITY)));
            out.push((
                "spec.template.metadata.annotations".into(),
                MapType("granular"),
            ));
            out.push(("spec.template.metadata.labels".into(), MapType("atomic")));
            out.push((
                "spec.template.metadata.labels{}".into(),
                Pattern(LABEL_VALUE),
            ));
            out.push(("spec.template.metadata.labels{}".into(), MaxLength(63)));
            requirements("spec.template.spec.requirements", &mut out);
            taints("spec.template.spec.taints", &mut out);
            taints("spec.template.spec.startupTaints", &mut out);
            out.push(("status.resources{}".into(), Pattern(QUANTITY)));
            out.push(("status.nodes".into(), DefaultValue(json!(0))));
        }
        "NodeClaim" => {
            requirements("spec.requirements", &mut out);
            taints("spec.taints", &mut out);
            taints("spec.startupTaints", &mut out);
            out.push(("spec.resources.requests{}".into(), Pattern(QUANTITY)));
            out.push(("status.allocatable{}".into(), Pattern(QUANTITY)));
            out.push(("status.capacity{}".into(), Pattern(QUANTITY)));
        }
        "EC2NodeClass" => {
            out.push((
                "spec.amiSelectorTerms[].id".into(),
                Pattern("ami-[0-9a-z]+"),
            ));
            out.push((
                "spec.securityGroupSelectorTerms[].id".into(),
                Pattern("sg-[0-9a-z]+"),
            ));
            out.push((
                "spec.subnetSelectorTerms[].id".into(),
                Pattern("subnet-[0-9a-z]+"),
            ));
            out.push(("spec.securityGroupSelectorTerms".into(), NoMinItems));
            out.push(("spec.subnetSelectorTerms".into(), NoMinItems));
            for map in ["kubeReserved", "systemReserved"] {
                out.push((format!("spec.kubelet.{map}{{}}"), Pattern(QUANTITY)));
            }
            for map in ["evictionHard", "evictionSoft"] {
                out.push((
                    format!("spec.kubelet.{map}{{}}"),
                    Pattern(EVICTION_THRESHOLD),
                ));
            }
            out.push((
                "status.amis[].requirements[].values".into(),
                ListType("atomic"),
            ));
            out.push((
                "status.capacityReservations[].id".into(),
                Pattern("^cr-[0-9a-z]+$"),
            ));
            out.push((
                "status.capacityReservations[].instanceMatchCriteria".into(),
                Enum(&["open", "targeted"]),
            ));
            out.push((
                "status.capacityReservations[].ownerID".into(),
                Pattern("^[0-9]{12}$"),
            ));
            out.push((
                "status.capacityReservations[].reservationType".into(),
                Enum(&["capacity-block", "default"]),
            ));
            out.push((
                "status.capacityReservations[].state".into(),
                Enum(&["active", "expiring"]),
            ));
            out.push((
                "status.capacityReservations[].reservationType".into(),
                DefaultValue(json!("default")),
            ));
            out.push((
                "status.capacityReservations[].state".into(),
                DefaultValue(json!("active")),
            ));
        }
        "NodeOverlay" => {
            let list = "spec.requirements";
            out.push((list.into(), ListType("atomic")));
            out.push((format!("{list}[].key"), Pattern(QUALIFIED_NAME)));
            // Upstream puts these on the array, where the API server ignores them.
            out.push((format!("{list}[].values"), Pattern(LABEL_VALUE)));
            out.push((format!("{list}[].values"), MaxLength(63)));
            out.push(("spec.capacity{}".into(), Pattern(QUANTITY)));
        }
        "CapacityBuffer" => {
            out.push(("spec.limits{}".into(), Pattern(QUANTITY)));
            out.push((
                "spec.provisioningStrategy".into(),
                DefaultValue(json!("buffer.x-k8s.io/active-capacity")),
            ));
        }
        _ => {}
    }
    out
}

/// Applies every constraint of `kind` to its schema.
pub(super) fn apply(kind: &str, schema: &mut JSONSchemaProps) {
    strip_nullable(schema);
    add_root_fields(schema);
    if let Some(conditions) = super::property_mut(schema, "status.conditions") {
        condition_list(kind, conditions);
    }
    if kind == "EC2NodeClass" {
        // Upstream leaves `spec` optional at the root (its rules are on `spec`).
        schema.required = None;
    }
    for (path, facet) in facets(kind) {
        let node = super::property_mut(schema, &path)
            .unwrap_or_else(|| panic!("{kind}: no schema property {path}"));
        match facet {
            Pattern(p) => node.pattern = Some(p.into()),
            MaxLength(n) => node.max_length = Some(n),
            MinLength(n) => node.min_length = Some(n),
            MaxItems(n) => node.max_items = Some(n),
            NoMaxItems => node.max_items = None,
            NoMinItems => node.min_items = None,
            Enum(values) => node.enum_ = Some(values.iter().map(|v| JSON(json!(v))).collect()),
            ListType(t) => node.x_kubernetes_list_type = Some(t.into()),
            MapType(t) => node.x_kubernetes_map_type = Some(t.into()),
            NoFormat => node.format = None,
            DefaultValue(value) => node.default = Some(JSON(value)),
            Required(field) => {
                let required = node.required.get_or_insert_with(Vec::new);
                if !required.iter().any(|f| f == field) {
                    required.push(field.into());
                    required.sort();
                }
            }
        }
    }
}

/// No node is nullable: the API server then drops an explicit `null` and
/// defaults the field, as upstream's CRDs (which never say `nullable`) have it.
fn strip_nullable(s: &mut JSONSchemaProps) {
    s.nullable = None;
    for prop in s.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strip_nullable(prop);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(item)) = s.items.as_mut() {
        strip_nullable(item);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = s.additional_properties.as_mut() {
        strip_nullable(extra);
    }
}

/// `apiVersion`, `kind` and `metadata`, described as every generated CRD has them.
fn add_root_fields(s: &mut JSONSchemaProps) {
    let properties = s.properties.get_or_insert_with(BTreeMap::new);
    properties.insert(
        "apiVersion".into(),
        JSONSchemaProps {
            description: Some("APIVersion defines the versioned schema of this representation of an object.\nServers should convert recognized schemas to the latest internal value, and\nmay reject unrecognized values.\nMore info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources".into()),
            type_: Some("string".into()),
            ..Default::default()
        },
    );
    properties.insert(
        "kind".into(),
        JSONSchemaProps {
            description: Some("Kind is a string value representing the REST resource this object represents.\nServers may infer this from the endpoint the client submits requests to.\nCannot be updated.\nIn CamelCase.\nMore info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds".into()),
            type_: Some("string".into()),
            ..Default::default()
        },
    );
    properties.insert(
        "metadata".into(),
        JSONSchemaProps {
            type_: Some("object".into()),
            ..Default::default()
        },
    );
}

/// `status.conditions` as upstream's status package writes its schema: a
/// map-list keyed by type (EC2NodeClass: a plain list), each condition's
/// fields bounded as the API types bound them (NodeClaim: reason and
/// message optional, an empty reason allowed).
fn condition_list(kind: &str, list: &mut JSONSchemaProps) {
    if kind != "EC2NodeClass" {
        list.x_kubernetes_list_type = Some("map".into());
        list.x_kubernetes_list_map_keys = Some(vec!["type".into()]);
    }
    let Some(JSONSchemaPropsOrArray::Schema(item)) = list.items.as_mut() else {
        return;
    };
    if kind == "NodeClaim"
        && let Some(required) = item.required.as_mut()
    {
        required.retain(|f| f != "reason" && f != "message");
    }
    let props = item.properties.get_or_insert_with(BTreeMap::new);
    if let Some(p) = props.get_mut("message") {
        p.max_length = Some(32768);
    }
    if let Some(p) = props.get_mut("observedGeneration") {
        p.minimum = Some(0.0);
        p.format = Some("int64".into());
    }
    if let Some(p) = props.get_mut("reason") {
        p.max_length = Some(1024);
        if kind == "NodeClaim" {
            p.pattern = Some(CONDITION_REASON_OR_EMPTY.into());
        } else {
            p.min_length = Some(1);
            p.pattern = Some(CONDITION_REASON.into());
        }
    }
    if let Some(p) = props.get_mut("status") {
        p.enum_ = Some(
            ["True", "False", "Unknown"]
                .iter()
                .map(|v| JSON(json!(v)))
                .collect(),
        );
    }
    if let Some(p) = props.get_mut("type") {
        p.max_length = Some(316);
        p.pattern = Some(CONDITION_TYPE.into());
    }
}

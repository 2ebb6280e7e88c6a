//! Admission: what happens to an object between the request and the store.
//!
//! - Custom resources: unknown fields pruned, schema defaults applied (with
//!   `karpenter_api::crd::apply_schema_defaults`, the API server's algorithm),
//!   types/enums/patterns/required/bounds checked, then the CRD's CEL rules
//!   evaluated ([`crate::cel`]), transition rules against the stored object.
//!   Nothing kind-specific: Karpenter's kinds are checked by their CRDs alone,
//!   as a real API server checks them.
//! - Built-ins: the defaults clients rely on (a new pod is `Pending`, a new
//!   namespace `Active`).
//! - CustomResourceDefinitions: creating one serves its kind at once and marks
//!   it `Established`; deleting one removes its objects.

use crate::Kubesim;
use crate::resources::ResourceType;
use crate::schema;
use crate::status::ApiError;
use crate::store::{self, DeleteOptions, Part};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::JSONSchemaProps;
use serde_json::{Value, json};
use std::sync::Arc;

/// Defaults and validates an object about to be written (`old` for updates).
pub(crate) fn admit(
    rt: &ResourceType,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    // As the API server does, a generated name is chosen before validation.
    let unnamed = obj["metadata"]["name"].as_str().is_none_or(str::is_empty);
    if unnamed && let Some(prefix) = obj["metadata"]["generateName"].as_str() {
        obj["metadata"]["name"] = json!(format!("{prefix}{}", crate::store::random_suffix()));
    }
    if let Some(schema) = &rt.schema {
        let (mut causes, typed) = admit_custom(schema, obj);
        // CEL rules run on a body of the schema's types (the API server
        // reports type errors alone, as rules cannot evaluate ill-typed data).
        if typed && let Some(rules) = &rt.rules {
            causes.extend(rules.check(obj, old));
        }
        if !causes.is_empty() {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            return Err(ApiError::invalid(
                &format!("{}.{}", rt.kind, rt.group),
                name,
                causes,
            ));
        }
    }
    let creating = old.is_none();
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "pods") if creating && obj["status"]["phase"].is_null() => {
            obj["status"]["phase"] = json!("Pending");
        }
        ("", "namespaces") if creating => obj["status"]["phase"] = json!("Active"),
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            crd_type(obj)?;
        }
        _ => {}
    }
    Ok(())
}

/// Prunes, defaults and schema-checks a custom resource; returns the
/// problems and whether every value had its schema's type.
fn admit_custom(schema: &JSONSchemaProps, obj: &mut Value) -> (Vec<(String, String)>, bool) {
    // The API server handles apiVersion, kind and metadata itself.
    let keep: Vec<(String, Value)> = ["apiVersion", "kind", "metadata"]
        .iter()
        .filter_map(|k| obj.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect();
    schema::prune(schema, obj);
    karpenter_api::crd::apply_schema_defaults(schema, obj);
    for (k, v) in keep {
        obj[k] = v;
    }
    let mut body = obj.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove("metadata");
        map.remove("apiVersion");
        map.remove("kind");
    }
    let mut problems = Vec::new();
    let typed = schema::validate(schema, &body, "", &mut problems);
    (problems, typed)
}

/// The kinds a CRD object describes (one per served version), or why it is invalid.
fn crd_type(crd: &Value) -> Result<Vec<ResourceType>, ApiError> {
    let name = crd["metadata"]["name"].as_str().unwrap_or_default();
    let invalid = |field: &str, message: &str| {
        ApiError::invalid(
            "CustomResourceDefinition",
            name,
            vec![(field.into(), message.into())],
        )
    };
    let spec = &crd["spec"];
    let group = spec["group"]
        .as_str()
        .filter(|g| !g.is_empty())
        .ok_or_else(|| invalid("spec.group", "Required value"))?;
    let names = &spec["names"];
    let plural = names["plural"]
        .as_str()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| invalid("spec.names.plural", "Required value"))?;
    let kind = names["kind"]
        .as_str()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| invalid("spec.names.kind", "Required value"))?;
    if name != format!("{plural}.{group}") {
        return Err(invalid(
            "metadata.name",
            &format!("must be spec.names.plural+\".\"+spec.group ({plural}.{group})"),
        ));
    }
    let versions = spec["versions"]
        .as_array()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid("spec.versions", "must have at least one version"))?;
    if versions
        .iter()
        .filter(|v| v["storage"] == json!(true))
        .count()
        != 1
    {
        return Err(invalid(
            "spec.versions",
            "must have exactly one version marked as storage version",
        ));
    }
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let mut kinds = Vec::new();
    for (i, version) in versions
        .iter()
        .enumerate()
        .filter(|(_, v)| v["served"] != json!(false))
    {
        let schema_json = &version["schema"]["openAPIV3Schema"];
        let schema: Option<JSONSchemaProps> = if schema_json.is_null() {
            None
        } else {
            Some(serde_json::from_value(schema_json.clone()).map_err(|e| {
                invalid(
                    &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    &e.to_string(),
                )
            })?)
        };
        let rules = match &schema {
            Some(schema) => crate::cel::CelRules::compile(schema).map_err(|problems| {
                invalid(
                    &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    &format!("compilation failed: {}", problems.join("; ")),
                )
            })?,
            None => None,
        };
        let mut subresources = Vec::new();
        if version["subresources"]["status"].is_object() {
            subresources.push("status".to_string());
        }
        if version["subresources"]["scale"].is_object() {
            subresources.push("scale".to_string());
        }
        kinds.push(ResourceType {
            group: group.to_string(),
            version: version["name"].as_str().unwrap_or("v1").to_string(),
            kind: kind.to_string(),
            plural: plural.to_string(),
            singular: names["singular"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| kind.to_lowercase()),
            namespaced: spec["scope"].as_str() != Some("Cluster"),
            short_names: strings(&names["shortNames"]),
            categories: strings(&names["categories"]),
            subresources,
            printer_columns: version["additionalPrinterColumns"]
                .as_array()
                .map(|c| Arc::new(c.clone())),
            rules: rules.map(Arc::new),
            schema: Some(Arc::new(schema.unwrap_or_else(|| JSONSchemaProps {
                type_: Some("object".into()),
                x_kubernetes_preserve_unknown_fields: Some(true),
                ..Default::default()
            }))),
        });
    }
    Ok(kinds)
}

/// After a write: a CRD's kinds are served and the CRD marked Established.
pub(crate) fn after_write(sim: &Kubesim, rt: &ResourceType, obj: &Value) -> Result<(), ApiError> {
    if rt.group != "apiextensions.k8s.io" || rt.plural != "customresourcedefinitions" {
        return Ok(());
    }
    for kind in crd_type(obj)? {
        sim.inner.registry.add(kind);
    }
    let established = obj["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    });
    if established && obj["status"]["acceptedNames"] == obj["spec"]["names"] {
        return Ok(());
    }
    let mut with_status = obj.clone();
    let now = store::now();
    let condition = |type_: &str, reason: &str, message: &str| json!({"type": type_, "status": "True", "lastTransitionTime": now, "reason": reason, "message": message});
    with_status["status"] = json!({
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        ],
        "acceptedNames": obj["spec"]["names"],
        "storedVersions": obj["spec"]["versions"].as_array().into_iter().flatten()
            .filter(|v| v["storage"] == json!(true)).map(|v| v["name"].clone()).collect::<Vec<_>>(),
    });
    with_status["metadata"]
        .as_object_mut()
        .map(|m| m.remove("resourceVersion"));
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    sim.inner
        .store
        .update(rt, "", name, with_status, Part::Status)?;
    Ok(())
}

/// After a delete: a removed CRD stops serving its kinds and its objects go.
pub(crate) fn after_delete(sim: &Kubesim, rt: &ResourceType, obj: &Value) {
    if rt.group != "apiextensions.k8s.io"
        || rt.plural != "customresourcedefinitions"
        || obj["metadata"]["deletionTimestamp"].is_string()
            && obj["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
    {
        return;
    }
    let Ok(kinds) = crd_type(obj) else { return };
    for kind in kinds {
        let (items, _) = sim.inner.store.list(&kind, None);
        for item in items {
            let ns = item["metadata"]["namespace"].as_str().unwrap_or_default();
            let name = item["metadata"]["name"].as_str().unwrap_or_default();
            let _ = sim
                .inner
                .store
                .delete(&kind, ns, name, &DeleteOptions::default());
        }
        sim.inner.registry.remove(&kind.group, &kind.plural);
    }
}

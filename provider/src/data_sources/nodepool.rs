//! `karpenter_nodepool` (data source): one NodePool as the cluster has it.

use super::with;
use crate::cty::{Type, Value};
use crate::error::ResourceError;
use crate::schema::{Attribute, Block, Presence};
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};

/// Its schema.
pub fn schema() -> Block {
    let computed =
        |name, ty, description| Attribute::new(name, ty, Presence::Computed, description);
    Block {
        attributes: vec![
            Attribute::new(
                "name",
                Type::String,
                Presence::Required,
                "The NodePool's name.",
            ),
            computed(
                "spec_json",
                Type::String,
                "Its spec, as JSON (`jsondecode` it).",
            ),
            computed("status_nodes", Type::Number, "Nodes in the pool."),
            computed(
                "status_resources",
                Type::Map(Box::new(Type::String)),
                "Resources of its nodes.",
            ),
            computed(
                "status_conditions",
                Type::Map(Box::new(Type::String)),
                "Each condition's type and status.",
            ),
        ],
        blocks: Vec::new(),
        description: "Reads a NodePool from the cluster.",
    }
}

/// Reads the NodePool.
pub async fn read(config: &Value, client: &kube::Client) -> Result<Value, ResourceError> {
    let name = config.get("name").as_str().unwrap_or_default();
    let gvk = GroupVersionKind::gvk("karpenter.sh", "v1", "NodePool");
    let api: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "nodepools"),
    );
    let found = api
        .get_opt(name)
        .await
        .map_err(|e| ResourceError::kube(format_args!("reading NodePool {name}"), &e))?
        .ok_or_else(|| format!("there is no NodePool named {name:?}"))?;
    let object = serde_json::to_value(&found).map_err(|e| e.to_string())?;
    let status = &object["status"];
    let conditions = crate::resources::status::conditions();
    Ok(with(
        config,
        vec![
            ("spec_json", Value::String(object["spec"].to_string())),
            (
                "status_nodes",
                Value::Number(status["nodes"].as_i64().unwrap_or(0).into()),
            ),
            (
                "status_resources",
                crate::resources::status::string_map(status, "resources"),
            ),
            ("status_conditions", (conditions.read)(status)),
        ],
    ))
}

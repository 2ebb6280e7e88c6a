//! `karpenter_controller_policy`: the controller's IAM policy as JSON, the
//! same document `karpenter_controller_role` and `karpenter-bootstrap` use
//! (statement for statement the `terraform-aws-modules/eks` `karpenter`
//! module's), for users who manage roles themselves.

use super::with;
use crate::cty::{Type, Value};
use crate::error::ResourceError;
use crate::schema::{Attribute, Block, Presence};
use karpenter_iam::controller::{ControllerPolicy, controller_policy};

/// Its schema.
pub fn schema() -> Block {
    let input =
        |name, presence, description| Attribute::new(name, Type::String, presence, description);
    Block {
        attributes: vec![
            input(
                "cluster_name",
                Presence::Required,
                "The EKS cluster's name (statements are scoped by its tag).",
            ),
            input("region", Presence::Required, "Its region."),
            input("account_id", Presence::Required, "Its account."),
            input(
                "partition",
                Presence::Optional,
                "`aws` (default), `aws-cn` or `aws-us-gov`.",
            ),
            input(
                "node_role_arn",
                Presence::Required,
                "The node role: the only role the controller may pass.",
            ),
            input(
                "interruption_queue_arn",
                Presence::Optional,
                "The interruption queue the controller reads.",
            ),
            Attribute::new(
                "json",
                Type::String,
                Presence::Computed,
                "The policy document.",
            ),
        ],
        blocks: Vec::new(),
        description: "The Karpenter controller's IAM policy document.",
    }
}

/// Builds the document.
pub fn read(config: &Value) -> Result<Value, ResourceError> {
    let text = |name: &str| config.get(name).as_str().unwrap_or_default().to_string();
    let mut policy = ControllerPolicy::new(
        &text("cluster_name"),
        &text("region"),
        &text("account_id"),
        &text("node_role_arn"),
    );
    if let Some(partition) = config.get("partition").as_str() {
        policy.partition = partition.to_string();
    }
    policy.interruption_queue_arn = config
        .get("interruption_queue_arn")
        .as_str()
        .map(str::to_string);
    let json = serde_json::to_string(&controller_policy(&policy)).map_err(|e| e.to_string())?;
    Ok(with(config, vec![("json", Value::String(json))]))
}

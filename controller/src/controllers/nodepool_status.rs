//! NodePool status as upstream writes it, so `kubectl get nodepools` fills
//! its NODES and READY columns and GitOps health checks (Argo CD, Flux)
//! pass: `resources` (the capacity of the pool's NodeClaims, with `nodes`),
//! `nodes`, `nodeClassObservedGeneration`, and the conditions
//! `ValidationSucceeded`, `NodeClassReady` and `Ready` (both of the others).

use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::state::{Interest, pool_label};
use karpenter_api::quantity::Quantity;
use karpenter_api::v1::{
    Condition, EC2NodeClass, NodeClaim, NodePool, ec2nodeclass_conditions, find_condition,
    nodepool_conditions as cond, set_condition,
};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Why a static NodePool (`spec.replicas`) launches nothing here: its
/// `ValidationSucceeded` condition says this, and provisioning skips it.
pub const STATIC_UNSUPPORTED: &str = "spec.replicas: static NodePools need upstream's StaticCapacity feature, which this project does not have";

/// Keeps every NodePool's status current; runs until the task is dropped.
pub async fn run<C: CloudProvider + 'static>(ctx: Arc<Context<C>>) {
    let mut changes = ctx.state.waiter(Interest::AllButPods);
    loop {
        let claims = ctx.state.claims.state();
        for pool in ctx.state.pools.state() {
            if pool.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let class = ctx
                .state
                .class(&pool.spec.template.spec.node_class_ref.name);
            let (fields, conditions) = desired(&pool, &claims, class.as_deref());
            if let Err(e) = write(&ctx.client, &pool, fields, conditions).await {
                tracing::warn!(nodepool = ?pool.metadata.name, error = %e, "NodePool status");
            }
        }
        if !changes.wait(Duration::from_secs(10)).await {
            return;
        }
    }
}

/// The status fields and conditions `pool` should have.
pub fn desired(
    pool: &NodePool,
    claims: &[Arc<NodeClaim>],
    class: Option<&EC2NodeClass>,
) -> (Value, Vec<Condition>) {
    let name = pool.metadata.name.as_deref().unwrap_or_default();
    let mine: Vec<&Arc<NodeClaim>> = claims
        .iter()
        .filter(|c| pool_label(c.as_ref()) == name)
        .collect();
    let mut resources: BTreeMap<String, Quantity> = BTreeMap::new();
    for claim in &mine {
        for (resource, q) in claim
            .status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .into_iter()
            .flatten()
        {
            if let Ok(q) = q.0.parse::<Quantity>() {
                let total = resources.entry(resource.clone()).or_insert(Quantity::ZERO);
                *total = total.checked_add(q).unwrap_or(*total);
            }
        }
    }
    let nodes = mine.len() as i64;
    resources.insert("nodes".into(), Quantity::from_units(nodes));
    let wire: BTreeMap<String, String> = resources
        .iter()
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect();
    let mut fields = json!({"resources": wire, "nodes": nodes});
    let generation = pool.metadata.generation;
    let mut conditions = pool
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let valid = karpenter_api::validation::nodepool(pool)
        .map_err(|e| e.to_string())
        .and_then(|()| match pool.spec.replicas {
            Some(_) => Err(STATIC_UNSUPPORTED.to_string()),
            None => Ok(()),
        });
    let validation_message = valid.as_ref().err().cloned().unwrap_or_default();
    set_condition(
        &mut conditions,
        cond::VALIDATION_SUCCEEDED,
        valid.is_ok(),
        if valid.is_ok() {
            cond::VALIDATION_SUCCEEDED
        } else {
            "NodePoolValidationFailed"
        },
        &validation_message,
        generation,
    );
    let (class_ready, class_reason, class_message) = match class {
        None => (
            false,
            "NodeClassNotFound",
            format!(
                "EC2NodeClass {:?} not found",
                pool.spec.template.spec.node_class_ref.name
            ),
        ),
        Some(class) => {
            let ready = find_condition(
                class.status.as_ref().and_then(|s| s.conditions.as_deref()),
                ec2nodeclass_conditions::READY,
            );
            match ready {
                Some(c) if c.status == "True" => (true, cond::NODE_CLASS_READY, String::new()),
                Some(c) => (false, "NodeClassNotReady", c.message.clone()),
                None => (
                    false,
                    "NodeClassNotReady",
                    "EC2NodeClass has no Ready condition yet".into(),
                ),
            }
        }
    };
    set_condition(
        &mut conditions,
        cond::NODE_CLASS_READY,
        class_ready,
        class_reason,
        &class_message,
        generation,
    );
    let unhealthy: Vec<String> = [cond::VALIDATION_SUCCEEDED, cond::NODE_CLASS_READY]
        .iter()
        .filter(|t| find_condition(Some(&conditions), t).is_none_or(|c| c.status != "True"))
        .map(|t| format!("{t}=False"))
        .collect();
    set_condition(
        &mut conditions,
        cond::READY,
        unhealthy.is_empty(),
        if unhealthy.is_empty() {
            cond::READY
        } else {
            "UnhealthyDependents"
        },
        &unhealthy.join(", "),
        generation,
    );
    if let Some(class) = class {
        fields["nodeClassObservedGeneration"] = json!(class.metadata.generation);
    }
    (fields, conditions)
}

/// Patches the status when it differs from what it should be.
async fn write(
    client: &kube::Client,
    pool: &NodePool,
    mut fields: Value,
    conditions: Vec<Condition>,
) -> Result<(), kube::Error> {
    let current =
        serde_json::to_value(pool.status.clone().unwrap_or_default()).unwrap_or(Value::Null);
    let same_fields = fields
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| current.get(k) == Some(v));
    let current_conditions = pool
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    if same_fields && current_conditions == conditions {
        return Ok(());
    }
    fields["conditions"] = json!(conditions);
    let api: Api<NodePool> = Api::all(client.clone());
    let name = pool.metadata.name.as_deref().unwrap_or_default();
    match api
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": fields})),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

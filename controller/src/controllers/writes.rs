//! Writes several controllers share: NodeClaim status and conditions,
//! finalizers, deleting a NodeClaim with its reason counted.

use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::state::{label, pool_label};
use karpenter_api::labels;
use karpenter_api::v1::{Condition, NodeClaim, set_condition};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// One condition to set: type, status, reason, message.
pub type ConditionUpdate<'a> = (&'a str, bool, &'a str, &'a str);

/// Merges `fields` into the claim's status and sets `conditions`; writes
/// nothing when neither changes anything.
pub async fn update_claim_status<C: CloudProvider>(
    ctx: &Context<C>,
    claim: &NodeClaim,
    fields: Value,
    conditions: &[ConditionUpdate<'_>],
) -> Result<(), kube::Error> {
    let status = claim.status.clone().unwrap_or_default();
    let mut all: Vec<Condition> = status.conditions.clone().unwrap_or_default();
    let mut changed = false;
    for (type_, ok, reason, message) in conditions {
        changed |= set_condition(
            &mut all,
            type_,
            *ok,
            reason,
            message,
            claim.metadata.generation,
        );
    }
    let current = serde_json::to_value(&status).unwrap_or(Value::Null);
    let fields_change = fields
        .as_object()
        .into_iter()
        .flatten()
        .any(|(k, v)| current.get(k) != Some(v));
    if !changed && !fields_change {
        return Ok(());
    }
    let mut patch = fields;
    if changed {
        patch["conditions"] = json!(all);
    }
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let name = claim.metadata.name.as_deref().unwrap_or_default();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": patch})),
    )
    .await
    .map(|_| ())
}

/// Removes `finalizer` from a cluster-scoped object (no-op when absent or gone).
pub async fn remove_finalizer<K>(
    client: &kube::Client,
    object: &K,
    finalizer: &str,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug,
{
    let finalizers = object.meta().finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == finalizer) {
        return Ok(());
    }
    let rest: Vec<&String> = finalizers.iter().filter(|f| *f != finalizer).collect();
    let api: Api<K> = Api::all(client.clone());
    let name = object.meta().name.as_deref().unwrap_or_default();
    let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": object.meta().resource_version}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Merge-patches annotations onto the cluster-scoped object `name` (a
/// vanished object is no error).
pub async fn annotate<K>(
    client: &kube::Client,
    name: &str,
    annotations: &BTreeMap<&str, String>,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::all(client.clone());
    let patch = json!({"metadata": {"annotations": annotations}});
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes a NodeClaim (its finalizer then drains and terminates it),
/// logging `reason` and counting it in `karpenter_nodeclaims_terminated_total`
/// (by NodePool, capacity type and zone, as upstream labels it).
pub async fn delete_claim<C: CloudProvider>(
    ctx: &Context<C>,
    claim: &NodeClaim,
    reason: &str,
) -> Result<(), kube::Error> {
    if claim.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let name = claim.metadata.name.as_deref().unwrap_or_default();
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {
            tracing::info!(nodeclaim = name, reason, "NodeClaim deleted");
            ctx.metrics
                .lifecycle
                .nodeclaims_terminated
                .get_or_create(&vec![
                    ("nodepool", pool_label(claim)),
                    ("capacity_type", label(claim, labels::CAPACITY_TYPE)),
                    ("zone", label(claim, labels::ZONE)),
                ])
                .inc();
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

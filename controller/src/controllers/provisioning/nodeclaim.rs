//! A planned claim as a `karpenter.sh/v1` NodeClaim object: the NodePool's
//! template with the engine's requirements, the pods' requests, the pool's
//! hash annotation and an owner reference to the pool; and its creation.

use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::scheduling::{NewClaim, Resources};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use karpenter_api::labels;
use karpenter_api::v1::{
    NODEPOOL_HASH_VERSION, NodeClaim, NodeClaimSpec, NodeClaimTemplateSpec, NodePool,
    NodeSelectorRequirementWithMinValues, ResourceList, ResourceRequirements, WireQuantity,
};
use kube::Api;
use kube::api::PostParams;

/// Packing integers as a Kubernetes resource list (zero amounts left out).
pub fn resource_list(resources: &Resources) -> ResourceList {
    let mut out = ResourceList::new();
    let mut put = |name: &str, text: String, amount: i64| {
        if amount > 0 {
            out.insert(name.to_string(), WireQuantity(text));
        }
    };
    put(
        "cpu",
        format!("{}m", resources.cpu_milli),
        resources.cpu_milli,
    );
    put("memory", resources.memory.to_string(), resources.memory);
    put(
        "ephemeral-storage",
        resources.storage.to_string(),
        resources.storage,
    );
    put("pods", resources.pods.to_string(), resources.pods);
    for (name, amount) in &resources.extended {
        put(name, amount.to_string(), *amount);
    }
    out
}

/// The most values one requirement may list (the API's limit).
pub const MAX_VALUES: usize = 50;

/// The claim's requirements as the API accepts them: labels only the
/// controller sets (`karpenter.sh/nodepool`, carried as a label) left out,
/// and the instance-type options cut to the cheapest [`MAX_VALUES`].
fn requirements(planned: &NewClaim) -> Vec<NodeSelectorRequirementWithMinValues> {
    let mut out = planned.requirements.to_api();
    out.retain(|r| labels::restriction(&r.key).is_none());
    for r in &mut out {
        if r.key == labels::INSTANCE_TYPE && r.operator == "In" {
            r.values = Some(
                planned
                    .instance_types
                    .iter()
                    .take(MAX_VALUES)
                    .cloned()
                    .collect(),
            );
        }
    }
    out
}

/// The NodeClaim to create for `planned` from `pool`.
pub fn build(pool: &NodePool, planned: &NewClaim) -> NodeClaim {
    let name = pool.metadata.name.clone().unwrap_or_default();
    let template = &pool.spec.template;
    let metadata = template.metadata.clone().unwrap_or_default();
    let mut claim_labels = metadata.labels.unwrap_or_default();
    claim_labels.extend(planned.requirements.single_valued_labels());
    claim_labels.insert(labels::NODEPOOL.into(), name.clone());
    let mut annotations = metadata.annotations.unwrap_or_default();
    annotations.insert(
        labels::NODEPOOL_HASH_ANNOTATION.into(),
        pool.template_hash(),
    );
    // minValues are never relaxed here (MIN_VALUES_POLICY=Strict).
    annotations.insert(labels::MIN_VALUES_RELAXED_ANNOTATION.into(), "false".into());
    annotations.insert(
        labels::NODEPOOL_HASH_VERSION_ANNOTATION.into(),
        NODEPOOL_HASH_VERSION.into(),
    );
    let owner = OwnerReference {
        api_version: "karpenter.sh/v1".into(),
        kind: "NodePool".into(),
        name: name.clone(),
        uid: pool.metadata.uid.clone().unwrap_or_default(),
        block_owner_deletion: Some(true),
        controller: None,
    };
    NodeClaim {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            labels: Some(claim_labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            finalizers: Some(vec![labels::TERMINATION_FINALIZER.into()]),
            ..ObjectMeta::default()
        },
        spec: NodeClaimSpec {
            template: NodeClaimTemplateSpec {
                requirements: requirements(planned),
                ..template.spec.clone()
            },
            resources: Some(ResourceRequirements {
                requests: Some(resource_list(&planned.requests)),
            }),
        },
        status: None,
    }
}

/// Creates the planned NodeClaim, counts it in
/// `karpenter_nodeclaims_created_total` under `reason` and tells it why
/// (`Created` event). `None` when its NodePool is gone.
pub async fn create<C: CloudProvider>(
    ctx: &Context<C>,
    planned: &NewClaim,
    reason: &str,
) -> Result<Option<NodeClaim>, kube::Error> {
    let Some(pool) = ctx.state.pool(&planned.pool) else {
        return Ok(None);
    };
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let claim = api
        .create(&PostParams::default(), &build(&pool, planned))
        .await?;
    ctx.metrics
        .lifecycle
        .nodeclaims_created
        .get_or_create(&vec![
            ("reason", reason.to_string()),
            ("nodepool", planned.pool.clone()),
            ("min_values_relaxed", relaxed(&claim)),
        ])
        .inc();
    ctx.event(
        &claim,
        false,
        "Created",
        format!(
            "{reason}: for {} pods, {} instance types from ${:.4}/h",
            planned.pods.len(),
            planned.instance_types.len(),
            planned.price
        ),
    );
    Ok(Some(claim))
}

/// The claim's min-values-relaxed annotation, as its metric label.
fn relaxed(claim: &NodeClaim) -> String {
    claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::MIN_VALUES_RELAXED_ANNOTATION))
        .cloned()
        .unwrap_or_else(|| "false".into())
}

//! Drift-hash stamping (upstream's `nodepool.hash` and `nodeclass.hash`):
//! every NodePool and EC2NodeClass carries its current hash and this
//! project's hash version as annotations. When an object's version is not
//! this project's (a cluster upstream ran until now, or an algorithm
//! change), its NodeClaims stamped with another version get today's hash
//! and version instead of being drifted, unless they are already `Drifted`:
//! upstream's drift-hash versioning, which upstream applies the same way to
//! claims this project stamped after a rollback. Drift then compares hashes
//! of the same version only ([`super::disruption`]).

use crate::cloud::CloudProvider;
use crate::controllers::Context;
use crate::controllers::lifecycle::is_true;
use crate::controllers::writes::annotate;
use crate::state::{Interest, pool_label};
use crate::userdata::AmiFamily;
use karpenter_api::labels;
use karpenter_api::v1::{
    EC2NODECLASS_HASH_VERSION, EC2NodeClass, NODEPOOL_HASH_VERSION, NodeClaim, NodePool,
    nodeclaim_conditions as cond,
};
use kube::Resource;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The EC2NodeClass's drift hash, with its AMI family as resolved.
pub fn class_hash(class: &EC2NodeClass) -> String {
    class.spec_hash(&format!("{:?}", AmiFamily::of(class)))
}

/// One kind of stamped object: its annotation keys and version.
struct Stamp {
    hash_key: &'static str,
    version_key: &'static str,
    version: &'static str,
}

const POOL: Stamp = Stamp {
    hash_key: labels::NODEPOOL_HASH_ANNOTATION,
    version_key: labels::NODEPOOL_HASH_VERSION_ANNOTATION,
    version: NODEPOOL_HASH_VERSION,
};

const CLASS: Stamp = Stamp {
    hash_key: labels::EC2NODECLASS_HASH_ANNOTATION,
    version_key: labels::EC2NODECLASS_HASH_VERSION_ANNOTATION,
    version: EC2NODECLASS_HASH_VERSION,
};

fn annotation<'a, K: Resource>(object: &'a K, key: &str) -> Option<&'a str> {
    object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// Stamps `owner` (a NodePool or EC2NodeClass named `name`) with `hash`
/// and, when its version was another, first re-stamps its claims.
async fn stamp<C, K>(
    ctx: &Context<C>,
    stamp: &Stamp,
    owner: &K,
    hash: String,
    claims: &[Arc<NodeClaim>],
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let name = owner.meta().name.clone().unwrap_or_default();
    let ours = annotation(owner, stamp.version_key) == Some(stamp.version);
    if !ours {
        for claim in claims
            .iter()
            .filter(|c| annotation(c.as_ref(), stamp.version_key) != Some(stamp.version))
        {
            let mut values = BTreeMap::from([(stamp.version_key, stamp.version.to_string())]);
            // A drifted claim stays drifted: its old hash cannot be compared.
            if !is_true(claim, cond::DRIFTED) {
                values.insert(stamp.hash_key, hash.clone());
            }
            let claim_name = claim.metadata.name.as_deref().unwrap_or_default();
            annotate::<NodeClaim>(&ctx.client, claim_name, &values).await?;
            tracing::info!(nodeclaim = %claim_name, owner = %name, "hash version changed; NodeClaim re-stamped, not drifted");
        }
    }
    if !ours || annotation(owner, stamp.hash_key) != Some(hash.as_str()) {
        let values = BTreeMap::from([
            (stamp.hash_key, hash),
            (stamp.version_key, stamp.version.to_string()),
        ]);
        annotate::<K>(&ctx.client, &name, &values).await?;
    }
    Ok(())
}

/// One pass over every NodePool and EC2NodeClass.
pub async fn reconcile<C: CloudProvider>(ctx: &Context<C>) -> Result<(), kube::Error> {
    let claims = ctx.state.claims.state();
    for pool in ctx.state.pools.state() {
        let name = pool.metadata.name.clone().unwrap_or_default();
        let owned: Vec<Arc<NodeClaim>> = claims
            .iter()
            .filter(|c| pool_label(c.as_ref()) == name)
            .cloned()
            .collect();
        stamp::<C, NodePool>(ctx, &POOL, &pool, pool.template_hash(), &owned).await?;
    }
    for class in ctx.state.classes.state() {
        let name = class.metadata.name.clone().unwrap_or_default();
        let owned: Vec<Arc<NodeClaim>> = claims
            .iter()
            .filter(|c| c.spec.template.node_class_ref.name == name)
            .cloned()
            .collect();
        stamp::<C, EC2NodeClass>(ctx, &CLASS, &class, class_hash(&class), &owned).await?;
    }
    Ok(())
}

/// Stamps on every change of anything but pods (and once a minute).
pub async fn run<C: CloudProvider + 'static>(ctx: Arc<Context<C>>) {
    let mut changes = ctx.state.waiter(Interest::AllButPods);
    loop {
        if let Err(e) = reconcile(&ctx).await {
            tracing::warn!(error = %e, "stamping drift hashes failed; retrying");
        }
        if !changes.wait(Duration::from_secs(60)).await {
            return;
        }
    }
}

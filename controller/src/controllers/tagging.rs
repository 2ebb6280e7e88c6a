//! Instance tagging (upstream's `nodeclaim.tagging`): once a NodeClaim's
//! node has registered, its instance gets `Name` (the node's name, what the
//! EC2 console lists), `karpenter.sh/nodeclaim` and `eks:eks-cluster-name`
//! where they are missing, and the claim gets the `karpenter.k8s.aws/tagged`
//! and `compatibility.karpenter.k8s.aws/cluster-name-tagged` annotations, so
//! each instance is tagged once (and claims upstream already tagged are left
//! alone after a cut-over). At most one `CreateTags` a second, as upstream:
//! the call shares EC2's mutation rate limit with launches.

use crate::cloud::offerings::EKS_CLUSTER_NAME_TAG;
use crate::cloud::{CloudError, CloudProvider};
use crate::controllers::Context;
use crate::controllers::writes::annotate;
use crate::state::{Interest, deleting};
use karpenter_api::labels;
use karpenter_api::v1::NodeClaim;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The pause after each `CreateTags`.
const BETWEEN_CALLS: Duration = Duration::from_secs(1);

/// Whether the claim's instance still needs its tags: registered, not
/// being deleted, and not annotated as done.
pub fn taggable(claim: &NodeClaim) -> bool {
    let annotated = |key: &str| {
        claim
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .is_some_and(|v| v == "true")
    };
    let registered = claim.status.as_ref().is_some_and(|s| {
        s.node_name.as_deref().is_some_and(|n| !n.is_empty()) && s.provider_id.is_some()
    });
    registered
        && !deleting(claim)
        && !(annotated(labels::TAGGED_ANNOTATION)
            && annotated(labels::CLUSTER_NAME_TAGGED_ANNOTATION))
}

/// The tags a registered claim's instance should carry.
pub fn wanted_tags(claim: &NodeClaim, cluster_name: &str) -> BTreeMap<String, String> {
    let node = claim.status.as_ref().and_then(|s| s.node_name.clone());
    BTreeMap::from([
        ("Name".to_string(), node.unwrap_or_default()),
        (
            labels::NODECLAIM.to_string(),
            claim.metadata.name.clone().unwrap_or_default(),
        ),
        (EKS_CLUSTER_NAME_TAG.to_string(), cluster_name.to_string()),
    ])
}

/// Tags one claim's instance where needed and annotates the claim; whether
/// a `CreateTags` call was made.
async fn tag<C: CloudProvider>(ctx: &Context<C>, claim: &NodeClaim) -> Result<bool, CloudError> {
    let provider_id = claim
        .status
        .as_ref()
        .and_then(|s| s.provider_id.clone())
        .unwrap_or_default();
    let instance = ctx
        .metrics
        .cloud_call("Get", ctx.cloud.get(&provider_id))
        .await?;
    let missing: BTreeMap<String, String> = wanted_tags(claim, &ctx.settings.cluster_name)
        .into_iter()
        .filter(|(k, _)| !instance.tags.contains_key(k))
        .collect();
    let called = !missing.is_empty();
    if called {
        ctx.metrics
            .cloud_call("CreateTags", ctx.cloud.tag(&provider_id, &missing))
            .await?;
    }
    let name = claim.metadata.name.as_deref().unwrap_or_default();
    let done = BTreeMap::from([
        (labels::TAGGED_ANNOTATION, "true".to_string()),
        (labels::CLUSTER_NAME_TAGGED_ANNOTATION, "true".to_string()),
    ]);
    match annotate::<NodeClaim>(&ctx.client, name, &done).await {
        Ok(()) => tracing::debug!(nodeclaim = %name, tags = ?missing.keys(), "instance tagged"),
        // Tagging again is harmless: the next pass writes the annotations.
        Err(e) => {
            tracing::warn!(nodeclaim = %name, error = %e, "annotating a tagged NodeClaim failed")
        }
    }
    Ok(called)
}

/// Tags registered claims' instances on every NodeClaim change (and once a
/// minute without one, which retries failures).
pub async fn run<C: CloudProvider + 'static>(ctx: Arc<Context<C>>) {
    let mut changes = ctx.state.waiter(Interest::AllButPods);
    loop {
        let claims = ctx.state.claims.state();
        for claim in claims.iter().filter(|c| taggable(c)) {
            match tag(&ctx, claim).await {
                Ok(true) => tokio::time::sleep(BETWEEN_CALLS).await,
                Ok(false) | Err(CloudError::NotFound(_)) => {}
                Err(e) => {
                    tracing::warn!(nodeclaim = ?claim.metadata.name, error = %e, "tagging the instance failed; retrying")
                }
            }
        }
        if !changes.wait(Duration::from_secs(60)).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(annotations: serde_json::Value, node: Option<&str>, deleting: bool) -> NodeClaim {
        let mut metadata = json!({"name": "web-1", "annotations": annotations});
        if deleting {
            metadata["deletionTimestamp"] = json!("2026-12-03T07:00:00Z");
        }
        serde_json::from_value(json!({
            "apiVersion": "karpenter.sh/v1", "kind": "NodeClaim",
            "metadata": metadata,
            "spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "default"},
                     "requirements": []},
            "status": {"nodeName": node, "providerID": "aws:///us-east-1a/i-0123456789abcdef0"},
        }))
        .unwrap()
    }

    #[test]
    fn only_registered_untagged_live_claims_are_tagged() {
        let done = json!({"karpenter.k8s.aws/tagged": "true",
            "compatibility.karpenter.k8s.aws/cluster-name-tagged": "true"});
        let half = json!({"karpenter.k8s.aws/tagged": "true"});
        assert!(taggable(&claim(json!({}), Some("ip-10-0-0-1"), false)));
        assert!(
            taggable(&claim(half, Some("ip-10-0-0-1"), false)),
            "upstream tags again until both are written"
        );
        assert!(!taggable(&claim(done, Some("ip-10-0-0-1"), false)));
        assert!(!taggable(&claim(json!({}), None, false)), "not registered");
        assert!(
            !taggable(&claim(json!({}), Some("ip-10-0-0-1"), true)),
            "being deleted"
        );
        let tags = wanted_tags(&claim(json!({}), Some("ip-10-0-0-1"), false), "demo");
        assert_eq!(tags["Name"], "ip-10-0-0-1");
        assert_eq!(tags["karpenter.sh/nodeclaim"], "web-1");
        assert_eq!(tags["eks:eks-cluster-name"], "demo");
    }
}

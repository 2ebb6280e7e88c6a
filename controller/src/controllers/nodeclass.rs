//! The EC2NodeClass controller: keeps `status` (subnets, security groups, AMIs,
//! instance profile, conditions) current, and on deletion, once no NodeClaim
//! uses the class any more, removes the instance profile and launch templates
//! Karpenter made for it before letting the object go (finalizer
//! `karpenter.k8s.aws/termination`, as upstream).

use crate::cloud::{CloudError, CloudProvider};
use karpenter_api::v1::EC2NodeClass;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

/// The finalizer that holds a deleted EC2NodeClass until its AWS resources are gone.
pub const FINALIZER: &str = "karpenter.k8s.aws/termination";

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The Kubernetes API refused or failed.
    #[error("EC2NodeClass {name}: {source}")]
    Kube {
        /// The NodeClass.
        name: String,
        /// The cause.
        source: kube::Error,
    },
    /// AWS refused or failed while cleaning up.
    #[error("EC2NodeClass {name}: {source}")]
    Cloud {
        /// The NodeClass.
        name: String,
        /// The cause.
        source: CloudError,
    },
}

/// What a reconcile did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconciled {
    /// The class is gone (nothing to do).
    Absent,
    /// Status written; `ready` is its `Ready` condition.
    Resolved {
        /// True when every part resolved.
        ready: bool,
    },
    /// The class was being deleted: its instance profile is deleted and the
    /// finalizer removed.
    Finalized,
    /// The class is being deleted but these NodeClaims still use it: their
    /// nodes keep its instance profile until they are gone (upstream waits too).
    WaitingForNodeClaims(Vec<String>),
}

/// Reconciles the EC2NodeClass `name` once.
pub async fn reconcile<C: CloudProvider>(
    client: &kube::Client,
    cloud: &C,
    name: &str,
) -> Result<Reconciled, ReconcileError> {
    let classes: Api<EC2NodeClass> = Api::all(client.clone());
    let kube_err = |source| ReconcileError::Kube {
        name: name.to_string(),
        source,
    };
    let Some(class) = classes.get_opt(name).await.map_err(kube_err)? else {
        return Ok(Reconciled::Absent);
    };
    let finalizers = class.metadata.finalizers.clone().unwrap_or_default();
    let params = PatchParams::default();
    if class.metadata.deletion_timestamp.is_some() {
        if finalizers.iter().any(|f| f == FINALIZER) {
            let users = claims_of(client, name).await.map_err(kube_err)?;
            if !users.is_empty() {
                return Ok(Reconciled::WaitingForNodeClaims(users));
            }
            cloud
                .finalize_node_class(&class)
                .await
                .map_err(|source| ReconcileError::Cloud {
                    name: name.to_string(),
                    source,
                })?;
            let rest: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER).collect();
            let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": class.metadata.resource_version}});
            classes
                .patch(name, &params, &Patch::Merge(&patch))
                .await
                .map_err(kube_err)?;
        }
        return Ok(Reconciled::Finalized);
    }
    if !finalizers.iter().any(|f| f == FINALIZER) {
        let mut all = finalizers.clone();
        all.push(FINALIZER.to_string());
        let patch = json!({"metadata": {"finalizers": all, "resourceVersion": class.metadata.resource_version}});
        classes
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map_err(kube_err)?;
    }
    let status = cloud.resolve_node_class(&class).await;
    let ready = karpenter_api::v1::find_condition(status.conditions.as_deref(), "Ready")
        .is_some_and(|c| c.status == "True");
    let patch = json!({"status": status});
    classes
        .patch_status(name, &params, &Patch::Merge(&patch))
        .await
        .map_err(kube_err)?;
    Ok(Reconciled::Resolved { ready })
}

/// The NodeClaims whose `nodeClassRef` names the EC2NodeClass `name`.
async fn claims_of(client: &kube::Client, name: &str) -> Result<Vec<String>, kube::Error> {
    let claims: Api<karpenter_api::v1::NodeClaim> = Api::all(client.clone());
    Ok(claims
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|c| {
            let r = &c.spec.template.node_class_ref;
            r.name == name && r.group == "karpenter.k8s.aws"
        })
        .filter_map(|c| c.metadata.name)
        .collect())
}

/// Reconciles every class whose spec changed, that is being deleted, or that
/// was last resolved `AMI_REFRESH_INTERVAL` / `SUBNET_REFRESH_INTERVAL` ago
/// (the shorter; new AMIs, subnets and security groups appear on the AWS
/// side); runs until the task is dropped.
pub async fn run<C: CloudProvider + 'static>(ctx: std::sync::Arc<super::Context<C>>) {
    use std::collections::HashMap;
    use std::time::Instant;
    let mut resolved: HashMap<String, (Option<i64>, Instant)> = HashMap::new();
    let mut changes = ctx.state.waiter(crate::state::Interest::AllButPods);
    loop {
        for class in ctx.state.classes.state() {
            let name = class.metadata.name.clone().unwrap_or_default();
            let due = class.metadata.deletion_timestamp.is_some()
                || resolved.get(&name).is_none_or(|(generation, at)| {
                    *generation != class.metadata.generation
                        || at.elapsed() >= ctx.settings.nodeclass_refresh()
                });
            if !due {
                continue;
            }
            ctx.metrics.runtime.workers("nodeclass", 1);
            let work = reconcile(&ctx.client, ctx.cloud.as_ref(), &name);
            match ctx.metrics.runtime.reconcile("nodeclass", work).await {
                Ok(Reconciled::Resolved { ready }) => {
                    if !ready {
                        tracing::warn!(ec2nodeclass = %name, "not ready; see its status conditions");
                    }
                    resolved.insert(name, (class.metadata.generation, Instant::now()));
                }
                Ok(Reconciled::WaitingForNodeClaims(claims)) => {
                    tracing::info!(ec2nodeclass = %name, nodeclaims = claims.len(), "deleted; waiting for its NodeClaims to terminate");
                }
                Ok(_) => {
                    resolved.remove(&name);
                }
                Err(e) => tracing::warn!(error = %e, "EC2NodeClass reconcile failed"),
            }
        }
        if !changes.wait(std::time::Duration::from_secs(5)).await {
            return;
        }
    }
}

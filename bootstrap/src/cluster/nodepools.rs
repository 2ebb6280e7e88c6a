//! The first steps of a teardown, while the controller still runs:
//!
//! 1. every NodePool is deleted, the controller drains and terminates their
//!    nodes, and the bootstrap waits for the NodeClaims to be gone;
//! 2. every EC2NodeClass is deleted, the controller removes the instance
//!    profile it made for each and then its finalizer, and the bootstrap
//!    waits for them to be gone. Once the controller is uninstalled nothing
//!    would remove that finalizer, and a later `terraform destroy` (or
//!    kubectl) would leave the class terminating forever.
//!
//! Both waits end at a timeout; what is left is reported to the caller.

use crate::{Action, Change, Error, Mode};
use karpenter_api::v1::{EC2NodeClass, NodeClaim, NodePool};
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How often the objects waited for are counted.
const POLL: Duration = Duration::from_secs(2);

/// Deletes every NodePool (or says it would) and waits up to `drain` for
/// the NodeClaims to go. Returns what was deleted and how many NodeClaims
/// were still there when the wait ended (their instances are terminated
/// on the AWS side next).
pub async fn delete_and_drain(
    client: &kube::Client,
    mode: Mode,
    drain: Duration,
) -> Result<(Vec<Change>, usize), Error> {
    let deleted = delete_all::<NodePool>(client, mode, "nodepool").await?;
    let left = wait_for_none::<NodeClaim>(client, mode, drain, "nodeclaims").await?;
    Ok((deleted, left))
}

/// Deletes every EC2NodeClass (or says it would) and waits up to `timeout`
/// for the controller to finish them. Returns what was deleted and how
/// many were still there when the wait ended.
pub async fn delete_node_classes(
    client: &kube::Client,
    mode: Mode,
    timeout: Duration,
) -> Result<(Vec<Change>, usize), Error> {
    let deleted = delete_all::<EC2NodeClass>(client, mode, "ec2nodeclass").await?;
    let left = wait_for_none::<EC2NodeClass>(client, mode, timeout, "ec2nodeclasses").await?;
    Ok((deleted, left))
}

/// Deletes every object of kind `K` (in `Apply` mode); one change each.
async fn delete_all<K>(client: &kube::Client, mode: Mode, kind: &str) -> Result<Vec<Change>, Error>
where
    K: kube::Resource<Scope = kube::core::ClusterResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let mut out = Vec::new();
    for object in list_or_none::<K>(client, &format!("{kind}s")).await? {
        let name = object.meta().name.clone().unwrap_or_default();
        let resource = format!("{kind} {name}");
        if mode == Mode::Apply {
            let api: Api<K> = Api::all(client.clone());
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(Error::kube(&resource, "delete", e)),
            }
        }
        out.push(Change {
            resource,
            action: Action::Delete,
        });
    }
    Ok(out)
}

/// Waits up to `timeout` for no object of kind `K` to be left (at once in
/// `Plan` mode); returns how many are left.
async fn wait_for_none<K>(
    client: &kube::Client,
    mode: Mode,
    timeout: Duration,
    plural: &str,
) -> Result<usize, Error>
where
    K: kube::Resource<Scope = kube::core::ClusterResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let began = Instant::now();
    loop {
        let left = list_or_none::<K>(client, plural).await?.len();
        if left == 0 || mode == Mode::Plan || began.elapsed() >= timeout {
            return Ok(left);
        }
        tokio::time::sleep(POLL.min(timeout.saturating_sub(began.elapsed()))).await;
    }
}

/// Every object of kind `K`; none when its CRD is not installed (a second
/// destroy, after the first removed the CRDs).
async fn list_or_none<K>(client: &kube::Client, plural: &str) -> Result<Vec<K>, Error>
where
    K: kube::Resource<Scope = kube::core::ClusterResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::all(client.clone());
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list.items),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Vec::new()),
        Err(e) => Err(Error::kube(plural, "list", e)),
    }
}

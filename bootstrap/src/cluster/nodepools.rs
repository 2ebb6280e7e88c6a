//! The first step of a teardown: every NodePool is deleted, and the
//! controller (still running) drains and terminates their nodes; the
//! bootstrap waits for the NodeClaims to be gone, up to a timeout, before
//! anything the controller needs is taken away.

use crate::{Action, Change, Error, Mode};
use karpenter_api::v1::{NodeClaim, NodePool};
use kube::Api;
use kube::api::{DeleteParams, ListParams};
use std::time::{Duration, Instant};

/// How often the NodeClaims are counted while waiting.
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
    let pools: Api<NodePool> = Api::all(client.clone());
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let listed = pools
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::kube("nodepools", "list", e))?;
    let mut out = Vec::new();
    for pool in listed.items {
        let name = pool.metadata.name.unwrap_or_default();
        let resource = format!("nodepool {name}");
        if mode == Mode::Apply {
            match pools.delete(&name, &DeleteParams::default()).await {
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
    let began = Instant::now();
    loop {
        let left = claims
            .list(&ListParams::default())
            .await
            .map_err(|e| Error::kube("nodeclaims", "list", e))?
            .items
            .len();
        if left == 0 || mode == Mode::Plan || began.elapsed() >= drain {
            return Ok((out, left));
        }
        tokio::time::sleep(POLL.min(drain.saturating_sub(began.elapsed()))).await;
    }
}

//! Optional discovery tags: `karpenter.sh/discovery: <cluster>` on the
//! subnets and security groups named, which is how an EC2NodeClass's
//! `subnetSelectorTerms`/`securityGroupSelectorTerms` usually find them.
//! A resource already tagged for another cluster is left alone (re-pointing
//! it would take it from that cluster's Karpenter). What the bootstrap tags
//! it marks with [`SET_BY_TAG`], and `destroy` with the same inputs takes off
//! only those: a discovery tag that was there before (Terraform's, say) stays.

use super::{Account, Clients};
use crate::{Action, Change, Error, Mode};
use aws_sdk_ec2::types::{Filter, Tag};

/// The discovery tag's key.
pub const DISCOVERY_TAG: &str = "karpenter.sh/discovery";

/// Marks a discovery tag the bootstrap put on (value: the cluster).
pub const SET_BY_TAG: &str = "karpenter-bootstrap/discovery";

fn resource(id: &str) -> String {
    format!("discovery-tag {id}")
}

/// This cluster's discovery tag and the mark that the bootstrap set it.
fn discovery_tags(account: &Account) -> [Tag; 2] {
    [DISCOVERY_TAG, SET_BY_TAG].map(|key| Tag::builder().key(key).value(&account.cluster).build())
}

/// The discovery tag's value on `id`, and whether the bootstrap set it.
async fn current(c: &Clients, id: &str) -> Result<(Option<String>, bool), Error> {
    c.calls.read();
    let out = c
        .ec2
        .describe_tags()
        .filters(Filter::builder().name("resource-id").values(id).build())
        .filters(
            Filter::builder()
                .name("key")
                .values(DISCOVERY_TAG)
                .values(SET_BY_TAG)
                .build(),
        )
        .send()
        .await
        .map_err(|e| Error::aws(&resource(id), "ec2:DescribeTags", e.into_service_error()))?;
    let value = |key: &str| {
        out.tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value().map(str::to_string))
    };
    let ours = value(SET_BY_TAG).is_some();
    Ok((value(DISCOVERY_TAG), ours))
}

/// Plans or puts the discovery tag on each of `ids` (subnets, security groups).
pub async fn reconcile(
    account: &Account,
    c: &Clients,
    mode: Mode,
    ids: &[String],
) -> Result<Vec<Change>, Error> {
    let mut out = Vec::new();
    for id in ids {
        let action = match current(c, id).await?.0 {
            None => Action::Create,
            Some(v) if v == account.cluster => Action::Unchanged,
            // Another cluster finds its nodes' subnets or groups by it.
            Some(_) => Action::Foreign,
        };
        if mode == Mode::Apply && action == Action::Create {
            c.calls.write();
            c.ec2
                .create_tags()
                .resources(id)
                .set_tags(Some(discovery_tags(account).to_vec()))
                .send()
                .await
                .map_err(|e| Error::aws(&resource(id), "ec2:CreateTags", e.into_service_error()))?;
        }
        out.push(Change {
            resource: resource(id),
            action,
        });
    }
    Ok(out)
}

/// Takes this cluster's discovery tag off each of `ids`.
pub async fn remove(
    account: &Account,
    c: &Clients,
    mode: Mode,
    ids: &[String],
) -> Result<Vec<Change>, Error> {
    let mut out = Vec::new();
    for id in ids {
        let (value, ours) = current(c, id).await?;
        if value.as_deref() != Some(account.cluster.as_str()) || !ours {
            continue;
        }
        if mode == Mode::Apply {
            c.calls.write();
            c.ec2
                .delete_tags()
                .resources(id)
                .set_tags(Some(discovery_tags(account).to_vec()))
                .send()
                .await
                .map_err(|e| Error::aws(&resource(id), "ec2:DeleteTags", e.into_service_error()))?;
        }
        out.push(Change {
            resource: resource(id),
            action: Action::Delete,
        });
    }
    Ok(out)
}

//! Optional discovery tags: `karpenter.sh/discovery: <cluster>` on the
//! subnets and security groups named, which is how an EC2NodeClass's
//! `subnetSelectorTerms`/`securityGroupSelectorTerms` usually find them.
//! `destroy` with the same inputs takes the tag off again (only a tag whose
//! value is this cluster's name).

use super::{Account, Clients};
use crate::{Action, Change, Error, Mode};
use aws_sdk_ec2::types::{Filter, Tag};

/// The discovery tag's key.
pub const DISCOVERY_TAG: &str = "karpenter.sh/discovery";

fn resource(id: &str) -> String {
    format!("discovery-tag {id}")
}

/// This cluster's discovery tag.
fn discovery_tag(account: &Account) -> Tag {
    Tag::builder()
        .key(DISCOVERY_TAG)
        .value(&account.cluster)
        .build()
}

/// The discovery tag's value on `id`, if it has one.
async fn current(c: &Clients, id: &str) -> Result<Option<String>, Error> {
    c.calls.read();
    let out = c
        .ec2
        .describe_tags()
        .filters(Filter::builder().name("resource-id").values(id).build())
        .filters(Filter::builder().name("key").values(DISCOVERY_TAG).build())
        .send()
        .await
        .map_err(|e| Error::aws(&resource(id), "ec2:DescribeTags", e.into_service_error()))?;
    Ok(out
        .tags()
        .first()
        .and_then(|t| t.value().map(str::to_string)))
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
        let action = match current(c, id).await? {
            None => Action::Create,
            Some(v) if v == account.cluster => Action::Unchanged,
            Some(_) => Action::Update(vec![DISCOVERY_TAG.into()]),
        };
        if mode == Mode::Apply && action != Action::Unchanged {
            c.calls.write();
            c.ec2
                .create_tags()
                .resources(id)
                .tags(discovery_tag(account))
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
        if current(c, id).await?.as_deref() != Some(account.cluster.as_str()) {
            continue;
        }
        if mode == Mode::Apply {
            c.calls.write();
            c.ec2
                .delete_tags()
                .resources(id)
                .tags(discovery_tag(account))
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

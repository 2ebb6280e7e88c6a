//! The interruption queue: `Karpenter-<cluster>`, messages kept 300 s,
//! SQS-managed encryption, and a policy that lets EventBridge send and
//! denies plain HTTP (`karpenter_iam::queue`).

use super::{Account, Clients, cluster_tags, created_here};
use crate::{Action, Change, Error, Mode};
use aws_sdk_sqs::types::QueueAttributeName as Attr;
use karpenter_iam::queue::{queue_name, queue_policy};
use std::collections::HashMap;

/// The queue's name for the account's cluster.
pub fn name(account: &Account) -> String {
    queue_name(&account.cluster)
}

/// The queue's ARN (known before it exists, so the policy can go in with
/// the creation).
pub fn arn(account: &Account) -> String {
    format!(
        "arn:{}:sqs:{}:{}:{}",
        account.partition,
        account.region,
        account.account_id,
        name(account)
    )
}

/// The attributes the queue must have.
fn desired(account: &Account) -> Vec<(Attr, String)> {
    vec![
        (Attr::MessageRetentionPeriod, "300".into()),
        (Attr::SqsManagedSseEnabled, "true".into()),
        (Attr::Policy, queue_policy(&arn(account)).to_string()),
    ]
}

/// Whether an attribute as stored equals what it should be (policies
/// compare as JSON: AWS may reorder or reformat them).
fn same(attr: &Attr, stored: &str, wanted: &str) -> bool {
    match attr {
        Attr::Policy => {
            serde_json::from_str::<serde_json::Value>(stored).ok()
                == serde_json::from_str::<serde_json::Value>(wanted).ok()
        }
        _ => stored == wanted,
    }
}

/// The URL of the queue `name`, if it exists.
pub(crate) async fn find_url(
    c: &Clients,
    resource: &str,
    name: &str,
) -> Result<Option<String>, Error> {
    c.calls.read();
    match c.sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist()) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::aws(
            resource,
            "sqs:GetQueueUrl",
            e.into_service_error(),
        )),
    }
}

/// The queue's tags.
pub(crate) async fn tags(
    c: &Clients,
    resource: &str,
    url: &str,
) -> Result<std::collections::HashMap<String, String>, Error> {
    c.calls.read();
    Ok(c.sqs
        .list_queue_tags()
        .queue_url(url)
        .send()
        .await
        .map_err(|e| Error::aws(resource, "sqs:ListQueueTags", e.into_service_error()))?
        .tags
        .unwrap_or_default())
}

/// Plans or converges the queue; returns what it needed.
pub async fn reconcile(account: &Account, c: &Clients, mode: Mode) -> Result<Change, Error> {
    let queue = name(account);
    let resource = format!("sqs-queue {queue}");
    let url = find_url(c, &resource, &queue).await?;
    let Some(url) = url else {
        if mode == Mode::Apply {
            c.calls.write();
            c.sqs
                .create_queue()
                .queue_name(&queue)
                .set_attributes(Some(desired(account).into_iter().collect()))
                .set_tags(Some(cluster_tags(&account.cluster).into_iter().collect()))
                .send()
                .await
                .map_err(|e| Error::aws(&resource, "sqs:CreateQueue", e.into_service_error()))?;
        }
        return Ok(Change {
            resource,
            action: Action::Create,
        });
    };
    c.calls.read();
    let stored: HashMap<Attr, String> = c
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(Attr::All)
        .send()
        .await
        .map_err(|e| Error::aws(&resource, "sqs:GetQueueAttributes", e.into_service_error()))?
        .attributes
        .unwrap_or_default();
    let differing: Vec<(Attr, String)> = desired(account)
        .into_iter()
        .filter(|(attr, wanted)| !stored.get(attr).is_some_and(|s| same(attr, s, wanted)))
        .collect();
    let tags = tags(c, &resource, &url).await?;
    // A queue by this name the bootstrap did not make (upstream's
    // CloudFormation or Terraform module makes `Karpenter-<cluster>` too) is
    // used as it is: never re-tagged as ours, changed, or later deleted.
    if !created_here(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        return Ok(Change {
            resource,
            action: Action::Foreign,
        });
    }
    let missing_tags: Vec<(String, String)> = cluster_tags(&account.cluster)
        .into_iter()
        .filter(|(k, v)| tags.get(k) != Some(v))
        .collect();
    let mut fields: Vec<String> = differing
        .iter()
        .map(|(a, _)| a.as_str().to_string())
        .collect();
    if !missing_tags.is_empty() {
        fields.push("tags".into());
    }
    if mode == Mode::Apply {
        if !differing.is_empty() {
            // Every attribute goes, not only those that differ: moto drops
            // the policy when an update leaves it out (real SQS keeps it),
            // and sending it again costs nothing.
            c.calls.write();
            c.sqs
                .set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(desired(account).into_iter().collect()))
                .send()
                .await
                .map_err(|e| {
                    Error::aws(&resource, "sqs:SetQueueAttributes", e.into_service_error())
                })?;
        }
        if !missing_tags.is_empty() {
            c.calls.write();
            c.sqs
                .tag_queue()
                .queue_url(&url)
                .set_tags(Some(missing_tags.into_iter().collect()))
                .send()
                .await
                .map_err(|e| Error::aws(&resource, "sqs:TagQueue", e.into_service_error()))?;
        }
    }
    let action = if fields.is_empty() {
        Action::Unchanged
    } else {
        Action::Update(fields)
    };
    Ok(Change { resource, action })
}

/// Messages waiting in the queue (`ApproximateNumberOfMessages`); `None`
/// when the queue does not exist. A backlog that keeps growing means the
/// controller is not reading interruption events.
pub async fn backlog(account: &Account, c: &Clients) -> Result<Option<i64>, Error> {
    let resource = format!("sqs-queue {}", name(account));
    let Some(url) = find_url(c, &resource, &name(account)).await? else {
        return Ok(None);
    };
    c.calls.read();
    let out = c
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(Attr::ApproximateNumberOfMessages)
        .send()
        .await
        .map_err(|e| Error::aws(&resource, "sqs:GetQueueAttributes", e.into_service_error()))?;
    let count = out
        .attributes()
        .and_then(|a| a.get(&Attr::ApproximateNumberOfMessages))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(Some(count))
}

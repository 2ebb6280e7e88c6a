//! What the IAM role resources share: reading a role, its tags, and
//! error messages that name the missing permission.

use crate::cty::Value;
use crate::error::ResourceError;
use aws_sdk_iam::Client;
use aws_sdk_iam::types::Tag;
use std::collections::BTreeMap;

/// A list of strings as a value.
pub(super) fn strings(items: &[String]) -> Value {
    Value::List(items.iter().map(|s| Value::String(s.clone())).collect())
}

/// The `tags` attribute as a map.
pub(super) fn tags(value: &Value) -> BTreeMap<String, String> {
    match value.get("tags") {
        Value::Map(map) => map
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The tags as IAM wants them.
pub(super) fn tag_list(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    karpenter_aws::iam::tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The role named `name`, if there is one.
pub(super) async fn find(
    iam: &Client,
    name: &str,
) -> Result<Option<aws_sdk_iam::types::Role>, ResourceError> {
    karpenter_aws::iam::find_role(iam, name)
        .await
        .map_err(|e| ResourceError::iam("GetRole", e.into_service_error()))
}

/// Puts the role's tags as `planned` has them, untagging what `prior` had.
pub(super) async fn retag(
    iam: &Client,
    name: &str,
    prior: &Value,
    planned: &Value,
) -> Result<(), ResourceError> {
    let wanted = tags(planned);
    let stale: Vec<String> = tags(prior)
        .into_keys()
        .filter(|k| !wanted.contains_key(k))
        .collect();
    if !stale.is_empty() {
        iam.untag_role()
            .role_name(name)
            .set_tag_keys(Some(stale))
            .send()
            .await
            .map_err(|e| ResourceError::iam("UntagRole", e.into_service_error()))?;
    }
    if !wanted.is_empty() {
        iam.tag_role()
            .role_name(name)
            .set_tags(Some(tag_list(&wanted)))
            .send()
            .await
            .map_err(|e| ResourceError::iam("TagRole", e.into_service_error()))?;
    }
    Ok(())
}

/// The role's tags as the `tags` attribute (null when there are none and
/// the prior state had none).
pub(super) fn tags_value(role: &aws_sdk_iam::types::Role, prior: &Value) -> Value {
    let tags: BTreeMap<String, Value> = role
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), Value::String(t.value().to_string())))
        .collect();
    if tags.is_empty() && prior.get("tags") == &Value::Null {
        Value::Null
    } else {
        Value::Map(tags)
    }
}

/// Creates the role with `trust` and the planned tags, or, when it exists,
/// puts `trust` back and retags it as planned.
pub(super) async fn put_role(
    iam: &Client,
    name: &str,
    trust: &str,
    description: &str,
    prior: &Value,
    planned: &Value,
) -> Result<(), ResourceError> {
    if find(iam, name).await?.is_some() {
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(trust)
            .send()
            .await
            .map_err(|e| ResourceError::iam("UpdateAssumeRolePolicy", e.into_service_error()))?;
        return retag(iam, name, prior, planned).await;
    }
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(trust)
        .description(description)
        .set_tags(Some(tag_list(&tags(planned))))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| ResourceError::iam("CreateRole", e.into_service_error()))
}

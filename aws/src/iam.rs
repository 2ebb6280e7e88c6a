//! IAM reads and writes the programs share, returning the SDK's own typed
//! errors so each caller keeps its error type (a bootstrap step, a
//! Terraform diagnostic, a NodeClaim condition): looking up a role or an
//! instance profile that may not exist, tags as IAM takes them, and putting
//! one role into an instance profile.

use aws_sdk_iam::Client;
use aws_sdk_iam::error::SdkError;
use aws_sdk_iam::operation::add_role_to_instance_profile::AddRoleToInstanceProfileError;
use aws_sdk_iam::operation::get_instance_profile::GetInstanceProfileError;
use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_sdk_iam::operation::remove_role_from_instance_profile::RemoveRoleFromInstanceProfileError;
use aws_sdk_iam::types::{InstanceProfile, Role, Tag};

/// The role named `name`, or `None` when IAM has none (`NoSuchEntity`).
pub async fn find_role(iam: &Client, name: &str) -> Result<Option<Role>, SdkError<GetRoleError>> {
    match iam.get_role().role_name(name).send().await {
        Ok(out) => Ok(out.role),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The instance profile named `name`, or `None` when IAM has none.
pub async fn find_instance_profile(
    iam: &Client,
    name: &str,
) -> Result<Option<InstanceProfile>, SdkError<GetInstanceProfileError>> {
    match iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(out.instance_profile),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Key/value pairs as IAM's tag list.
pub fn tags<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Vec<Tag> {
    pairs
        .into_iter()
        .map(|(k, v)| {
            Tag::builder()
                .key(k)
                .value(v)
                .build()
                .expect("key and value are set")
        })
        .collect()
}

/// Why [`put_profile_role`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileRoleError {
    /// Taking out a role the profile held before.
    #[error("iam:RemoveRoleFromInstanceProfile: {0}")]
    Remove(#[from] SdkError<RemoveRoleFromInstanceProfileError>),
    /// Adding the wanted role.
    #[error("iam:AddRoleToInstanceProfile: {0}")]
    Add(#[from] SdkError<AddRoleToInstanceProfileError>),
}

/// Makes instance profile `profile`, which holds `held`, hold exactly
/// `role` (a profile holds one role): the others are taken out first.
/// Returns whether anything changed.
pub async fn put_profile_role(
    iam: &Client,
    profile: &str,
    held: &[String],
    role: &str,
) -> Result<bool, ProfileRoleError> {
    if held.len() == 1 && held[0] == role {
        return Ok(false);
    }
    for old in held.iter().filter(|r| *r != role) {
        iam.remove_role_from_instance_profile()
            .instance_profile_name(profile)
            .role_name(old)
            .send()
            .await?;
    }
    if !held.iter().any(|r| r == role) {
        iam.add_role_to_instance_profile()
            .instance_profile_name(profile)
            .role_name(role)
            .send()
            .await?;
    }
    Ok(true)
}

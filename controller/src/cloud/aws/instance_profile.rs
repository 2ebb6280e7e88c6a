//! Instance profiles for EC2NodeClasses that name a `role`: created on first
//! resolution, tagged for the cluster and the NodeClass, kept pointing at the
//! role, and deleted with the NodeClass (upstream's lifecycle). A NodeClass
//! naming an `instanceProfile` uses it as it is and never changes it.

use super::sdk::{cloud_error, error_code};
use crate::cloud::CloudError;
use crate::cloud::offerings::{EKS_CLUSTER_NAME_TAG, cluster_tag};
use karpenter_api::labels;
use karpenter_api::v1::EC2NodeClass;
use karpenter_aws::iam::ProfileRoleError;
use sha2::{Digest, Sha256};

/// The profile name for a role-based NodeClass: `<cluster>_<hash>`, stable for
/// the cluster, region and NodeClass (at most 128 characters, as IAM allows).
pub fn profile_name(cluster: &str, region: &str, class: &EC2NodeClass) -> String {
    let mut hash = Sha256::new();
    hash.update(region.as_bytes());
    hash.update(b"/");
    hash.update(
        class
            .metadata
            .name
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    );
    let digest = hash.finalize();
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    let prefix: String = cluster.chars().take(100).collect();
    format!("{prefix}_{hex}")
}

/// The IAM path the profiles of one cluster live under, so they can be listed
/// and cleaned up together.
pub fn profile_path(cluster: &str, region: &str) -> String {
    format!("/karpenter/{region}/{cluster}/")
}

/// Makes sure the NodeClass's profile exists with its role, and returns its
/// name: the named `instanceProfile`, or the managed one for `role`.
pub async fn ensure(
    iam: &aws_sdk_iam::Client,
    cluster: &str,
    region: &str,
    class: &EC2NodeClass,
) -> Result<String, CloudError> {
    if let Some(named) = &class.spec.instance_profile {
        iam.get_instance_profile()
            .instance_profile_name(named)
            .send()
            .await
            .map_err(|e| cloud_error("GetInstanceProfile", e))?;
        return Ok(named.clone());
    }
    let role = class.spec.role.as_deref().ok_or_else(|| {
        CloudError::Invalid("spec: one of role or instanceProfile is required".into())
    })?;
    let name = profile_name(cluster, region, class);
    let existing = karpenter_aws::iam::find_instance_profile(iam, &name)
        .await
        .map_err(|e| cloud_error("GetInstanceProfile", e))?;
    let roles: Vec<String> = match existing {
        Some(profile) => profile.roles.into_iter().map(|r| r.role_name).collect(),
        None => {
            let tag = |k: &str, v: &str| {
                aws_sdk_iam::types::Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .map_err(|e| CloudError::Invalid(e.to_string()))
            };
            iam.create_instance_profile()
                .instance_profile_name(&name)
                .path(profile_path(cluster, region))
                .tags(tag(&cluster_tag(cluster), "owned")?)
                .tags(tag(EKS_CLUSTER_NAME_TAG, cluster)?)
                .tags(tag(
                    labels::EC2NODECLASS,
                    class.metadata.name.as_deref().unwrap_or_default(),
                )?)
                .tags(tag(labels::REGION, region)?)
                .send()
                .await
                .map_err(|e| cloud_error("CreateInstanceProfile", e))?;
            Vec::new()
        }
    };
    // A profile holds one role: whatever the NodeClass used before is replaced.
    karpenter_aws::iam::put_profile_role(iam, &name, &roles, role)
        .await
        .map_err(|e| match e {
            ProfileRoleError::Remove(e) => cloud_error("RemoveRoleFromInstanceProfile", e),
            ProfileRoleError::Add(e) => cloud_error("AddRoleToInstanceProfile", e),
        })?;
    Ok(name)
}

/// Deletes the managed profile of a role-based NodeClass (its role detached
/// first); a profile the user named is left alone. Gone already is fine.
pub async fn delete(
    iam: &aws_sdk_iam::Client,
    cluster: &str,
    region: &str,
    class: &EC2NodeClass,
) -> Result<(), CloudError> {
    if class.spec.instance_profile.is_some() {
        return Ok(());
    }
    let name = profile_name(cluster, region, class);
    let profile = match iam
        .get_instance_profile()
        .instance_profile_name(&name)
        .send()
        .await
    {
        Ok(found) => found.instance_profile,
        Err(e) if error_code(&e) == Some("NoSuchEntity") => return Ok(()),
        Err(e) => return Err(cloud_error("GetInstanceProfile", e)),
    };
    for role in profile.into_iter().flat_map(|p| p.roles) {
        iam.remove_role_from_instance_profile()
            .instance_profile_name(&name)
            .role_name(role.role_name)
            .send()
            .await
            .map_err(|e| cloud_error("RemoveRoleFromInstanceProfile", e))?;
    }
    match iam
        .delete_instance_profile()
        .instance_profile_name(&name)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if error_code(&e) == Some("NoSuchEntity") => Ok(()),
        Err(e) => Err(cloud_error("DeleteInstanceProfile", e)),
    }
}

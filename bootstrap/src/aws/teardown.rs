//! Taking the AWS side down again, leaving nothing the bootstrap or the
//! controller made, and nothing else touched:
//!
//! 1. instances still tagged for the cluster's NodePools are terminated
//!    (`kubernetes.io/cluster/<name>: owned` with a `karpenter.sh/nodepool`
//!    tag: what the controller launched and did not clean up);
//! 2. the rules and the queue, if the bootstrap created them;
//! 3. the Pod Identity association and the node role's access entry, if
//!    the bootstrap created them;
//! 4. the roles, if the bootstrap created them, after the instance
//!    profiles of this cluster that hold the node role (the controller's,
//!    for EC2NodeClasses) are emptied and deleted;
//! 5. with IRSA, the OIDC provider, if the bootstrap created it;
//! 6. this cluster's discovery tag on the subnets and security groups named.
//!
//! Whatever carries no `app.kubernetes.io/managed-by: karpenter-bootstrap`
//! tag is reported as not ours and left.

use super::steps::{Identity, Options};
use super::{Account, Clients, created_here, discovery, eks, oidc, queue, roles, rules};
use crate::{Action, Change, Error, Mode};
use aws_sdk_ec2::types::Filter;
use karpenter_aws::interruption_rules::event_rules;

/// Plans or carries out the teardown of the AWS side: the leftover
/// instances, then [`remove_resources`].
pub async fn destroy(
    account: &Account,
    c: &Clients,
    mode: Mode,
    options: &Options,
) -> Result<Vec<Change>, Error> {
    let mut out = terminate_instances(account, c, mode).await?;
    out.extend(remove_resources(account, c, mode, options).await?);
    Ok(out)
}

/// Steps 2 to 6: everything the bootstrap created on AWS (the command
/// uninstalls the controller's release before this).
pub async fn remove_resources(
    account: &Account,
    c: &Clients,
    mode: Mode,
    options: &Options,
) -> Result<Vec<Change>, Error> {
    let mut out = Vec::new();
    for rule in event_rules() {
        out.extend(delete_rule(c, mode, &rule.name(&account.cluster)).await?);
    }
    out.extend(delete_queue(account, c, mode).await?);
    out.extend(eks::delete_pod_identity(account, c, mode, &options.service_account).await?);
    out.extend(eks::delete_access_entry(account, c, mode).await?);
    for name in [
        roles::controller_role_name(account),
        roles::node_role_name(account),
    ] {
        out.extend(delete_role(account, c, mode, &name).await?);
    }
    if let Identity::Irsa { issuer } = &options.identity {
        out.extend(oidc::delete(account, c, mode, issuer).await?);
    }
    out.extend(discovery::remove(account, c, mode, &options.discovery).await?);
    Ok(out)
}

fn gone(resource: String) -> Change {
    Change {
        resource,
        action: Action::Delete,
    }
}

fn foreign(resource: String) -> Change {
    Change {
        resource,
        action: Action::Foreign,
    }
}

/// Step 1: terminates the instances still tagged for the cluster's NodePools.
pub async fn terminate_instances(
    account: &Account,
    c: &Clients,
    mode: Mode,
) -> Result<Vec<Change>, Error> {
    let resource = "ec2-instances";
    c.calls.read();
    let found = c
        .ec2
        .describe_instances()
        .filters(
            Filter::builder()
                .name(format!("tag:kubernetes.io/cluster/{}", account.cluster))
                .values("owned")
                .build(),
        )
        .filters(
            Filter::builder()
                .name("tag-key")
                .values("karpenter.sh/nodepool")
                .build(),
        )
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(
                    ["pending", "running", "stopping", "stopped"]
                        .map(String::from)
                        .to_vec(),
                ))
                .build(),
        )
        .send()
        .await
        .map_err(|e| Error::aws(resource, "ec2:DescribeInstances", e.into_service_error()))?;
    let ids: Vec<String> = found
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    if mode == Mode::Apply {
        c.calls.write();
        c.ec2
            .terminate_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
            .map_err(|e| Error::aws(resource, "ec2:TerminateInstances", e.into_service_error()))?;
    }
    Ok(ids
        .into_iter()
        .map(|id| gone(format!("ec2-instance {id}")))
        .collect())
}

async fn delete_rule(c: &Clients, mode: Mode, name: &str) -> Result<Option<Change>, Error> {
    let resource = format!("eventbridge-rule {name}");
    let err = |call: &'static str, e: aws_sdk_eventbridge::Error| Error::aws(&resource, call, e);
    let Some(found) = rules::find(c, &resource, name).await? else {
        return Ok(None);
    };
    let tags = rules::tags(c, &resource, found.arn().unwrap_or_default()).await?;
    let ours = created_here(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if !ours {
        return Ok(Some(foreign(resource)));
    }
    if mode == Mode::Apply {
        c.calls.write();
        c.events
            .remove_targets()
            .rule(name)
            .ids(rules::TARGET_ID)
            .send()
            .await
            .map_err(|e| err("events:RemoveTargets", e.into()))?;
        c.calls.write();
        c.events
            .delete_rule()
            .name(name)
            .send()
            .await
            .map_err(|e| err("events:DeleteRule", e.into()))?;
    }
    Ok(Some(gone(resource)))
}

async fn delete_queue(account: &Account, c: &Clients, mode: Mode) -> Result<Option<Change>, Error> {
    let name = queue::name(account);
    let resource = format!("sqs-queue {name}");
    let Some(url) = queue::find_url(c, &resource, &name).await? else {
        return Ok(None);
    };
    let tags = queue::tags(c, &resource, &url).await?;
    if !created_here(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        return Ok(Some(foreign(resource)));
    }
    if mode == Mode::Apply {
        c.calls.write();
        c.sqs
            .delete_queue()
            .queue_url(&url)
            .send()
            .await
            .map_err(|e| Error::aws(&resource, "sqs:DeleteQueue", e.into_service_error()))?;
    }
    Ok(Some(gone(resource)))
}

async fn delete_role(
    account: &Account,
    c: &Clients,
    mode: Mode,
    name: &str,
) -> Result<Vec<Change>, Error> {
    let resource = format!("iam-role {name}");
    let err = |call: &'static str, e: aws_sdk_iam::Error| Error::aws(&resource, call, e);
    let Some(role) = roles::find(c, &resource, name).await? else {
        return Ok(Vec::new());
    };
    if !roles::is_ours(&role) {
        return Ok(vec![foreign(resource)]);
    }
    let mut out = Vec::new();
    c.calls.read();
    let profiles = c
        .iam
        .list_instance_profiles_for_role()
        .role_name(name)
        .send()
        .await
        .map_err(|e| err("iam:ListInstanceProfilesForRole", e.into()))?;
    let cluster_tag = format!("kubernetes.io/cluster/{}", account.cluster);
    let of_cluster = |profile: &aws_sdk_iam::types::InstanceProfile| {
        profile
            .tags()
            .iter()
            .any(|t| t.key() == cluster_tag && t.value() == "owned")
    };
    // A profile of another cluster (or of no cluster) still holds the role:
    // the role is in use there, so it stays, and so does that profile.
    let elsewhere: Vec<&str> = profiles
        .instance_profiles()
        .iter()
        .filter(|p| !of_cluster(p))
        .map(|p| p.instance_profile_name())
        .collect();
    for profile in profiles
        .instance_profiles()
        .iter()
        .filter(|p| of_cluster(p))
    {
        let profile_name = profile.instance_profile_name();
        if mode == Mode::Apply {
            c.calls.write();
            c.iam
                .remove_role_from_instance_profile()
                .instance_profile_name(profile_name)
                .role_name(name)
                .send()
                .await
                .map_err(|e| err("iam:RemoveRoleFromInstanceProfile", e.into()))?;
            c.calls.write();
            c.iam
                .delete_instance_profile()
                .instance_profile_name(profile_name)
                .send()
                .await
                .map_err(|e| err("iam:DeleteInstanceProfile", e.into()))?;
        }
        out.push(gone(format!("iam-instance-profile {profile_name}")));
    }
    if !elsewhere.is_empty() {
        out.push(Change {
            resource: format!(
                "{resource} (in use by instance profiles {})",
                elsewhere.join(", ")
            ),
            action: Action::Foreign,
        });
        return Ok(out);
    }
    if mode == Mode::Apply {
        c.calls.read();
        let inline = c
            .iam
            .list_role_policies()
            .role_name(name)
            .send()
            .await
            .map_err(|e| err("iam:ListRolePolicies", e.into()))?;
        for policy in inline.policy_names() {
            c.calls.write();
            c.iam
                .delete_role_policy()
                .role_name(name)
                .policy_name(policy)
                .send()
                .await
                .map_err(|e| err("iam:DeleteRolePolicy", e.into()))?;
        }
        c.calls.read();
        let attached = c
            .iam
            .list_attached_role_policies()
            .role_name(name)
            .send()
            .await
            .map_err(|e| err("iam:ListAttachedRolePolicies", e.into()))?;
        for policy in attached.attached_policies() {
            c.calls.write();
            c.iam
                .detach_role_policy()
                .role_name(name)
                .set_policy_arn(policy.policy_arn().map(str::to_string))
                .send()
                .await
                .map_err(|e| err("iam:DetachRolePolicy", e.into()))?;
        }
        c.calls.write();
        c.iam
            .delete_role()
            .role_name(name)
            .send()
            .await
            .map_err(|e| err("iam:DeleteRole", e.into()))?;
    }
    out.push(gone(resource));
    Ok(out)
}

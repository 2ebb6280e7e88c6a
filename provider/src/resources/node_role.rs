//! `karpenter_node_role`: the IAM role Karpenter's nodes run as. EC2 may
//! assume it; the managed policies a node needs are attached (worker node,
//! the VPC CNI's for IPv4 or an inline IPv6 CNI policy, ECR pull-only and,
//! with `ssm`, Session Manager's), optionally with an instance profile of
//! the same name. Documents come from `karpenter-iam`, as the bootstrap's.
//! The role's attachments are the provider's: one attached or detached by
//! hand is planned back.

use super::crd::Problem;
use super::iam::{find, put_role, strings, tag_list, tags, tags_value};
use crate::cty::{Type, Value};
use crate::error::ResourceError;
use crate::schema::{Attribute, Block, Presence};
use aws_sdk_iam::Client;
use karpenter_iam::node::{
    CNI_IPV6_POLICY_NAME, IpFamily, cni_ipv6_policy, node_managed_policy_arns, node_trust,
};
use std::collections::BTreeMap;

/// The resource type name.
pub const TYPE_NAME: &str = "karpenter_node_role";

/// Its schema.
pub fn schema() -> Block {
    let attr = Attribute::new;
    Block {
        attributes: vec![
            attr(
                "name",
                Type::String,
                Presence::Required,
                "The role's name; changing it replaces the role.",
            ),
            attr(
                "ip_family",
                Type::String,
                Presence::OptionalComputed,
                "`ipv4` (default) or `ipv6`: which VPC CNI rights nodes get.",
            ),
            attr(
                "ssm",
                Type::Bool,
                Presence::OptionalComputed,
                "Attach Session Manager's policy (default false).",
            ),
            attr(
                "create_instance_profile",
                Type::Bool,
                Presence::OptionalComputed,
                "Also create an instance profile of the same name holding the role (default false).",
            ),
            attr(
                "tags",
                Type::Map(Box::new(Type::String)),
                Presence::Optional,
                "Tags on the role (and instance profile).",
            ),
            attr("id", Type::String, Presence::Computed, "The role's name."),
            attr("arn", Type::String, Presence::Computed, "The role's ARN."),
            attr(
                "managed_policy_arns",
                Type::List(Box::new(Type::String)),
                Presence::Computed,
                "The policies attached to it.",
            ),
            attr(
                "instance_profile_name",
                Type::String,
                Presence::Computed,
                "The instance profile's name, when there is one.",
            ),
        ],
        blocks: Vec::new(),
        description: "The IAM role Karpenter's nodes run as.",
    }
}

fn family(value: &Value) -> Result<IpFamily, String> {
    match value.get("ip_family").as_str().unwrap_or("ipv4") {
        "ipv4" => Ok(IpFamily::Ipv4),
        "ipv6" => Ok(IpFamily::Ipv6),
        other => Err(format!("must be ipv4 or ipv6, not {other:?}")),
    }
}

fn flag(value: &Value, name: &str) -> bool {
    value.get(name) == &Value::Bool(true)
}

/// The policies the configuration asks for.
fn wanted(value: &Value, partition: &str) -> Result<Vec<String>, String> {
    Ok(node_managed_policy_arns(
        partition,
        family(value)?,
        flag(value, "ssm"),
    ))
}

/// Plans the role (no AWS call): defaults filled, attachments known.
pub fn plan(
    prior: &Value,
    proposed: &Value,
    partition: &str,
) -> Result<(Value, bool), Vec<Problem>> {
    let problem = |attr: &str, detail: String| Problem {
        summary: format!("invalid {attr}"),
        detail,
        path: vec![crate::mapping::PathStep::Attribute(attr.into())],
    };
    let mut planned = proposed.clone();
    let Value::Map(map) = &mut planned else {
        return Ok((planned, false));
    };
    for (name, default) in [
        ("ip_family", Value::String("ipv4".into())),
        ("ssm", Value::Bool(false)),
        ("create_instance_profile", Value::Bool(false)),
    ] {
        if map.get(name) == Some(&Value::Null) {
            map.insert(name.into(), default);
        }
    }
    let snapshot = Value::Map(map.clone());
    if !snapshot.has_unknown() {
        let arns = wanted(&snapshot, partition).map_err(|e| vec![problem("ip_family", e)])?;
        // The same policies in another order (as AWS lists them) are no change.
        let prior_arns = prior.get("managed_policy_arns");
        let same = match prior_arns {
            Value::List(items) => {
                let mut have: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
                let mut want: Vec<&str> = arns.iter().map(String::as_str).collect();
                have.sort_unstable();
                want.sort_unstable();
                have == want
            }
            _ => false,
        };
        let listed = if same {
            prior_arns.clone()
        } else {
            strings(&arns)
        };
        map.insert("managed_policy_arns".into(), listed);
    } else {
        map.insert("managed_policy_arns".into(), Value::Unknown);
    }
    let name = snapshot.get("name").clone();
    map.insert("id".into(), name.clone());
    let profile = match snapshot.get("create_instance_profile") {
        Value::Bool(true) => name.clone(),
        Value::Bool(false) => Value::Null,
        _ => Value::Unknown,
    };
    map.insert("instance_profile_name".into(), profile);
    let replace = matches!(prior, Value::Map(_)) && prior.get("name") != &name;
    let arn = match prior {
        Value::Map(_) if !replace => prior.get("arn").clone(),
        _ => Value::Unknown,
    };
    map.insert("arn".into(), arn);
    Ok((planned, replace))
}

/// Creates or updates the role as planned; returns the new state.
pub async fn apply(
    iam: &Client,
    prior: &Value,
    planned: &Value,
    partition: &str,
) -> Result<Value, ResourceError> {
    let name = planned
        .get("name")
        .as_str()
        .ok_or("name is unknown at apply")?
        .to_string();
    let trust = node_trust(partition).to_string();
    put_role(
        iam,
        &name,
        &trust,
        "Karpenter nodes (terraform-provider-karpenter)",
        prior,
        planned,
    )
    .await?;
    let wanted = wanted(planned, partition)?;
    let attached = attached(iam, &name).await?;
    for arn in wanted.iter().filter(|a| !attached.contains(a)) {
        iam.attach_role_policy()
            .role_name(&name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| ResourceError::iam("AttachRolePolicy", e.into_service_error()))?;
    }
    for arn in attached.iter().filter(|a| !wanted.contains(a)) {
        iam.detach_role_policy()
            .role_name(&name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| ResourceError::iam("DetachRolePolicy", e.into_service_error()))?;
    }
    if family(planned)? == IpFamily::Ipv6 {
        iam.put_role_policy()
            .role_name(&name)
            .policy_name(CNI_IPV6_POLICY_NAME)
            .policy_document(cni_ipv6_policy(partition).to_string())
            .send()
            .await
            .map_err(|e| ResourceError::iam("PutRolePolicy", e.into_service_error()))?;
    } else if has_ipv6_policy(iam, &name).await? {
        delete_ipv6_policy(iam, &name).await?;
    }
    let want_profile = flag(planned, "create_instance_profile");
    let has_profile = profile_holds(iam, &name).await?;
    if want_profile && !has_profile {
        create_profile(iam, &name, tag_list(&tags(planned))).await?;
    } else if !want_profile && has_profile {
        delete_profile(iam, &name).await?;
    }
    read(iam, planned).await?.ok_or_else(|| ResourceError::Iam {
        call: "GetRole",
        message: format!("role {name} vanished right after it was applied"),
        retryable: true,
    })
}

async fn attached(iam: &Client, name: &str) -> Result<Vec<String>, ResourceError> {
    let out = iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| ResourceError::iam("ListAttachedRolePolicies", e.into_service_error()))?;
    Ok(out
        .attached_policies()
        .iter()
        .filter_map(|p| p.policy_arn().map(str::to_string))
        .collect())
}

async fn has_ipv6_policy(iam: &Client, name: &str) -> Result<bool, ResourceError> {
    let out = iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .map_err(|e| ResourceError::iam("ListRolePolicies", e.into_service_error()))?;
    Ok(out.policy_names().iter().any(|p| p == CNI_IPV6_POLICY_NAME))
}

async fn delete_ipv6_policy(iam: &Client, name: &str) -> Result<(), ResourceError> {
    iam.delete_role_policy()
        .role_name(name)
        .policy_name(CNI_IPV6_POLICY_NAME)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| ResourceError::iam("DeleteRolePolicy", e.into_service_error()))
}

/// Whether the instance profile named like the role exists and holds it.
async fn profile_holds(iam: &Client, name: &str) -> Result<bool, ResourceError> {
    let profile = karpenter_aws::iam::find_instance_profile(iam, name)
        .await
        .map_err(|e| ResourceError::iam("GetInstanceProfile", e.into_service_error()))?;
    Ok(profile.is_some_and(|p| p.roles().iter().any(|r| r.role_name() == name)))
}

async fn create_profile(
    iam: &Client,
    name: &str,
    tags: Vec<aws_sdk_iam::types::Tag>,
) -> Result<(), ResourceError> {
    match iam
        .create_instance_profile()
        .instance_profile_name(name)
        .set_tags(Some(tags))
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_entity_already_exists_exception()) => {}
        Err(e) => {
            return Err(ResourceError::iam(
                "CreateInstanceProfile",
                e.into_service_error(),
            ));
        }
    }
    iam.add_role_to_instance_profile()
        .instance_profile_name(name)
        .role_name(name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| ResourceError::iam("AddRoleToInstanceProfile", e.into_service_error()))
}

async fn delete_profile(iam: &Client, name: &str) -> Result<(), ResourceError> {
    iam.remove_role_from_instance_profile()
        .instance_profile_name(name)
        .role_name(name)
        .send()
        .await
        .map_err(|e| ResourceError::iam("RemoveRoleFromInstanceProfile", e.into_service_error()))?;
    iam.delete_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| ResourceError::iam("DeleteInstanceProfile", e.into_service_error()))
}

/// The role as it is, shaped like `prior`; `None` when it is gone.
pub async fn read(iam: &Client, prior: &Value) -> Result<Option<Value>, ResourceError> {
    let name = prior.get("name").as_str().unwrap_or_default().to_string();
    let Some(role) = find(iam, &name).await? else {
        return Ok(None);
    };
    let attached = attached(iam, &name).await?;
    let ipv6 = has_ipv6_policy(iam, &name).await?;
    let ssm = attached
        .iter()
        .any(|a| a.ends_with("/AmazonSSMManagedInstanceCore"));
    let profile = profile_holds(iam, &name).await?;
    // Same attachments in another order read as the prior order.
    let mut listed = match prior.get("managed_policy_arns") {
        Value::List(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let (mut a, mut b) = (listed.clone(), attached.clone());
    a.sort();
    b.sort();
    if a != b {
        listed = attached;
    }
    let tags = tags_value(&role, prior);
    let state = BTreeMap::from([
        ("name".to_string(), Value::String(name.clone())),
        ("id".to_string(), Value::String(name.clone())),
        ("arn".to_string(), Value::String(role.arn().to_string())),
        (
            "ip_family".to_string(),
            Value::String(if ipv6 { "ipv6" } else { "ipv4" }.into()),
        ),
        ("ssm".to_string(), Value::Bool(ssm)),
        ("create_instance_profile".to_string(), Value::Bool(profile)),
        ("tags".to_string(), tags),
        ("managed_policy_arns".to_string(), strings(&listed)),
        (
            "instance_profile_name".to_string(),
            if profile {
                Value::String(name)
            } else {
                Value::Null
            },
        ),
    ]);
    Ok(Some(Value::Map(state)))
}

/// Deletes the role: its instance profile, attachments and inline
/// policies first. Gone already is fine.
pub async fn delete(iam: &Client, prior: &Value) -> Result<(), ResourceError> {
    let name = prior.get("name").as_str().unwrap_or_default().to_string();
    if find(iam, &name).await?.is_none() {
        return Ok(());
    }
    if profile_holds(iam, &name).await? {
        delete_profile(iam, &name).await?;
    }
    for arn in attached(iam, &name).await? {
        iam.detach_role_policy()
            .role_name(&name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| ResourceError::iam("DetachRolePolicy", e.into_service_error()))?;
    }
    if has_ipv6_policy(iam, &name).await? {
        delete_ipv6_policy(iam, &name).await?;
    }
    iam.delete_role()
        .role_name(&name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| ResourceError::iam("DeleteRole", e.into_service_error()))
}

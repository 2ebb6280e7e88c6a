//! The node role and the controller role.
//!
//! - `KarpenterNodeRole-<cluster>`: EC2 may assume it; the AWS-managed
//!   policies a node needs are attached.
//! - `KarpenterController-<cluster>`: EKS Pod Identity (or, with IRSA, the
//!   controller's service account through the OIDC provider) may assume it; the
//!   controller policy (`karpenter_iam::controller`) is its inline policy,
//!   passing only the node role and reading only the interruption queue.
//!
//! A role of that name the bootstrap did not create (no
//! `app.kubernetes.io/managed-by: karpenter-bootstrap` tag) is used as it
//! is and never changed: it is somebody else's.

use super::{Account, Clients, cluster_tags, created_here};
use crate::{Action, Change, Error, Mode};
use aws_sdk_iam::types::Tag;
use karpenter_iam::controller::{
    ControllerPolicy, ControllerTrust, controller_policy, controller_trust,
};
use karpenter_iam::node::{IpFamily, node_managed_policy_arns, node_trust};
use karpenter_iam::parse_document;
use serde_json::Value;

/// The name of the controller role's inline policy.
pub const CONTROLLER_POLICY_NAME: &str = "KarpenterControllerPolicy";

/// A role as it should be.
pub struct RoleSpec {
    /// Its name.
    pub name: String,
    /// Its trust policy.
    pub trust: Value,
    /// AWS-managed (or other) policies attached by ARN.
    pub attached: Vec<String>,
    /// Inline policies: name and document.
    pub inline: Vec<(String, Value)>,
}

/// The node role's name for the account's cluster.
pub fn node_role_name(account: &Account) -> String {
    account.node_role.clone()
}

/// The controller role's name for the account's cluster.
pub fn controller_role_name(account: &Account) -> String {
    account.controller_role.clone()
}

/// The node role's ARN.
pub fn node_role_arn(account: &Account) -> String {
    format!(
        "arn:{}:iam::{}:role/{}",
        account.partition,
        account.account_id,
        node_role_name(account)
    )
}

/// The node role: EC2 trust, the managed policies of an IPv4 cluster
/// (`ssm` adds Session Manager's).
pub fn node_role(account: &Account, ssm: bool) -> RoleSpec {
    RoleSpec {
        name: node_role_name(account),
        trust: node_trust(&account.partition),
        attached: node_managed_policy_arns(&account.partition, IpFamily::Ipv4, ssm),
        inline: Vec::new(),
    }
}

/// The controller role's ARN.
pub fn controller_role_arn(account: &Account) -> String {
    format!(
        "arn:{}:iam::{}:role/{}",
        account.partition,
        account.account_id,
        controller_role_name(account)
    )
}

/// The controller role: `trust` (Pod Identity or IRSA), the controller
/// policy inline.
pub fn controller_role(account: &Account, trust: &ControllerTrust) -> RoleSpec {
    let policy = ControllerPolicy {
        partition: account.partition.clone(),
        interruption_queue_arn: Some(super::queue::arn(account)),
        ..ControllerPolicy::new(
            &account.cluster,
            &account.region,
            &account.account_id,
            &node_role_arn(account),
        )
    };
    RoleSpec {
        name: controller_role_name(account),
        trust: controller_trust(trust),
        attached: Vec::new(),
        inline: vec![(CONTROLLER_POLICY_NAME.into(), controller_policy(&policy))],
    }
}

fn iam_tags(account: &Account) -> Vec<Tag> {
    karpenter_aws::iam::tags(cluster_tags(&account.cluster))
}

/// The role named `name`, if there is one.
pub(crate) async fn find(
    c: &Clients,
    resource: &str,
    name: &str,
) -> Result<Option<aws_sdk_iam::types::Role>, Error> {
    c.calls.read();
    karpenter_aws::iam::find_role(&c.iam, name)
        .await
        .map_err(|e| Error::aws(resource, "iam:GetRole", e.into_service_error()))
}

/// Whether the bootstrap created the role (it carries [`super::MANAGED_BY`]).
pub(crate) fn is_ours(role: &aws_sdk_iam::types::Role) -> bool {
    created_here(role.tags().iter().map(|t| (t.key(), t.value())))
}

/// Attaches the policy `arn` to the role.
async fn attach(c: &Clients, resource: &str, role: &str, arn: &str) -> Result<(), Error> {
    c.calls.write();
    c.iam
        .attach_role_policy()
        .role_name(role)
        .policy_arn(arn)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::aws(resource, "iam:AttachRolePolicy", e.into_service_error()))
}

/// Writes the role's inline policy `name`.
async fn put_inline(
    c: &Clients,
    resource: &str,
    role: &str,
    (name, document): &(String, Value),
) -> Result<(), Error> {
    c.calls.write();
    c.iam
        .put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(document.to_string())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| Error::aws(resource, "iam:PutRolePolicy", e.into_service_error()))
}

/// Plans or converges a role; returns what it needed.
pub async fn reconcile(
    account: &Account,
    c: &Clients,
    mode: Mode,
    spec: &RoleSpec,
) -> Result<Change, Error> {
    let resource = format!("iam-role {}", spec.name);
    let err = |call: &'static str, e: aws_sdk_iam::Error| Error::aws(&resource, call, e);
    let Some(role) = find(c, &resource, &spec.name).await? else {
        if mode == Mode::Apply {
            c.calls.write();
            c.iam
                .create_role()
                .role_name(&spec.name)
                .assume_role_policy_document(spec.trust.to_string())
                .set_tags(Some(iam_tags(account)))
                .send()
                .await
                .map_err(|e| err("iam:CreateRole", e.into()))?;
            for arn in &spec.attached {
                attach(c, &resource, &spec.name, arn).await?;
            }
            for inline in &spec.inline {
                put_inline(c, &resource, &spec.name, inline).await?;
            }
        }
        return Ok(Change {
            resource,
            action: Action::Create,
        });
    };
    if !is_ours(&role) {
        return Ok(Change {
            resource,
            action: Action::Foreign,
        });
    }
    let mut fields = Vec::new();
    let trust_ok = role
        .assume_role_policy_document()
        .and_then(parse_document)
        .is_some_and(|t| t == spec.trust);
    if !trust_ok {
        fields.push("trust policy".to_string());
        if mode == Mode::Apply {
            c.calls.write();
            c.iam
                .update_assume_role_policy()
                .role_name(&spec.name)
                .policy_document(spec.trust.to_string())
                .send()
                .await
                .map_err(|e| err("iam:UpdateAssumeRolePolicy", e.into()))?;
        }
    }
    c.calls.read();
    let attached = c
        .iam
        .list_attached_role_policies()
        .role_name(&spec.name)
        .send()
        .await
        .map_err(|e| err("iam:ListAttachedRolePolicies", e.into()))?;
    for arn in &spec.attached {
        if attached
            .attached_policies()
            .iter()
            .any(|p| p.policy_arn() == Some(arn.as_str()))
        {
            continue;
        }
        fields.push(format!("attach {arn}"));
        if mode == Mode::Apply {
            attach(c, &resource, &spec.name, arn).await?;
        }
    }
    for inline in &spec.inline {
        c.calls.read();
        let stored = match c
            .iam
            .get_role_policy()
            .role_name(&spec.name)
            .policy_name(&inline.0)
            .send()
            .await
        {
            Ok(out) => parse_document(out.policy_document()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                None
            }
            Err(e) => return Err(err("iam:GetRolePolicy", e.into())),
        };
        if stored.as_ref() == Some(&inline.1) {
            continue;
        }
        fields.push(format!("policy {}", inline.0));
        if mode == Mode::Apply {
            put_inline(c, &resource, &spec.name, inline).await?;
        }
    }
    let action = if fields.is_empty() {
        Action::Unchanged
    } else {
        Action::Update(fields)
    };
    Ok(Change { resource, action })
}

/// The node role's instance profile name, for EC2NodeClasses that name
/// an instance profile instead of a role.
pub fn instance_profile_name(account: &Account) -> String {
    format!("KarpenterNodeInstanceProfile-{}", account.cluster)
}

/// Plans or converges the node role's instance profile (created tagged,
/// holding the node role). One the bootstrap did not create is left alone.
pub async fn reconcile_instance_profile(
    account: &Account,
    c: &Clients,
    mode: Mode,
) -> Result<Change, Error> {
    let name = instance_profile_name(account);
    let role = node_role_name(account);
    let resource = format!("iam-instance-profile {name}");
    let err = |call: &'static str, e: aws_sdk_iam::Error| Error::aws(&resource, call, e);
    c.calls.read();
    let profile = karpenter_aws::iam::find_instance_profile(&c.iam, &name)
        .await
        .map_err(|e| err("iam:GetInstanceProfile", e.into()))?;
    let action = match &profile {
        None => Action::Create,
        Some(p) if !created_here(p.tags().iter().map(|t| (t.key(), t.value()))) => {
            return Ok(Change {
                resource,
                action: Action::Foreign,
            });
        }
        Some(p) if p.roles().iter().any(|r| r.role_name() == role) => Action::Unchanged,
        Some(_) => Action::Update(vec!["role".into()]),
    };
    if mode == Mode::Apply && action != Action::Unchanged {
        if action == Action::Create {
            c.calls.write();
            c.iam
                .create_instance_profile()
                .instance_profile_name(&name)
                .set_tags(Some(iam_tags(account)))
                .send()
                .await
                .map_err(|e| err("iam:CreateInstanceProfile", e.into()))?;
        }
        c.calls.write();
        c.iam
            .add_role_to_instance_profile()
            .instance_profile_name(&name)
            .role_name(&role)
            .send()
            .await
            .map_err(|e| err("iam:AddRoleToInstanceProfile", e.into()))?;
    }
    Ok(Change { resource, action })
}

//! `karpenter_controller_role`: the IAM role the Karpenter controller runs
//! as. Its trust is EKS Pod Identity, or IRSA for one service account when
//! `irsa_oidc_provider_arn` is set; its policy is `karpenter-iam`'s
//! controller policy (statement for statement the `terraform-aws-modules/eks`
//! `karpenter` module's: scoped to the cluster, `iam:PassRole` only for the
//! node role), inline or, with `policy_mode = "managed"`, as a managed
//! policy `<name>-policy` attached to it (IAM's inline size limit is per
//! role). A policy or trust edited by hand is planned back.

use super::crd::Problem;
use super::iam::{find, put_role, tag_list, tags, tags_value};
use crate::cty::{Type, Value};
use crate::error::ResourceError;
use crate::mapping::PathStep;
use crate::schema::{Attribute, Block, Presence};
use aws_sdk_iam::Client;
use karpenter_iam::controller::{
    ControllerPolicy, ControllerTrust, controller_policy, controller_trust,
};
use karpenter_iam::parse_document;
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// The resource type name.
pub const TYPE_NAME: &str = "karpenter_controller_role";

/// The inline policy's name (the bootstrap's too).
const INLINE_POLICY: &str = "KarpenterControllerPolicy";

/// Its schema.
pub fn schema() -> Block {
    let attr = Attribute::new;
    let s = Type::String;
    Block {
        attributes: vec![
            attr(
                "name",
                s.clone(),
                Presence::Required,
                "The role's name; changing it replaces the role.",
            ),
            attr(
                "cluster_name",
                s.clone(),
                Presence::Required,
                "The EKS cluster's name (the policy is scoped by its tag).",
            ),
            attr(
                "node_role_arn",
                s.clone(),
                Presence::Required,
                "The node role: the only role the controller may pass.",
            ),
            attr(
                "interruption_queue_arn",
                s.clone(),
                Presence::Optional,
                "The interruption queue the controller reads.",
            ),
            attr(
                "region",
                s.clone(),
                Presence::OptionalComputed,
                "The cluster's region (default: the provider's).",
            ),
            attr(
                "account_id",
                s.clone(),
                Presence::OptionalComputed,
                "The cluster's account (default: the node role's).",
            ),
            attr(
                "policy_mode",
                s.clone(),
                Presence::OptionalComputed,
                "`inline` (default) or `managed` (a policy `<name>-policy`).",
            ),
            attr(
                "irsa_oidc_provider_arn",
                s.clone(),
                Presence::Optional,
                "Use IRSA through this OIDC provider instead of EKS Pod Identity.",
            ),
            attr(
                "irsa_namespace",
                s.clone(),
                Presence::OptionalComputed,
                "IRSA: the controller's namespace (default `kube-system`).",
            ),
            attr(
                "irsa_service_account",
                s.clone(),
                Presence::OptionalComputed,
                "IRSA: its service account (default `karpenter`).",
            ),
            attr(
                "tags",
                Type::Map(Box::new(Type::String)),
                Presence::Optional,
                "Tags on the role (and managed policy).",
            ),
            attr("id", s.clone(), Presence::Computed, "The role's name."),
            attr("arn", s.clone(), Presence::Computed, "The role's ARN."),
            attr(
                "policy_arn",
                s.clone(),
                Presence::Computed,
                "The managed policy's ARN (managed mode).",
            ),
            attr(
                "policy_json",
                s.clone(),
                Presence::Computed,
                "The controller policy document.",
            ),
            attr(
                "assume_role_policy",
                s,
                Presence::Computed,
                "The trust policy document.",
            ),
        ],
        blocks: Vec::new(),
        description: "The IAM role the Karpenter controller runs as.",
    }
}

fn text(value: &Value, name: &str) -> Option<String> {
    value.get(name).as_str().map(str::to_string)
}

fn partition_of(arn: &str) -> &str {
    arn.split(':').nth(1).unwrap_or("aws")
}

/// The trust and policy documents the configuration asks for.
fn documents(value: &Value) -> Result<(Json, Json), Problem> {
    let problem = |attr: &str, detail: String| Problem {
        summary: format!("invalid {attr}"),
        detail,
        path: vec![PathStep::Attribute(attr.into())],
    };
    let node_role_arn = text(value, "node_role_arn").unwrap_or_default();
    if !node_role_arn.starts_with("arn:") || !node_role_arn.contains(":role/") {
        return Err(problem(
            "node_role_arn",
            format!("must be an IAM role ARN, not {node_role_arn:?}"),
        ));
    }
    let mut policy = ControllerPolicy::new(
        &text(value, "cluster_name").unwrap_or_default(),
        &text(value, "region").unwrap_or_default(),
        &text(value, "account_id").unwrap_or_default(),
        &node_role_arn,
    );
    policy.partition = partition_of(&node_role_arn).to_string();
    policy.interruption_queue_arn = text(value, "interruption_queue_arn");
    let trust = match text(value, "irsa_oidc_provider_arn") {
        None => ControllerTrust::PodIdentity,
        Some(provider) => {
            let issuer = provider
                .split_once(":oidc-provider/")
                .map(|(_, issuer)| issuer.to_string())
                .ok_or_else(|| {
                    problem(
                        "irsa_oidc_provider_arn",
                        format!("is not an OIDC provider ARN: {provider:?}"),
                    )
                })?;
            ControllerTrust::Irsa {
                oidc_provider_arn: provider,
                issuer,
                namespace: text(value, "irsa_namespace").unwrap_or_else(|| "kube-system".into()),
                service_account: text(value, "irsa_service_account")
                    .unwrap_or_else(|| "karpenter".into()),
            }
        }
    };
    match text(value, "policy_mode").as_deref() {
        None | Some("inline" | "managed") => {}
        Some(other) => {
            return Err(problem(
                "policy_mode",
                format!("must be inline or managed, not {other:?}"),
            ));
        }
    }
    Ok((controller_trust(&trust), controller_policy(&policy)))
}

/// Plans the role (no AWS call).
pub fn plan(
    prior: &Value,
    proposed: &Value,
    region: Option<&str>,
) -> Result<(Value, bool), Vec<Problem>> {
    let mut planned = proposed.clone();
    let Value::Map(map) = &mut planned else {
        return Ok((planned, false));
    };
    let account = proposed
        .get("node_role_arn")
        .as_str()
        .and_then(|arn| arn.split(':').nth(4))
        .map_or(Value::Unknown, |a| Value::String(a.to_string()));
    let region = region.map_or(Value::Unknown, |r| Value::String(r.to_string()));
    for (name, default) in [
        ("region", region),
        ("account_id", account),
        ("policy_mode", Value::String("inline".into())),
        ("irsa_namespace", Value::String("kube-system".into())),
        ("irsa_service_account", Value::String("karpenter".into())),
    ] {
        if map.get(name) == Some(&Value::Null) {
            map.insert(name.into(), default);
        }
    }
    let snapshot = Value::Map(map.clone());
    let (trust, policy) = if snapshot.has_unknown() {
        (Value::Unknown, Value::Unknown)
    } else {
        let (trust, policy) = documents(&snapshot).map_err(|p| vec![p])?;
        (
            Value::String(trust.to_string()),
            Value::String(policy.to_string()),
        )
    };
    map.insert("assume_role_policy".into(), trust);
    map.insert("policy_json".into(), policy);
    let name = snapshot.get("name").clone();
    map.insert("id".into(), name.clone());
    let replace = matches!(prior, Value::Map(_)) && prior.get("name") != &name;
    let kept = |attr: &str| match prior {
        Value::Map(_) if !replace => prior.get(attr).clone(),
        _ => Value::Unknown,
    };
    map.insert("arn".into(), kept("arn"));
    let managed = snapshot.get("policy_mode").as_str() == Some("managed");
    let policy_arn = match (managed, kept("policy_arn")) {
        (false, _) => Value::Null,
        (true, Value::Null) => Value::Unknown,
        (true, prior_arn) => prior_arn,
    };
    map.insert("policy_arn".into(), policy_arn);
    Ok((planned, replace))
}

fn managed_name(role: &str) -> String {
    format!("{role}-policy")
}

/// Creates or updates the role as planned; returns the new state.
pub async fn apply(iam: &Client, prior: &Value, planned: &Value) -> Result<Value, ResourceError> {
    let name = text(planned, "name").ok_or("name is unknown at apply")?;
    let (trust, policy) = documents(planned).map_err(|p| format!("{}: {}", p.summary, p.detail))?;
    let (trust, policy) = (trust.to_string(), policy.to_string());
    put_role(
        iam,
        &name,
        &trust,
        "Karpenter controller (terraform-provider-karpenter)",
        prior,
        planned,
    )
    .await?;
    let managed = text(planned, "policy_mode").as_deref() == Some("managed");
    if managed {
        let arn = put_managed(iam, &name, &policy, planned).await?;
        iam.attach_role_policy()
            .role_name(&name)
            .policy_arn(&arn)
            .send()
            .await
            .map_err(|e| ResourceError::iam("AttachRolePolicy", e.into_service_error()))?;
        remove_inline(iam, &name).await?;
    } else {
        iam.put_role_policy()
            .role_name(&name)
            .policy_name(INLINE_POLICY)
            .policy_document(&policy)
            .send()
            .await
            .map_err(|e| ResourceError::iam("PutRolePolicy", e.into_service_error()))?;
        remove_managed(iam, &name).await?;
    }
    read(iam, planned).await?.ok_or_else(|| ResourceError::Iam {
        call: "GetRole",
        message: format!("role {name} vanished right after it was applied"),
        retryable: true,
    })
}

fn managed_arn(role_arn: &str, role: &str) -> String {
    let prefix = role_arn.split(":role/").next().unwrap_or_default();
    format!("{prefix}:policy/{}", managed_name(role))
}

async fn role_arn(iam: &Client, name: &str) -> Result<String, ResourceError> {
    Ok(find(iam, name)
        .await?
        .map(|r| r.arn().to_string())
        .unwrap_or_default())
}

/// Creates the managed policy, or gives it a new default version when the
/// document changed (dropping the oldest when IAM's five are used).
async fn put_managed(
    iam: &Client,
    role: &str,
    document: &str,
    planned: &Value,
) -> Result<String, ResourceError> {
    let arn = managed_arn(&role_arn(iam, role).await?, role);
    match current_managed(iam, &arn).await? {
        None => {
            let out = iam
                .create_policy()
                .policy_name(managed_name(role))
                .policy_document(document)
                .set_tags(Some(tag_list(&tags(planned))))
                .send()
                .await
                .map_err(|e| ResourceError::iam("CreatePolicy", e.into_service_error()))?;
            Ok(out
                .policy()
                .and_then(|p| p.arn())
                .unwrap_or(&arn)
                .to_string())
        }
        Some(current) if same_document(&current, document) => Ok(arn),
        Some(_) => {
            let versions = iam
                .list_policy_versions()
                .policy_arn(&arn)
                .send()
                .await
                .map_err(|e| ResourceError::iam("ListPolicyVersions", e.into_service_error()))?;
            let mut old: Vec<_> = versions
                .versions()
                .iter()
                .filter(|v| !v.is_default_version())
                .collect();
            if versions.versions().len() >= 5 {
                old.sort_by_key(|v| v.create_date().map(|d| d.secs()));
                if let Some(oldest) = old.first().and_then(|v| v.version_id()) {
                    iam.delete_policy_version()
                        .policy_arn(&arn)
                        .version_id(oldest)
                        .send()
                        .await
                        .map_err(|e| {
                            ResourceError::iam("DeletePolicyVersion", e.into_service_error())
                        })?;
                }
            }
            iam.create_policy_version()
                .policy_arn(&arn)
                .policy_document(document)
                .set_as_default(true)
                .send()
                .await
                .map_err(|e| ResourceError::iam("CreatePolicyVersion", e.into_service_error()))?;
            Ok(arn)
        }
    }
}

/// The managed policy's current document, if the policy exists.
async fn current_managed(iam: &Client, arn: &str) -> Result<Option<String>, ResourceError> {
    let policy = match iam.get_policy().policy_arn(arn).send().await {
        Ok(out) => out.policy,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            return Ok(None);
        }
        Err(e) => return Err(ResourceError::iam("GetPolicy", e.into_service_error())),
    };
    let Some(version) = policy.and_then(|p| p.default_version_id().map(str::to_string)) else {
        return Ok(None);
    };
    let out = iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(version)
        .send()
        .await
        .map_err(|e| ResourceError::iam("GetPolicyVersion", e.into_service_error()))?;
    Ok(out
        .policy_version()
        .and_then(|v| v.document().map(str::to_string)))
}

fn same_document(stored: &str, wanted: &str) -> bool {
    parse_document(stored) == serde_json::from_str::<Json>(wanted).ok()
}

async fn inline(iam: &Client, name: &str) -> Result<Option<String>, ResourceError> {
    match iam
        .get_role_policy()
        .role_name(name)
        .policy_name(INLINE_POLICY)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out.policy_document().to_string())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(ResourceError::iam("GetRolePolicy", e.into_service_error())),
    }
}

async fn remove_inline(iam: &Client, name: &str) -> Result<(), ResourceError> {
    if inline(iam, name).await?.is_none() {
        return Ok(());
    }
    iam.delete_role_policy()
        .role_name(name)
        .policy_name(INLINE_POLICY)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| ResourceError::iam("DeleteRolePolicy", e.into_service_error()))
}

/// Detaches and deletes the managed policy (all its versions), if any.
async fn remove_managed(iam: &Client, name: &str) -> Result<(), ResourceError> {
    let arn = managed_arn(&role_arn(iam, name).await?, name);
    if current_managed(iam, &arn).await?.is_none() {
        return Ok(());
    }
    let _ = iam
        .detach_role_policy()
        .role_name(name)
        .policy_arn(&arn)
        .send()
        .await;
    let versions = iam
        .list_policy_versions()
        .policy_arn(&arn)
        .send()
        .await
        .map_err(|e| ResourceError::iam("ListPolicyVersions", e.into_service_error()))?;
    for v in versions
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
    {
        iam.delete_policy_version()
            .policy_arn(&arn)
            .version_id(v.version_id().unwrap_or_default())
            .send()
            .await
            .map_err(|e| ResourceError::iam("DeletePolicyVersion", e.into_service_error()))?;
    }
    iam.delete_policy()
        .policy_arn(&arn)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| ResourceError::iam("DeletePolicy", e.into_service_error()))
}

/// The role as it is; documents that mean what the configuration asks
/// read as the configuration's text, anything else as stored. `None` when
/// the role is gone.
pub async fn read(iam: &Client, prior: &Value) -> Result<Option<Value>, ResourceError> {
    let name = text(prior, "name").unwrap_or_default();
    let Some(role) = find(iam, &name).await? else {
        return Ok(None);
    };
    let arn = role.arn().to_string();
    let managed_policy = managed_arn(&arn, &name);
    let (document, mode, policy_arn) = match inline(iam, &name).await? {
        Some(doc) => (Some(doc), "inline", Value::Null),
        None => match current_managed(iam, &managed_policy).await? {
            Some(doc) => (Some(doc), "managed", Value::String(managed_policy)),
            None => (None, "inline", Value::Null),
        },
    };
    let stored_trust = role
        .assume_role_policy_document()
        .unwrap_or_default()
        .to_string();
    let mut state = match prior {
        Value::Map(map) => map.clone(),
        _ => BTreeMap::new(),
    };
    if text(prior, "cluster_name").is_none() {
        // Import: the settings come from what the documents say.
        infer(&mut state, document.as_deref(), &stored_trust);
    }
    state.insert("policy_mode".into(), Value::String(mode.into()));
    let as_planned = Value::Map(state.clone());
    let wanted = documents(&as_planned).ok();
    let read_as = |stored: Option<&str>, wanted: Option<Json>| match (stored, wanted) {
        (Some(stored), Some(wanted)) if same_document(stored, &wanted.to_string()) => {
            Value::String(wanted.to_string())
        }
        (Some(stored), _) => Value::String(
            parse_document(stored).map_or_else(|| stored.to_string(), |d| d.to_string()),
        ),
        (None, _) => Value::Null,
    };
    let (wanted_trust, wanted_policy) = wanted.map_or((None, None), |(t, p)| (Some(t), Some(p)));
    state.insert(
        "assume_role_policy".into(),
        read_as(Some(&stored_trust), wanted_trust),
    );
    state.insert(
        "policy_json".into(),
        read_as(document.as_deref(), wanted_policy),
    );
    state.insert("name".into(), Value::String(name.clone()));
    state.insert("id".into(), Value::String(name));
    state.insert("arn".into(), Value::String(arn));
    state.insert("policy_arn".into(), policy_arn);
    state.insert("tags".into(), tags_value(&role, prior));
    Ok(Some(Value::Map(state)))
}

/// Fills the settings an imported role's documents tell: the cluster
/// (from the tag conditions), region and account (from the launch
/// resources), the node role (from PassRole), the queue, and IRSA.
fn infer(state: &mut BTreeMap<String, Value>, policy: Option<&str>, trust: &str) {
    let set = |state: &mut BTreeMap<String, Value>, key: &str, value: Option<String>| {
        state.insert(key.into(), value.map_or(Value::Null, Value::String));
    };
    let policy = policy.and_then(parse_document).unwrap_or(Json::Null);
    let text = policy.to_string();
    let cluster = text
        .split("aws:ResourceTag/kubernetes.io/cluster/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_string);
    let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
    let resources_of = |sid: &str| -> Vec<String> {
        statements
            .iter()
            .filter(|s| s["Sid"] == sid)
            .flat_map(|s| match &s["Resource"] {
                Json::String(r) => vec![r.clone()],
                Json::Array(items) => items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    };
    let node_role = resources_of("AllowPassingInstanceRole").into_iter().next();
    let queue = resources_of("AllowInterruptionQueueActions")
        .into_iter()
        .next();
    let ec2 = statements
        .iter()
        .flat_map(|s| match &s["Resource"] {
            Json::Array(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            Json::String(r) => vec![r.clone()],
            _ => Vec::new(),
        })
        .find(|r| r.starts_with("arn:") && r.contains(":ec2:"));
    let region = ec2
        .as_deref()
        .and_then(|r| r.split(':').nth(3))
        .map(str::to_string);
    let account = node_role
        .as_deref()
        .and_then(|r| r.split(':').nth(4))
        .map(str::to_string);
    set(state, "cluster_name", cluster);
    set(state, "node_role_arn", node_role);
    set(state, "interruption_queue_arn", queue);
    set(state, "region", region);
    set(state, "account_id", account);
    let trust = parse_document(trust).unwrap_or(Json::Null);
    let federated = trust["Statement"][0]["Principal"]["Federated"]
        .as_str()
        .map(str::to_string);
    let subject = trust.to_string();
    let (namespace, service_account) = subject
        .split("system:serviceaccount:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .and_then(|sa| sa.split_once(':'))
        .map_or(
            ("kube-system".to_string(), "karpenter".to_string()),
            |(ns, sa)| (ns.to_string(), sa.to_string()),
        );
    set(state, "irsa_oidc_provider_arn", federated);
    set(state, "irsa_namespace", Some(namespace));
    set(state, "irsa_service_account", Some(service_account));
}

/// Deletes the role and its policies. Gone already is fine.
pub async fn delete(iam: &Client, prior: &Value) -> Result<(), ResourceError> {
    let name = text(prior, "name").unwrap_or_default();
    if find(iam, &name).await?.is_none() {
        return Ok(());
    }
    remove_inline(iam, &name).await?;
    remove_managed(iam, &name).await?;
    iam.delete_role()
        .role_name(&name)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| ResourceError::iam("DeleteRole", e.into_service_error()))
}

//! EKS access for what Karpenter launches and runs:
//!
//! - an access entry of type `EC2_LINUX` for the node role, so nodes
//!   launched with it may join the cluster;
//! - with EKS Pod Identity (the default), the association of the
//!   controller's service account with the controller role.
//!
//! Both are tagged for the cluster; one the bootstrap did not create is
//! used as it is and never changed or deleted. (moto has neither API: the
//! tests run them against the labelled fake in `test-support/src/fake_eks.py`.)

use super::{Account, Clients, cluster_tags, created_here, roles};
use crate::{Action, Change, Error, Mode};
use aws_sdk_eks::types::PodIdentityAssociation;
use std::collections::HashMap;

/// The access entry type for the nodes Karpenter launches.
pub const NODE_ACCESS_TYPE: &str = "EC2_LINUX";

/// The service account the controller runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

fn tags(account: &Account) -> HashMap<String, String> {
    cluster_tags(&account.cluster).into_iter().collect()
}

fn ours(tags: Option<&HashMap<String, String>>) -> bool {
    tags.is_some_and(|t| created_here(t.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
}

fn access_resource(account: &Account) -> String {
    format!("eks-access-entry {}", roles::node_role_arn(account))
}

fn association_resource(sa: &ServiceAccount) -> String {
    format!("eks-pod-identity {}/{}", sa.namespace, sa.name)
}

fn is_not_found<E: aws_sdk_eks::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ResourceNotFoundException")
}

/// The node role's access entry: `(type, tags)`, if there is one.
async fn find_access_entry(
    account: &Account,
    c: &Clients,
) -> Result<Option<(String, HashMap<String, String>)>, Error> {
    let resource = access_resource(account);
    c.calls.read();
    let described = c
        .eks
        .describe_access_entry()
        .cluster_name(&account.cluster)
        .principal_arn(roles::node_role_arn(account))
        .send()
        .await;
    match described {
        Ok(out) => Ok(out
            .access_entry
            .map(|e| (e.r#type.unwrap_or_default(), e.tags.unwrap_or_default()))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(Error::aws(
            &resource,
            "eks:DescribeAccessEntry",
            e.into_service_error(),
        )),
    }
}

/// Plans or converges the node role's `EC2_LINUX` access entry.
pub async fn reconcile_access_entry(
    account: &Account,
    c: &Clients,
    mode: Mode,
) -> Result<Change, Error> {
    let resource = access_resource(account);
    let action = match find_access_entry(account, c).await? {
        None => Action::Create,
        Some((_, tags)) if !ours(Some(&tags)) => Action::Foreign,
        Some((kind, _)) if kind != NODE_ACCESS_TYPE => Action::Update(vec!["type".into()]),
        Some(_) => Action::Unchanged,
    };
    if mode == Mode::Apply {
        if let Action::Update(_) = action {
            delete_access_entry_call(account, c).await?;
        }
        if matches!(action, Action::Create | Action::Update(_)) {
            c.calls.write();
            c.eks
                .create_access_entry()
                .cluster_name(&account.cluster)
                .principal_arn(roles::node_role_arn(account))
                .r#type(NODE_ACCESS_TYPE)
                .set_tags(Some(tags(account)))
                .send()
                .await
                .map_err(|e| {
                    Error::aws(&resource, "eks:CreateAccessEntry", e.into_service_error())
                })?;
        }
    }
    Ok(Change { resource, action })
}

async fn delete_access_entry_call(account: &Account, c: &Clients) -> Result<(), Error> {
    c.calls.write();
    match c
        .eks
        .delete_access_entry()
        .cluster_name(&account.cluster)
        .principal_arn(roles::node_role_arn(account))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(Error::aws(
            &access_resource(account),
            "eks:DeleteAccessEntry",
            e.into_service_error(),
        )),
    }
}

/// Deletes the node role's access entry if the bootstrap created it.
pub async fn delete_access_entry(
    account: &Account,
    c: &Clients,
    mode: Mode,
) -> Result<Option<Change>, Error> {
    let resource = access_resource(account);
    let action = match find_access_entry(account, c).await? {
        None => return Ok(None),
        Some((_, tags)) if !ours(Some(&tags)) => Action::Foreign,
        Some(_) => Action::Delete,
    };
    if mode == Mode::Apply && action == Action::Delete {
        delete_access_entry_call(account, c).await?;
    }
    Ok(Some(Change { resource, action }))
}

/// The service account's association, if there is one.
async fn find_association(
    account: &Account,
    c: &Clients,
    sa: &ServiceAccount,
) -> Result<Option<PodIdentityAssociation>, Error> {
    let resource = association_resource(sa);
    c.calls.read();
    let listed = c
        .eks
        .list_pod_identity_associations()
        .cluster_name(&account.cluster)
        .namespace(&sa.namespace)
        .service_account(&sa.name)
        .send()
        .await
        .map_err(|e| {
            Error::aws(
                &resource,
                "eks:ListPodIdentityAssociations",
                e.into_service_error(),
            )
        })?;
    let Some(id) = listed
        .associations()
        .iter()
        .find_map(|a| a.association_id().map(str::to_string))
    else {
        return Ok(None);
    };
    c.calls.read();
    let described = c
        .eks
        .describe_pod_identity_association()
        .cluster_name(&account.cluster)
        .association_id(&id)
        .send()
        .await
        .map_err(|e| {
            Error::aws(
                &resource,
                "eks:DescribePodIdentityAssociation",
                e.into_service_error(),
            )
        })?;
    Ok(described.association)
}

/// Plans or converges the Pod Identity association of `sa` with the
/// controller role.
pub async fn reconcile_pod_identity(
    account: &Account,
    c: &Clients,
    mode: Mode,
    sa: &ServiceAccount,
) -> Result<Change, Error> {
    let resource = association_resource(sa);
    let role = roles::controller_role_arn(account);
    let found = find_association(account, c, sa).await?;
    let action = match &found {
        None => Action::Create,
        Some(a) if !ours(a.tags.as_ref()) => Action::Foreign,
        Some(a) if a.role_arn() != Some(role.as_str()) => Action::Update(vec!["roleArn".into()]),
        Some(_) => Action::Unchanged,
    };
    if mode == Mode::Apply {
        match (&action, &found) {
            (Action::Create, _) => {
                c.calls.write();
                c.eks
                    .create_pod_identity_association()
                    .cluster_name(&account.cluster)
                    .namespace(&sa.namespace)
                    .service_account(&sa.name)
                    .role_arn(&role)
                    .set_tags(Some(tags(account)))
                    .send()
                    .await
                    .map_err(|e| {
                        Error::aws(
                            &resource,
                            "eks:CreatePodIdentityAssociation",
                            e.into_service_error(),
                        )
                    })?;
            }
            (Action::Update(_), Some(a)) => {
                c.calls.write();
                c.eks
                    .update_pod_identity_association()
                    .cluster_name(&account.cluster)
                    .association_id(a.association_id().unwrap_or_default())
                    .role_arn(&role)
                    .send()
                    .await
                    .map_err(|e| {
                        Error::aws(
                            &resource,
                            "eks:UpdatePodIdentityAssociation",
                            e.into_service_error(),
                        )
                    })?;
            }
            _ => {}
        }
    }
    Ok(Change { resource, action })
}

/// Deletes the association of `sa` if the bootstrap created it.
pub async fn delete_pod_identity(
    account: &Account,
    c: &Clients,
    mode: Mode,
    sa: &ServiceAccount,
) -> Result<Option<Change>, Error> {
    let resource = association_resource(sa);
    let Some(found) = find_association(account, c, sa).await? else {
        return Ok(None);
    };
    if !ours(found.tags.as_ref()) {
        return Ok(Some(Change {
            resource,
            action: Action::Foreign,
        }));
    }
    if mode == Mode::Apply {
        c.calls.write();
        match c
            .eks
            .delete_pod_identity_association()
            .cluster_name(&account.cluster)
            .association_id(found.association_id().unwrap_or_default())
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(Error::aws(
                    &resource,
                    "eks:DeletePodIdentityAssociation",
                    e.into_service_error(),
                ));
            }
        }
    }
    Ok(Some(Change {
        resource,
        action: Action::Delete,
    }))
}

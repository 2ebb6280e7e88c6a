//! IRSA's IAM OIDC provider for the cluster's issuer, created when missing
//! (audience `sts.amazonaws.com`). Clusters made with the usual Terraform
//! modules have one already; it is then used as it is, never changed or
//! deleted.

use super::{Account, Clients, cluster_tags, created_here};
use crate::{Action, Change, Error, Mode};
use aws_sdk_iam::types::Tag;

/// The audience IRSA tokens carry.
pub const AUDIENCE: &str = "sts.amazonaws.com";

/// The issuer without its scheme (`oidc.eks.<region>.amazonaws.com/id/<id>`).
pub fn issuer_host(issuer: &str) -> &str {
    issuer.trim_start_matches("https://").trim_end_matches('/')
}

/// The provider's ARN for `issuer` in the account.
pub fn provider_arn(account: &Account, issuer: &str) -> String {
    format!(
        "arn:{}:iam::{}:oidc-provider/{}",
        account.partition,
        account.account_id,
        issuer_host(issuer)
    )
}

/// What the provider has: `(audiences, created here)`, if it exists.
async fn find(
    account: &Account,
    c: &Clients,
    issuer: &str,
) -> Result<Option<(Vec<String>, bool)>, Error> {
    let arn = provider_arn(account, issuer);
    c.calls.read();
    match c
        .iam
        .get_open_id_connect_provider()
        .open_id_connect_provider_arn(&arn)
        .send()
        .await
    {
        Ok(out) => {
            let ours = created_here(out.tags().iter().map(|t| (t.key(), t.value())));
            Ok(Some((out.client_id_list().to_vec(), ours)))
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::aws(
            &format!("iam-oidc-provider {arn}"),
            "iam:GetOpenIDConnectProvider",
            e.into_service_error(),
        )),
    }
}

/// Plans or converges the OIDC provider for `issuer`; returns the change
/// and the provider's ARN.
pub async fn reconcile(
    account: &Account,
    c: &Clients,
    mode: Mode,
    issuer: &str,
) -> Result<(Change, String), Error> {
    let arn = provider_arn(account, issuer);
    let resource = format!("iam-oidc-provider {}", issuer_host(issuer));
    let action = match find(account, c, issuer).await? {
        None => Action::Create,
        Some((_, false)) => Action::Foreign,
        Some((audiences, true)) if !audiences.iter().any(|a| a == AUDIENCE) => {
            Action::Update(vec!["clientIDList".into()])
        }
        Some(_) => Action::Unchanged,
    };
    if mode == Mode::Apply {
        match action {
            Action::Create => {
                let tags = cluster_tags(&account.cluster)
                    .into_iter()
                    .map(|(k, v)| Tag::builder().key(k).value(v).build().expect("tag"));
                c.calls.write();
                c.iam
                    .create_open_id_connect_provider()
                    .url(format!("https://{}", issuer_host(issuer)))
                    .client_id_list(AUDIENCE)
                    .set_tags(Some(tags.collect()))
                    .send()
                    .await
                    .map_err(|e| {
                        Error::aws(
                            &resource,
                            "iam:CreateOpenIDConnectProvider",
                            e.into_service_error(),
                        )
                    })?;
            }
            Action::Update(_) => {
                c.calls.write();
                c.iam
                    .add_client_id_to_open_id_connect_provider()
                    .open_id_connect_provider_arn(&arn)
                    .client_id(AUDIENCE)
                    .send()
                    .await
                    .map_err(|e| {
                        Error::aws(
                            &resource,
                            "iam:AddClientIDToOpenIDConnectProvider",
                            e.into_service_error(),
                        )
                    })?;
            }
            _ => {}
        }
    }
    Ok((Change { resource, action }, arn))
}

/// Deletes the provider for `issuer` if the bootstrap created it.
pub async fn delete(
    account: &Account,
    c: &Clients,
    mode: Mode,
    issuer: &str,
) -> Result<Option<Change>, Error> {
    let resource = format!("iam-oidc-provider {}", issuer_host(issuer));
    let action = match find(account, c, issuer).await? {
        None => return Ok(None),
        Some((_, false)) => Action::Foreign,
        Some(_) => Action::Delete,
    };
    if mode == Mode::Apply && action == Action::Delete {
        c.calls.write();
        c.iam
            .delete_open_id_connect_provider()
            .open_id_connect_provider_arn(provider_arn(account, issuer))
            .send()
            .await
            .map_err(|e| {
                Error::aws(
                    &resource,
                    "iam:DeleteOpenIDConnectProvider",
                    e.into_service_error(),
                )
            })?;
    }
    Ok(Some(Change { resource, action }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_arn_is_the_issuer_without_its_scheme() {
        let account = Account::new("demo", "us-east-1", "123456789012");
        assert_eq!(
            provider_arn(&account, "https://oidc.eks.us-east-1.amazonaws.com/id/ABC/"),
            "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"
        );
    }
}

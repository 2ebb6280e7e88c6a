//! Everything on the AWS side, in order: the queue before the rules that
//! target it, the node role before the controller role that may pass it,
//! the roles before the EKS access that names them.

use super::eks::{self, ServiceAccount};
use super::{Account, Clients, discovery, oidc, queue, roles, rules};
use crate::{Change, Error, Mode};
use karpenter_iam::controller::ControllerTrust;

/// How the controller gets its AWS credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Identity {
    /// EKS Pod Identity: an association of the controller's service
    /// account with its role (the default).
    #[default]
    PodIdentity,
    /// IAM Roles for Service Accounts through the cluster's OIDC issuer
    /// (`https://oidc.eks.<region>.amazonaws.com/id/<id>`); the provider is
    /// created if missing, and the service account is annotated with the role.
    Irsa {
        /// The cluster's OIDC issuer URL.
        issuer: String,
    },
}

/// What the AWS side may vary.
#[derive(Debug, Clone)]
pub struct Options {
    /// Attach Session Manager's policy to the node role.
    pub ssm: bool,
    /// Give the node role an instance profile.
    pub instance_profile: bool,
    /// Pod Identity or IRSA.
    pub identity: Identity,
    /// The controller's service account (the Helm release's name).
    pub service_account: ServiceAccount,
    /// Subnets and security groups to tag `karpenter.sh/discovery: <cluster>`.
    pub discovery: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ssm: false,
            instance_profile: false,
            identity: Identity::default(),
            service_account: ServiceAccount {
                namespace: "kube-system".into(),
                name: "karpenter".into(),
            },
            discovery: Vec::new(),
        }
    }
}

/// Plans or converges every AWS resource, telling `progress` about each as
/// it is done; stops at the first error (what is done stays done: the next
/// run resumes from there).
pub async fn reconcile(
    account: &Account,
    c: &Clients,
    mode: Mode,
    options: &Options,
    progress: &mut dyn FnMut(&Change),
) -> Result<Vec<Change>, Error> {
    let mut out = Vec::new();
    let mut done = |change: Change, out: &mut Vec<Change>| {
        progress(&change);
        out.push(change);
    };
    done(queue::reconcile(account, c, mode).await?, &mut out);
    for change in rules::reconcile(account, c, mode).await? {
        done(change, &mut out);
    }
    let node_role = roles::node_role(account, options.ssm);
    done(
        roles::reconcile(account, c, mode, &node_role).await?,
        &mut out,
    );
    if options.instance_profile {
        done(
            roles::reconcile_instance_profile(account, c, mode).await?,
            &mut out,
        );
    }
    let trust = match &options.identity {
        Identity::PodIdentity => ControllerTrust::PodIdentity,
        Identity::Irsa { issuer } => {
            let (change, arn) = oidc::reconcile(account, c, mode, issuer).await?;
            done(change, &mut out);
            ControllerTrust::Irsa {
                oidc_provider_arn: arn,
                issuer: oidc::issuer_host(issuer).to_string(),
                namespace: options.service_account.namespace.clone(),
                service_account: options.service_account.name.clone(),
            }
        }
    };
    let controller_role = roles::controller_role(account, &trust);
    done(
        roles::reconcile(account, c, mode, &controller_role).await?,
        &mut out,
    );
    done(
        eks::reconcile_access_entry(account, c, mode).await?,
        &mut out,
    );
    if options.identity == Identity::PodIdentity {
        done(
            eks::reconcile_pod_identity(account, c, mode, &options.service_account).await?,
            &mut out,
        );
    }
    for change in discovery::reconcile(account, c, mode, &options.discovery).await? {
        done(change, &mut out);
    }
    Ok(out)
}

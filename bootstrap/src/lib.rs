//! `karpenter-bootstrap`'s engine: what Karpenter needs around a cluster,
//! planned and converged resource by resource, safe to run again.
//!
//! Each resource is reconciled in one of two [`Mode`]s: `Plan` reads and
//! says what would change ([`Change`]); `Apply` makes it so, and makes no
//! mutating call when nothing needs to change ([`Calls`] counts them).
//! Everything created is tagged for the cluster ([`aws::cluster_tags`]).
//!
//! The AWS side ([`aws`]): the interruption queue and its EventBridge
//! rules, the node and controller roles (documents from `karpenter-iam`),
//! IRSA's OIDC provider, the node role's EKS access entry and the
//! controller's Pod Identity association, discovery tags, and the teardown.
//! The cluster side ([`cluster`]): the CRDs, the controller's Helm release
//! (rendered and stored by [`helm`] as Helm would), and the NodePools'
//! drain that starts a teardown. [`inputs`] combines flags, a config file
//! and Terraform outputs. `bootstrap/README.md` is the user's guide.

pub mod aws;
mod change;
pub mod cluster;
pub mod convert;
pub mod helm;
pub mod inputs;

pub use change::{Action, Calls, Change, Mode};

/// Why a resource could not be planned or converged.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("{resource}: {call} failed: {message}")]
    Kube {
        /// The object being reconciled.
        resource: String,
        /// What was asked (`get`, `apply`).
        call: &'static str,
        /// What the API server said.
        message: String,
    },
    /// The chart or a stored release could not be used.
    #[error("helm: {message}")]
    Chart {
        /// What is wrong, naming the template, value or Secret.
        message: String,
    },
    /// An AWS call failed.
    #[error("{resource}: {call} failed: {message}{hint}")]
    Aws {
        /// The resource being reconciled.
        resource: String,
        /// The API call (`sqs:CreateQueue`).
        call: &'static str,
        /// What AWS said.
        message: String,
        /// How to fix it, when known (with a leading `; `).
        hint: String,
    },
}

impl Error {
    /// A Kubernetes API error on `resource` from `call`.
    pub fn kube(resource: &str, call: &'static str, error: kube::Error) -> Self {
        Error::Kube {
            resource: resource.to_string(),
            call,
            message: error.to_string(),
        }
    }

    /// An AWS error on `resource` from `call`, with a hint for access denials.
    pub fn aws(resource: &str, call: &'static str, error: impl std::fmt::Display) -> Self {
        let message = error.to_string();
        let hint = if message.contains("AccessDenied") || message.contains("not authorized") {
            format!("; the credentials in use need {call}")
        } else if message.contains("No cluster found") {
            "; check the cluster name and the region (the EKS cluster must exist)".to_string()
        } else {
            String::new()
        };
        Error::Aws {
            resource: resource.to_string(),
            call,
            message,
            hint,
        }
    }
}

//! Why a resource or data source could not be planned, applied, read or
//! imported, and whether running Terraform again can help. Every variant
//! becomes one diagnostic; [`ResourceError::retryable`] adds the advice.

use aws_sdk_iam::error::ProvideErrorMetadata;

/// A failed resource or data source operation.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    /// The configuration or the state breaks a rule: fix it and plan again.
    #[error("{0}")]
    Invalid(String),
    /// An IAM call failed (access denials name the permission to grant).
    #[error("{message}")]
    Iam {
        /// The IAM action (`CreateRole`).
        call: &'static str,
        /// What IAM said, and the permission to grant on a denial.
        message: String,
        /// Throttling, a concurrent change or an IAM fault: apply again.
        retryable: bool,
    },
    /// A Kubernetes API call failed.
    #[error("{message}")]
    Kube {
        /// What was asked and of which object, with the API server's answer.
        message: String,
        /// A timeout, throttling, a conflict or a server error: apply again.
        retryable: bool,
    },
}

impl ResourceError {
    /// Whether the same operation may succeed when Terraform runs it again.
    pub fn retryable(&self) -> bool {
        match self {
            ResourceError::Invalid(_) => false,
            ResourceError::Iam { retryable, .. } | ResourceError::Kube { retryable, .. } => {
                *retryable
            }
        }
    }

    /// An IAM error from `call`, with the permission to grant when access
    /// was denied; retryable as IAM's error code says.
    pub fn iam<E: ProvideErrorMetadata + std::fmt::Display>(call: &'static str, error: E) -> Self {
        let code = error.code().unwrap_or_default();
        let retryable = matches!(
            code,
            "Throttling" | "ThrottlingException" | "ServiceFailure" | "ConcurrentModification"
        );
        let message = error.to_string();
        let message = if code == "AccessDenied" || message.contains("AccessDenied") {
            format!("iam:{call} was denied ({message}); the credentials in use need iam:{call}")
        } else {
            format!("iam:{call} failed: {message}")
        };
        ResourceError::Iam {
            call,
            message,
            retryable,
        }
    }

    /// A Kubernetes error, described by `what` (`deleting NodePool a`).
    pub fn kube(what: impl std::fmt::Display, error: &kube::Error) -> Self {
        let retryable = match error {
            kube::Error::Api(status) => matches!(status.code, 409 | 429 | 500..=599),
            kube::Error::HyperError(_) | kube::Error::Service(_) => true,
            _ => false,
        };
        ResourceError::Kube {
            message: format!("{what}: {error}"),
            retryable,
        }
    }
}

/// Rules broken by values, as the helpers that check them phrase them.
impl From<String> for ResourceError {
    fn from(rule: String) -> Self {
        ResourceError::Invalid(rule)
    }
}

impl From<&str> for ResourceError {
    fn from(rule: &str) -> Self {
        ResourceError::Invalid(rule.to_string())
    }
}

//! AWS SDK clients and how their errors become [`CloudError`]s.

use crate::cloud::CloudError;
use aws_config::SdkConfig;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::result::SdkError;

/// The SDK clients the EC2 provider uses, from one shared configuration.
#[derive(Debug, Clone)]
pub struct AwsClients {
    /// EC2: subnets, security groups, images, launch templates, fleets, instances.
    pub ec2: aws_sdk_ec2::Client,
    /// SSM: the public parameters naming the EKS-optimised AMIs.
    pub ssm: aws_sdk_ssm::Client,
    /// IAM: instance profiles for NodeClasses that name a role.
    pub iam: aws_sdk_iam::Client,
    /// Pricing: on-demand prices (served from `us-east-1`).
    pub pricing: aws_sdk_pricing::Client,
}

pub use karpenter_aws::sdk::{load_config, loader, timeouts};

impl AwsClients {
    /// Clients from a loaded configuration (region, credentials, endpoint).
    /// The Pricing API only exists in a few regions: it is always asked in
    /// `us-east-1` unless the configuration overrides the endpoint (an emulator).
    pub fn new(config: &SdkConfig) -> Self {
        let pricing_config = aws_sdk_pricing::config::Builder::from(config)
            .region(aws_config::Region::new("us-east-1"))
            .build();
        AwsClients {
            ec2: aws_sdk_ec2::Client::new(config),
            ssm: aws_sdk_ssm::Client::new(config),
            iam: aws_sdk_iam::Client::new(config),
            pricing: aws_sdk_pricing::Client::from_conf(pricing_config),
        }
    }

    /// Clients from [`load_config`].
    pub async fn from_environment() -> Self {
        AwsClients::new(&load_config().await)
    }
}

/// An AWS error's code and message, when the service sent one.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// Codes that mean the caller's credentials may not do this.
const UNAUTHORIZED: &[&str] = &[
    "UnauthorizedOperation",
    "AccessDenied",
    "AccessDeniedException",
    "AuthFailure",
];

/// Converts an SDK error from `operation` into a [`CloudError`] that keeps
/// AWS's code and message (they go on NodeClaim conditions as they are).
pub fn cloud_error<E, R>(operation: &'static str, err: SdkError<E, R>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let (code, message) = match &err {
        SdkError::ServiceError(service) => (
            service.err().code().unwrap_or("Unknown").to_string(),
            service
                .err()
                .message()
                .map(str::to_string)
                .unwrap_or_else(|| service.err().to_string()),
        ),
        other => (
            "RequestFailed".to_string(),
            aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
        ),
    };
    if UNAUTHORIZED.contains(&code.as_str()) {
        CloudError::Unauthorized(format!("{operation}: {code}: {message}"))
    } else {
        CloudError::Api {
            operation,
            code,
            message,
        }
    }
}

#[cfg(test)]
mod timeout_tests {
    use super::*;

    /// A hung ReceiveMessage (or any call) must end: every client built from
    /// the loader carries the timeouts.
    #[tokio::test]
    async fn every_client_has_timeouts() {
        let config = loader()
            .region(aws_config::Region::new("us-east-1"))
            .no_credentials()
            .load()
            .await;
        let timeouts = config.timeout_config().expect("timeouts are set");
        assert_eq!(
            timeouts.operation_attempt_timeout(),
            Some(std::time::Duration::from_secs(40))
        );
        assert_eq!(
            timeouts.read_timeout(),
            Some(std::time::Duration::from_secs(40))
        );
        assert_eq!(
            timeouts.operation_timeout(),
            Some(std::time::Duration::from_secs(120))
        );
    }

    /// An endpoint that accepts connections and never answers: the
    /// interruption queue's ReceiveMessage, through a client from the
    /// production loader, fails within the operation timeout instead of
    /// waiting for ever. On tokio's paused clock the minutes pass at once.
    #[tokio::test(start_paused = true)]
    async fn a_call_to_an_endpoint_that_never_answers_fails_in_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                open.push(stream); // read nothing, answer nothing
            }
        });
        let config = loader()
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(aws_credential_types::Credentials::new(
                "hung", "hung", None, None, "test",
            ))
            .load()
            .await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let began = tokio::time::Instant::now();
        let call = sqs
            .receive_message()
            .queue_url(format!("{endpoint}/000000000000/Karpenter-demo"))
            .wait_time_seconds(20)
            .send();
        let result = tokio::time::timeout(std::time::Duration::from_secs(3600), call)
            .await
            .expect("the call was still waiting after an hour: no timeout ends it");
        let waited = began.elapsed();
        held.abort();
        let error = result.expect_err("a call nobody answers cannot succeed");
        assert!(
            matches!(
                error,
                SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)
            ),
            "a timeout, not {error:?}"
        );
        assert!(
            waited <= std::time::Duration::from_secs(121),
            "the call ended after {waited:?}, past the 120 s operation timeout"
        );
        assert!(
            waited >= std::time::Duration::from_secs(40),
            "the call ended after {waited:?}, before one attempt could time out"
        );
    }
}

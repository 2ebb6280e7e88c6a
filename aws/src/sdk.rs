//! The AWS SDK configuration every program loads: the standard credential
//! chain over rustls (certificates verified against the system roots) and
//! timeouts on every call.

/// Loads the standard configuration chain (environment, profile, web
/// identity for IRSA, container credentials for Pod Identity, IMDS) over a
/// rustls client that verifies certificates against the system roots.
pub async fn load_config() -> aws_config::SdkConfig {
    loader().load().await
}

/// The loader [`load_config`] uses (rustls on ring, TLS verified), for
/// callers that set more (region, profile, endpoint) before loading.
pub fn loader() -> aws_config::ConfigLoader {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts())
}

/// Timeouts on every AWS call: a hung connection or answer fails the call
/// (and it is retried) instead of stopping the loop that made it. An attempt
/// may take 40 s, so SQS's 20 s long poll fits; a call with its retries 2 min.
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .read_timeout(std::time::Duration::from_secs(40))
        .operation_attempt_timeout(std::time::Duration::from_secs(40))
        .operation_timeout(std::time::Duration::from_secs(120))
        .build()
}

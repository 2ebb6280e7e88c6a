//! The AWS SDK pointed at a moto server.

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;

/// SDK configuration for an emulator at `endpoint`: fixed test credentials, no
/// timeouts (tests may run on tokio's paused clock, which would fire them at
/// once while moto works), the SDK's standard retries, TLS on rustls/ring.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    sdk_config_signed_by(endpoint, "testing").await
}

/// [`sdk_config`] whose requests are signed with access key id `key`, so an
/// emulator's or proxy's log tells one program's requests from another's.
pub async fn sdk_config_signed_by(endpoint: &str, key: &str) -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(key, "testing", None, None, "tests"))
        .timeout_config(aws_config::timeout::TimeoutConfig::disabled())
        .stalled_stream_protection(
            aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled(),
        )
        .http_client(http)
        .load()
        .await
}

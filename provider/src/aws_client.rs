//! The AWS client configuration from the provider block, built on first use
//! (never at plan time): region, profile, an optional role to assume and an
//! endpoint override (the tests point it at moto), on top of the SDK's usual
//! environment and files. TLS is verified (rustls on ring).

use crate::cty::Value;
use crate::error::ResourceError;
use aws_config::SdkConfig;
use aws_credential_types::provider::SharedCredentialsProvider;

/// The SDK configuration the provider block describes.
pub async fn sdk_config(config: &Value) -> Result<SdkConfig, ResourceError> {
    let text = |name: &str| config.get(name).as_str().map(str::to_string);
    let mut loader = karpenter_aws::sdk::loader();
    if let Some(region) = text("region") {
        loader = loader.region(aws_config::Region::new(region));
    }
    if let Some(profile) = text("profile") {
        loader = loader.profile_name(profile);
    }
    if let Some(url) = text("aws_endpoint_url") {
        loader = loader.endpoint_url(url);
    }
    let base = loader.load().await;
    let Some(role) = text("assume_role_arn") else {
        return Ok(base);
    };
    let assumed = aws_config::sts::AssumeRoleProvider::builder(role)
        .session_name("terraform-provider-karpenter")
        .configure(&base)
        .build()
        .await;
    Ok(base
        .into_builder()
        .credentials_provider(SharedCredentialsProvider::new(assumed))
        .build())
}

/// The partition of the region the provider block (or the environment)
/// names, known at plan time; `aws` when none is named.
pub fn partition(config: Option<&Value>) -> &'static str {
    let region = config
        .and_then(|c| c.get("region").as_str().map(str::to_string))
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_default();
    karpenter_iam::partition_of(&region)
}

//! What the bootstrap's tests share: the account moto serves.

use karpenter_bootstrap::aws::Account;

/// Cluster `demo` in moto's default account, us-east-1.
pub fn account() -> Account {
    Account {
        cluster: "demo".into(),
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        partition: "aws".into(),
    }
}

/// A fresh moto server and the SDK configuration for it; `None` (the test
/// skips loudly, or fails under `CI=true`) when moto is not installed.
pub async fn moto(test: &str) -> Option<(test_support::MotoServer, aws_config::SdkConfig)> {
    let env = test_support::DevEnv::load();
    env.require(test_support::Part::MotoServer, test)?;
    let moto = test_support::MotoServer::start(&env).expect("moto");
    let config = test_support::aws::sdk_config(&moto.endpoint()).await;
    Some((moto, config))
}

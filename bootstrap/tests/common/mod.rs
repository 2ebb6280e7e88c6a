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

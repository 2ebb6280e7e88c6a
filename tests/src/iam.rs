//! IAM enforced on the controller: every AWS call it signed during the
//! journey, evaluated (conditions included, by `@cloud-copilot/iam-simulate`)
//! against the policies Terraform attached to its role, read back from the
//! account. moto answers the calls but authorizes none of them, so this is
//! what a real account would have refused.

use crate::account::Account;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use test_support::aws_requests::{AwsCall, controller_requests};
use test_support::iam::{Decision, evaluate_policies};

/// What the evaluation found: decisions by action and result.
pub struct Evaluated {
    /// `(action, result) -> count`.
    pub table: BTreeMap<(String, String), usize>,
    /// Calls evaluated.
    pub requests: usize,
}

impl Evaluated {
    /// `12 ec2:CreateFleet, 3 sqs:ReceiveMessage, ...`.
    pub fn summary(&self) -> String {
        self.table
            .iter()
            .map(|((action, _), n)| format!("{n} {action}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The identity policies attached to role `name` (inline and managed).
async fn role_policies(iam: &aws_sdk_iam::Client, name: &str) -> Vec<Value> {
    let decode = |document: &str| -> Value {
        let text = percent_decode(document);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("a policy document ({e}): {text}"))
    };
    let mut out = Vec::new();
    let inline = iam.list_role_policies().role_name(name).send().await;
    for policy in inline.expect("ListRolePolicies").policy_names() {
        let got = iam
            .get_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .expect("GetRolePolicy");
        out.push(decode(got.policy_document()));
    }
    let attached = iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await;
    for policy in attached
        .expect("ListAttachedRolePolicies")
        .attached_policies()
    {
        let arn = policy.policy_arn().unwrap_or_default();
        let version = iam
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .expect("GetPolicy")
            .policy
            .and_then(|p| p.default_version_id)
            .expect("a default version");
        let got = iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .expect("GetPolicyVersion");
        let document = got
            .policy_version
            .and_then(|v| v.document)
            .expect("a policy document");
        out.push(decode(&document));
    }
    out
}

/// IAM returns policy documents URL-encoded.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Evaluates every call signed with access key `key` (the controller's
/// credentials) against role `role_arn`'s policies; panics on a deny, and
/// on a call this cannot map, naming them.
pub async fn assert_controller_allowed(
    account: &Account,
    simulator: &Path,
    role_arn: &str,
    node_role_arn: &str,
    key: &str,
) -> Evaluated {
    let calls: Vec<AwsCall> = account
        .requests()
        .iter()
        .filter(|r| r.key == key)
        .map(AwsCall::from)
        .collect();
    assert!(
        !calls.is_empty(),
        "moto logged no call signed by the controller's key {key}"
    );
    let ec2 = aws_sdk_ec2::Client::new(&account.config);
    let (requests, unmapped) = controller_requests(&ec2, node_role_arn, &calls, 0).await;
    assert!(
        unmapped.is_empty(),
        "karpenter-controller made calls the IAM evaluation cannot map: {unmapped:?}"
    );
    let iam = aws_sdk_iam::Client::new(&account.config);
    let role_name = role_arn.rsplit('/').next().unwrap_or_default();
    let policies = role_policies(&iam, role_name).await;
    assert!(!policies.is_empty(), "role {role_name} has no policy");
    let decisions: Vec<Decision> = evaluate_policies(
        simulator,
        role_arn,
        crate::account::ACCOUNT_ID,
        &policies,
        &requests,
    );
    let denied: Vec<&Decision> = decisions.iter().filter(|d| d.result != "Allowed").collect();
    assert!(
        denied.is_empty(),
        "karpenter-controller: denied by its role's policies: {denied:#?}"
    );
    let mut table = BTreeMap::new();
    for d in &decisions {
        *table
            .entry((d.action.clone(), d.result.clone()))
            .or_default() += 1;
    }
    Evaluated {
        table,
        requests: decisions.len(),
    }
}

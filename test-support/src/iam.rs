//! IAM policy evaluation with conditions, by `@cloud-copilot/iam-simulate`
//! (npm, installed by `scripts/dev-env`): moto's own enforcement ignores
//! conditions, so a request the shipped policy would deny passes there.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// One authorization request: an action on one resource, with its context keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IamRequest {
    /// `ec2:CreateFleet`.
    pub action: String,
    /// The resource ARN (`*` for actions without one).
    pub resource: String,
    /// Context keys (`aws:RequestTag/...`, `aws:ResourceTag/...`, `aws:TagKeys`, ...).
    pub context: BTreeMap<String, Value>,
}

/// The simulator's answer for one request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Decision {
    /// The action.
    pub action: String,
    /// The resource.
    pub resource: String,
    /// `Allowed`, `ImplicitlyDenied`, `ExplicitlyDenied` (or an error).
    pub result: String,
}

/// Tags as IAM sees them on a request that sets them (`aws:RequestTag/*`, `aws:TagKeys`).
pub fn request_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
    let mut context: BTreeMap<String, Value> = tags
        .iter()
        .map(|(k, v)| (format!("aws:RequestTag/{k}"), json!(v)))
        .collect();
    context.insert("aws:TagKeys".into(), json!(tags.keys().collect::<Vec<_>>()));
    context
}

/// Tags as IAM sees them on the resource a request acts on (`aws:ResourceTag/*`).
pub fn resource_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
    tags.iter()
        .map(|(k, v)| (format!("aws:ResourceTag/{k}"), json!(v)))
        .collect()
}

/// Evaluates `requests` made by `principal` of `account` under `policy`.
pub fn evaluate(
    node_modules: &Path,
    principal: &str,
    account: &str,
    policy: &Value,
    requests: &[IamRequest],
) -> Vec<Decision> {
    evaluate_policies(
        node_modules,
        principal,
        account,
        std::slice::from_ref(policy),
        requests,
    )
}

/// Evaluates `requests` made by `principal` of `account` under all of
/// `policies` (a role's inline and attached policies, say).
pub fn evaluate_policies(
    node_modules: &Path,
    principal: &str,
    account: &str,
    policies: &[Value],
    requests: &[IamRequest],
) -> Vec<Decision> {
    let script = crate::repo_path("test-support/iam_simulate.js");
    let mut child = Command::new("node")
        .arg(script)
        .env("NODE_PATH", node_modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs");
    let input = json!({"principal": principal, "account": account, "policies": policies, "requests": requests});
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("the simulator reads its input");
    let out = child.wait_with_output().expect("the simulator finishes");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "iam_simulate.js printed no decisions ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

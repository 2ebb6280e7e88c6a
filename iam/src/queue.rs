//! The interruption queue's policy: EventBridge (and SQS itself) may send
//! to it; anything over plain HTTP is denied.

use crate::document::{Statement, policy};
use serde_json::{Value, json};

/// The name of a cluster's interruption queue, as upstream names it.
pub fn queue_name(cluster_name: &str) -> String {
    format!("Karpenter-{cluster_name}")
}

/// The queue's resource policy.
pub fn queue_policy(queue_arn: &str) -> Value {
    let queue = [queue_arn.to_string()];
    policy(&[
        Statement::allow("SqsWrite", &["sqs:SendMessage"], &queue)
            .by(json!({"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]})),
        Statement::deny("DenyHTTP", &["sqs:*"], &queue)
            .by(json!("*"))
            .when("Bool", "aws:SecureTransport", &["false"]),
    ])
}

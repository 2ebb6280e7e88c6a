//! The defaults upstream's CRDs declare, in one place.
//!
//! The typed functions ([`nodepool`], [`nodeclaim`], [`ec2nodeclass`]) fill absent
//! fields the way the API server's structural defaulting does; [`schema_defaults`]
//! gives the same values to [`crate::crd`], which writes them into the CRD schemas.
//! A test checks that both routes (typed here, structural defaulting from the CRD
//! schema by [`crate::crd::apply_schema_defaults`]) give the same object for every example manifest.

use crate::v1::*;
use serde_json::{Value, json};

/// `spec.template.spec.expireAfter` (NodePool) and `spec.expireAfter` (NodeClaim).
pub const EXPIRE_AFTER: &str = "720h";
/// `spec.disruption.consolidateAfter` of an absent `spec.disruption`.
pub const CONSOLIDATE_AFTER: &str = "0s";
/// `spec.disruption.consolidationPolicy`.
pub const CONSOLIDATION_POLICY: &str = CONSOLIDATION_WHEN_EMPTY_OR_UNDERUTILIZED;
/// `spec.disruption.budgets[].nodes`, and the single default budget.
pub const BUDGET_NODES: &str = "10%";
/// `spec.metadataOptions.httpEndpoint`.
pub const HTTP_ENDPOINT: &str = "enabled";
/// `spec.metadataOptions.httpProtocolIPv6`.
pub const HTTP_PROTOCOL_IPV6: &str = "disabled";
/// `spec.metadataOptions.httpPutResponseHopLimit`.
pub const HTTP_PUT_RESPONSE_HOP_LIMIT: i64 = 1;
/// `spec.metadataOptions.httpTokens` (IMDSv2).
pub const HTTP_TOKENS: &str = "required";

/// Fills a NodePool's absent fields with upstream's defaults.
pub fn nodepool(pool: &mut NodePool) {
    let template = &mut pool.spec.template.spec;
    template
        .expire_after
        .get_or_insert_with(|| EXPIRE_AFTER.into());
    // Only an absent `disruption` gets `consolidateAfter`: inside a given
    // one the field is required, as upstream's schema has it.
    let disruption = pool.spec.disruption.get_or_insert_with(|| Disruption {
        consolidate_after: Some(CONSOLIDATE_AFTER.into()),
        ..Default::default()
    });
    disruption
        .consolidation_policy
        .get_or_insert_with(|| CONSOLIDATION_POLICY.into());
    let budgets = disruption.budgets.get_or_insert_with(|| {
        vec![Budget {
            nodes: Some(BUDGET_NODES.into()),
            ..Default::default()
        }]
    });
    for budget in budgets {
        budget.nodes.get_or_insert_with(|| BUDGET_NODES.into());
    }
}

/// Fills a NodeClaim's absent fields with upstream's defaults.
pub fn nodeclaim(claim: &mut NodeClaim) {
    claim
        .spec
        .template
        .expire_after
        .get_or_insert_with(|| EXPIRE_AFTER.into());
}

/// Fills an EC2NodeClass's absent fields with upstream's defaults.
pub fn ec2nodeclass(class: &mut EC2NodeClass) {
    let options = class
        .spec
        .metadata_options
        .get_or_insert_with(Default::default);
    options
        .http_endpoint
        .get_or_insert_with(|| HTTP_ENDPOINT.into());
    options
        .http_protocol_ipv6
        .get_or_insert_with(|| HTTP_PROTOCOL_IPV6.into());
    options
        .http_put_response_hop_limit
        .get_or_insert(HTTP_PUT_RESPONSE_HOP_LIMIT);
    options
        .http_tokens
        .get_or_insert_with(|| HTTP_TOKENS.into());
}

/// What the API server fills into a NodePool spec that sets nothing
/// optional (`nodeClassRef` left null): where a spec's block equals this,
/// a client cannot tell whether it was written or defaulted (the
/// Terraform provider's import leaves such blocks out).
pub fn empty_nodepool_spec() -> Value {
    let mut pool: NodePool = serde_json::from_value(json!({
        "apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "x"},
        "spec": {"template": {"spec": {"requirements": [], "nodeClassRef": {"group": "", "kind": "", "name": ""}}}}
    }))
    .expect("a minimal NodePool");
    nodepool(&mut pool);
    let mut spec = serde_json::to_value(&pool.spec).expect("serializes");
    spec["template"]["spec"]["nodeClassRef"] = Value::Null;
    spec
}

/// What the API server fills into an EC2NodeClass spec that sets nothing
/// optional (see [`empty_nodepool_spec`]).
pub fn empty_ec2nodeclass_spec() -> Value {
    let mut class: EC2NodeClass = serde_json::from_value(json!({
        "apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "x"},
        "spec": {"subnetSelectorTerms": [], "securityGroupSelectorTerms": [], "amiSelectorTerms": []}
    }))
    .expect("a minimal EC2NodeClass");
    ec2nodeclass(&mut class);
    serde_json::to_value(&class.spec).expect("serializes")
}

/// Schema defaults per kind: a property path (`[]` steps into list items) and its value.
/// Parents come before children, as structural defaulting needs.
pub fn schema_defaults(kind: &str) -> Vec<(&'static str, Value)> {
    match kind {
        "NodePool" => vec![
            ("spec.template.spec.expireAfter", json!(EXPIRE_AFTER)),
            (
                "spec.disruption",
                json!({ "consolidateAfter": CONSOLIDATE_AFTER }),
            ),
            (
                "spec.disruption.consolidationPolicy",
                json!(CONSOLIDATION_POLICY),
            ),
            (
                "spec.disruption.budgets",
                json!([{ "nodes": BUDGET_NODES }]),
            ),
            ("spec.disruption.budgets[].nodes", json!(BUDGET_NODES)),
        ],
        "NodeClaim" => vec![("spec.expireAfter", json!(EXPIRE_AFTER))],
        "EC2NodeClass" => vec![
            (
                "spec.metadataOptions",
                json!({
                    "httpEndpoint": HTTP_ENDPOINT,
                    "httpProtocolIPv6": HTTP_PROTOCOL_IPV6,
                    "httpPutResponseHopLimit": HTTP_PUT_RESPONSE_HOP_LIMIT,
                    "httpTokens": HTTP_TOKENS,
                }),
            ),
            ("spec.metadataOptions.httpEndpoint", json!(HTTP_ENDPOINT)),
            (
                "spec.metadataOptions.httpProtocolIPv6",
                json!(HTTP_PROTOCOL_IPV6),
            ),
            (
                "spec.metadataOptions.httpPutResponseHopLimit",
                json!(HTTP_PUT_RESPONSE_HOP_LIMIT),
            ),
            ("spec.metadataOptions.httpTokens", json!(HTTP_TOKENS)),
        ],
        _ => Vec::new(),
    }
}

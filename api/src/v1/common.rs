//! Types shared by NodePool, NodeClaim and EC2NodeClass.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Requirement operators accepted in `requirements` (upstream's set, incl. `Gte`/`Lte`).
pub const OPERATORS: &[&str] = &[
    "In",
    "NotIn",
    "Exists",
    "DoesNotExist",
    "Gt",
    "Lt",
    "Gte",
    "Lte",
];

/// A node selector requirement with an optional minimum number of distinct values.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSelectorRequirementWithMinValues {
    /// The label key the requirement applies to.
    #[schemars(length(max = 316))]
    pub key: String,
    /// One of `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`, `Gte`, `Lte`.
    #[schemars(extend("enum" = ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", "Gte", "Lte"]))]
    pub operator: String,
    /// Values for `In`/`NotIn`; a single integer for `Gt`/`Lt`/`Gte`/`Lte`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxItems" = 50, "x-kubernetes-list-type" = "atomic"))]
    pub values: Option<Vec<String>>,
    /// The minimum number of distinct values the scheduler must keep flexible.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 50))]
    pub min_values: Option<i32>,
}

impl NodeSelectorRequirementWithMinValues {
    /// A requirement without `minValues`.
    pub fn new(key: &str, operator: &str, values: &[&str]) -> Self {
        NodeSelectorRequirementWithMinValues {
            key: key.to_string(),
            operator: operator.to_string(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
            min_values: None,
        }
    }

    /// The values, empty when none are given.
    pub fn values(&self) -> &[String] {
        self.values.as_deref().unwrap_or_default()
    }
}

/// A reference to the cloud-provider node class (`EC2NodeClass`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeClassReference {
    /// API group of the node class: `karpenter.k8s.aws`.
    #[schemars(regex(pattern = r"^[^/]*$"))]
    pub group: String,
    /// Kind of the node class: `EC2NodeClass`.
    pub kind: String,
    /// Name of the node class.
    pub name: String,
}

impl NodeClassReference {
    /// A reference to the EC2NodeClass `name`.
    pub fn ec2(name: &str) -> Self {
        NodeClassReference {
            group: crate::labels::AWS_GROUP.into(),
            kind: "EC2NodeClass".into(),
            name: name.into(),
        }
    }
}

/// A node taint (`v1.Taint`).
pub use k8s_openapi::api::core::v1::Taint;
/// A Kubernetes quantity as it appears on the wire (kept verbatim).
pub use k8s_openapi::apimachinery::pkg::api::resource::Quantity as WireQuantity;
/// A status condition (`metav1.Condition`).
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Resource names to quantities (`cpu: "4"`, `memory: 16Gi`).
pub type ResourceList = std::collections::BTreeMap<String, WireQuantity>;

/// Labels or annotations.
pub type StringMap = std::collections::BTreeMap<String, String>;

/// Looks up a condition by type.
pub fn find_condition<'a>(
    conditions: Option<&'a [Condition]>,
    type_: &str,
) -> Option<&'a Condition> {
    conditions?.iter().find(|c| c.type_ == type_)
}

/// Sets condition `type_` (adding it when missing). The transition time
/// moves only when the status changes. Returns whether anything changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
) -> bool {
    let status = if status { "True" } else { "False" };
    let now = || {
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now())
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == status && c.reason == reason && c.message == message => false,
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now();
            }
            c.status = status.to_string();
            c.reason = reason.to_string();
            c.message = message.to_string();
            c.observed_generation = observed_generation;
            true
        }
        None => {
            conditions.push(Condition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: reason.to_string(),
                message: message.to_string(),
                last_transition_time: now(),
                observed_generation,
            });
            true
        }
    }
}

/// FNV-1a (64 bit) over a value's canonical JSON (`serde_json` keeps map
/// keys sorted), in decimal: the drift hashes of NodePool templates and
/// EC2NodeClasses.
pub fn fnv_hash(value: &serde_json::Value) -> String {
    let hash = value
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    hash.to_string()
}

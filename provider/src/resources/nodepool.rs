//! `karpenter_nodepool`: the whole `karpenter.sh/v1` NodePool spec as
//! nested blocks, validated at plan time by the `api` crate's rules.

use super::crd::Kind;
use super::status::{self, StatusAttr};
use crate::cty::Type;
use crate::cty::Value;
use crate::mapping::Field;
use crate::schema::{Nesting, Presence};
use karpenter_api::v1::NodePool;
use serde_json::Value as Json;

fn string(
    tf: &'static str,
    json: &'static str,
    presence: Presence,
    description: &'static str,
) -> Field {
    Field::Attr {
        tf,
        json,
        ty: Type::String,
        presence,
        description,
    }
}

fn strings(tf: &'static str, json: &'static str, description: &'static str) -> Field {
    Field::Attr {
        tf,
        json,
        ty: Type::List(Box::new(Type::String)),
        presence: Presence::Optional,
        description,
    }
}

fn string_map(tf: &'static str, json: &'static str, description: &'static str) -> Field {
    Field::Attr {
        tf,
        json,
        ty: Type::Map(Box::new(Type::String)),
        presence: Presence::Optional,
        description,
    }
}

fn taint(tf: &'static str, json: &'static str, description: &'static str) -> Field {
    Field::Block {
        tf,
        json,
        nesting: Nesting::List,
        description,
        fields: vec![
            string("key", "key", Presence::Required, "The taint's key."),
            string("value", "value", Presence::Optional, "Its value."),
            string(
                "effect",
                "effect",
                Presence::Required,
                "`NoSchedule`, `PreferNoSchedule` or `NoExecute`.",
            ),
        ],
    }
}

/// The NodePool spec's fields.
pub fn fields() -> Vec<Field> {
    vec![
        Field::Block {
            tf: "template",
            json: "template",
            nesting: Nesting::Single,
            description: "What the NodeClaims of the pool look like.",
            fields: vec![
                Field::Block {
                    tf: "metadata",
                    json: "metadata",
                    nesting: Nesting::Single,
                    description: "Labels and annotations of the nodes.",
                    fields: vec![
                        string_map("labels", "labels", "Labels every node gets."),
                        string_map("annotations", "annotations", "Annotations every node gets."),
                    ],
                },
                Field::Block {
                    tf: "spec",
                    json: "spec",
                    nesting: Nesting::Single,
                    description: "The NodeClaim spec.",
                    fields: vec![
                        Field::Block {
                            tf: "node_class_ref",
                            json: "nodeClassRef",
                            nesting: Nesting::Single,
                            description: "The EC2NodeClass the nodes are launched with.",
                            fields: vec![
                                string(
                                    "group",
                                    "group",
                                    Presence::Required,
                                    "`karpenter.k8s.aws`.",
                                ),
                                string("kind", "kind", Presence::Required, "`EC2NodeClass`."),
                                string(
                                    "name",
                                    "name",
                                    Presence::Required,
                                    "The EC2NodeClass's name.",
                                ),
                            ],
                        },
                        Field::Block {
                            tf: "requirement",
                            json: "requirements",
                            nesting: Nesting::List,
                            description: "Node selector requirements the nodes satisfy.",
                            fields: vec![
                                string(
                                    "key",
                                    "key",
                                    Presence::Required,
                                    "A label key (`karpenter.sh/capacity-type`).",
                                ),
                                string(
                                    "operator",
                                    "operator",
                                    Presence::Required,
                                    "`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`, `Gte`, `Lte`.",
                                ),
                                strings("values", "values", "The values."),
                                Field::Attr {
                                    tf: "min_values",
                                    json: "minValues",
                                    ty: Type::Number,
                                    presence: Presence::Optional,
                                    description: "At least this many distinct values must stay possible.",
                                },
                            ],
                        },
                        taint("taint", "taints", "Taints every node gets."),
                        taint(
                            "startup_taint",
                            "startupTaints",
                            "Taints removed by a daemon once the node is ready.",
                        ),
                        string(
                            "expire_after",
                            "expireAfter",
                            Presence::OptionalComputed,
                            "Node lifetime (`720h` by default, or `Never`).",
                        ),
                        string(
                            "termination_grace_period",
                            "terminationGracePeriod",
                            Presence::Optional,
                            "The longest a node may drain.",
                        ),
                    ],
                },
            ],
        },
        Field::Block {
            tf: "disruption",
            json: "disruption",
            nesting: Nesting::Single,
            description: "How nodes may be disrupted.",
            fields: vec![
                string(
                    "consolidation_policy",
                    "consolidationPolicy",
                    Presence::OptionalComputed,
                    "`WhenEmptyOrUnderutilized` (default), `WhenEmpty` or `Balanced` (replace an occupied node only when the saving is worth the disruption).",
                ),
                string(
                    "consolidate_after",
                    "consolidateAfter",
                    Presence::OptionalComputed,
                    "Wait after the last pod change, or `Never`. Required in a `disruption` block, as upstream's CRD requires it; `0s` when the block is absent.",
                ),
                Field::Block {
                    tf: "budget",
                    json: "budgets",
                    nesting: Nesting::List,
                    description: "Disruption budgets (default: 10% of nodes).",
                    fields: vec![
                        string(
                            "nodes",
                            "nodes",
                            Presence::OptionalComputed,
                            "Nodes at a time: a count or a percentage (`10%`).",
                        ),
                        string(
                            "schedule",
                            "schedule",
                            Presence::Optional,
                            "Cron schedule when the budget is active.",
                        ),
                        string(
                            "duration",
                            "duration",
                            Presence::Optional,
                            "How long from each schedule start.",
                        ),
                        strings("reasons", "reasons", "`Underutilized`, `Empty`, `Drifted`."),
                    ],
                },
            ],
        },
        string_map(
            "limits",
            "limits",
            "Resource limits of the whole pool (`cpu = \"1000\"`).",
        ),
        Field::Attr {
            tf: "weight",
            json: "weight",
            ty: Type::Number,
            presence: Presence::Optional,
            description: "Priority among pools (1 to 100).",
        },
    ]
}

/// Defaults and validates a NodePool object; returns it defaulted, or each
/// problem as (JSON path, rule).
fn check(object: &Json) -> Result<Json, Vec<(String, String)>> {
    let mut pool: NodePool = serde_json::from_value(object.clone())
        .map_err(|e| vec![(String::from("spec"), e.to_string())])?;
    karpenter_api::defaults::nodepool(&mut pool);
    karpenter_api::validation::nodepool(&pool).map_err(|errors| {
        errors
            .errors
            .into_iter()
            .map(|e| (e.path, e.rule))
            .collect::<Vec<_>>()
    })?;
    serde_json::to_value(&pool).map_err(|e| vec![(String::from("spec"), e.to_string())])
}

/// Upstream requires `template.spec.requirements`, even empty.
fn complete(spec: &mut Json) {
    if let Some(template_spec) = spec
        .get_mut("template")
        .and_then(|t| t.get_mut("spec"))
        .and_then(Json::as_object_mut)
    {
        template_spec
            .entry("requirements")
            .or_insert_with(|| Json::Array(Vec::new()));
    }
}

/// The `karpenter_nodepool` resource.
pub fn kind() -> Kind {
    Kind {
        type_name: "karpenter_nodepool",
        api_version: "karpenter.sh/v1",
        kind: "NodePool",
        plural: "nodepools",
        description: "A Karpenter NodePool (`karpenter.sh/v1`): which nodes Karpenter may launch for pending pods, and how they are disrupted.",
        fields,
        check,
        default_spec: karpenter_api::defaults::empty_nodepool_spec,
        complete,
        nodeclaim_label: Some(karpenter_api::labels::NODEPOOL),
        status: || {
            vec![
                StatusAttr {
                    name: "status_nodes",
                    ty: Type::Number,
                    description: "Nodes in the pool.",
                    read: |status| Value::Number(status["nodes"].as_i64().unwrap_or(0).into()),
                },
                StatusAttr {
                    name: "status_resources",
                    ty: Type::Map(Box::new(Type::String)),
                    description: "Resources of the pool's nodes (`cpu`, `memory`, `pods`, ...).",
                    read: |status| status::string_map(status, "resources"),
                },
                status::conditions(),
            ]
        },
    }
}

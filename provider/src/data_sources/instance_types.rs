//! `karpenter_instance_types`: the instance type catalog (us-east-1, the
//! same data the controller schedules with) filtered by node selector
//! requirements on Karpenter's well-known labels, cheapest first.
//! On-demand prices come from the price table the catalog is built from;
//! spot prices are the controller's deterministic model (no spot price
//! history is reachable offline).

use super::with;
use crate::cty::{Type, Value};
use crate::error::ResourceError;
use crate::schema::{Attribute, Block, NestedBlock, Nesting, Presence};
use karpenter_api::requirements::Requirement;
use karpenter_catalog::{CapacityType, Catalog, InstanceType};
use std::collections::BTreeMap;

fn entry_type() -> Type {
    Type::Object(BTreeMap::from([
        ("name".into(), Type::String),
        ("architecture".into(), Type::String),
        ("vcpu".into(), Type::Number),
        ("memory_mib".into(), Type::Number),
        ("on_demand_price".into(), Type::Number),
        ("spot_price".into(), Type::Number),
    ]))
}

/// Its schema.
pub fn schema() -> Block {
    Block {
        attributes: vec![
            Attribute::new(
                "max_results",
                Type::Number,
                Presence::Optional,
                "Return at most this many (cheapest first).",
            ),
            Attribute::new(
                "names",
                Type::List(Box::new(Type::String)),
                Presence::Computed,
                "The matching types' names, cheapest first.",
            ),
            Attribute::new(
                "instance_types",
                Type::List(Box::new(entry_type())),
                Presence::Computed,
                "The matching types: `name`, `architecture`, `vcpu`, `memory_mib`, `on_demand_price` and `spot_price` (USD per hour; null where spot is not sold).",
            ),
        ],
        blocks: vec![NestedBlock {
            name: "requirement",
            nesting: Nesting::List,
            max_items: 0,
            block: Block {
                attributes: vec![
                    Attribute::new(
                        "key",
                        Type::String,
                        Presence::Required,
                        "A well-known label (`karpenter.k8s.aws/instance-family`).",
                    ),
                    Attribute::new(
                        "operator",
                        Type::String,
                        Presence::Required,
                        "`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`, `Gte`, `Lte`.",
                    ),
                    Attribute::new(
                        "values",
                        Type::List(Box::new(Type::String)),
                        Presence::Optional,
                        "The values.",
                    ),
                ],
                ..Block::default()
            },
        }],
        description: "Instance types matching requirements, with prices (us-east-1 catalog).",
    }
}

fn requirements(config: &Value) -> Result<Vec<Requirement>, String> {
    let Value::List(items) = config.get("requirement") else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let values: Vec<&str> = match item.get("values") {
                Value::List(v) => v.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let key = item.get("key").as_str().unwrap_or_default();
            let operator = item.get("operator").as_str().unwrap_or_default();
            Requirement::new(key, operator, &values).map_err(|e| format!("requirement[{i}]: {e}"))
        })
        .collect()
}

fn matches(instance: &InstanceType, requirements: &[Requirement]) -> bool {
    let labels = instance.labels();
    requirements.iter().all(|r| match labels.get(r.key()) {
        Some(value) => r.has(value),
        None => matches!(r.operator(), "DoesNotExist" | "NotIn"),
    })
}

/// Filters the catalog.
pub fn read(config: &Value) -> Result<Value, ResourceError> {
    let requirements = requirements(config)?;
    let mut found: Vec<&InstanceType> = Catalog::us_east_1()
        .iter()
        .filter(|t| matches(t, &requirements))
        .collect();
    found.sort_by(|a, b| {
        a.on_demand_price
            .total_cmp(&b.on_demand_price)
            .then(a.name.cmp(&b.name))
    });
    if let Value::Number(n) = config.get("max_results") {
        found.truncate(usize::try_from(n.as_u64().unwrap_or(0)).unwrap_or(usize::MAX));
    }
    let number = |f: f64| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number);
    let entries = found
        .iter()
        .map(|t| {
            Value::Map(BTreeMap::from([
                ("name".into(), Value::String(t.name.clone())),
                ("architecture".into(), Value::String(t.architecture.clone())),
                ("vcpu".into(), Value::Number(t.vcpu.into())),
                ("memory_mib".into(), Value::Number(t.memory_mib.into())),
                ("on_demand_price".into(), number(t.on_demand_price)),
                (
                    "spot_price".into(),
                    t.cheapest(&[], &[CapacityType::Spot])
                        .map_or(Value::Null, |o| number(o.price)),
                ),
            ]))
        })
        .collect();
    let names = found
        .iter()
        .map(|t| Value::String(t.name.clone()))
        .collect();
    Ok(with(
        config,
        vec![
            ("names", Value::List(names)),
            ("instance_types", Value::List(entries)),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_filter_the_catalog_cheapest_first() {
        let config = Value::Map(BTreeMap::from([(
            "requirement".to_string(),
            Value::List(vec![Value::Map(BTreeMap::from([
                (
                    "key".to_string(),
                    Value::String("karpenter.k8s.aws/instance-family".into()),
                ),
                ("operator".to_string(), Value::String("In".into())),
                (
                    "values".to_string(),
                    Value::List(vec![Value::String("m5".into())]),
                ),
            ]))]),
        )]));
        let read = read(&config).unwrap();
        let Value::List(names) = read.get("names") else {
            panic!()
        };
        assert!(names.len() > 5, "{names:?}");
        assert_eq!(names[0], Value::String("m5.large".into()));
        assert!(names.iter().all(|n| n.as_str().unwrap().starts_with("m5.")));
    }
}

//! Schemas as Terraform sees them: attributes and nested blocks (never
//! nested attributes, which crash Terraform 1.0.x), their cty types, and
//! their protocol form.

use crate::cty::Type;
use crate::proto::tfplugin6 as pb;
use std::collections::BTreeMap;

/// How an attribute may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Must be set.
    Required,
    /// May be set.
    Optional,
    /// May be set; when not, the provider fills it (a default, or what the
    /// server has).
    OptionalComputed,
    /// Set by the provider only.
    Computed,
}

/// One attribute.
#[derive(Debug, Clone)]
pub struct Attribute {
    /// Its name (snake_case).
    pub name: &'static str,
    /// Its type.
    pub ty: Type,
    /// How it may be set.
    pub presence: Presence,
    /// Kept out of logs and plans.
    pub sensitive: bool,
    /// What it means.
    pub description: &'static str,
}

/// How often a nested block may appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// At most once (an object, or null).
    Single,
    /// Any number of times, in order (a list of objects).
    List,
}

/// A nested block.
#[derive(Debug, Clone)]
pub struct NestedBlock {
    /// Its name.
    pub name: &'static str,
    /// Once or a list.
    pub nesting: Nesting,
    /// Its content.
    pub block: Block,
    /// The most blocks allowed (0: no limit; single blocks must say 0,
    /// which Terraform 1.15 checks: min and max must match for them).
    pub max_items: i64,
}

/// A block: attributes and nested blocks.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// Its attributes.
    pub attributes: Vec<Attribute>,
    /// Its nested blocks.
    pub blocks: Vec<NestedBlock>,
    /// What it is.
    pub description: &'static str,
}

impl Attribute {
    /// An attribute of type `ty`.
    pub fn new(
        name: &'static str,
        ty: Type,
        presence: Presence,
        description: &'static str,
    ) -> Self {
        Attribute {
            name,
            ty,
            presence,
            sensitive: false,
            description,
        }
    }

    /// The same attribute, sensitive.
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
}

impl Block {
    /// The block's value type: an object of its attributes and blocks.
    pub fn ty(&self) -> Type {
        let mut attrs: BTreeMap<String, Type> = self
            .attributes
            .iter()
            .map(|a| (a.name.to_string(), a.ty.clone()))
            .collect();
        for nested in &self.blocks {
            let inner = nested.block.ty();
            let ty = match nested.nesting {
                Nesting::Single => inner,
                Nesting::List => Type::List(Box::new(inner)),
            };
            attrs.insert(nested.name.to_string(), ty);
        }
        Type::Object(attrs)
    }

    /// The block in protocol form.
    pub fn to_proto(&self) -> pb::schema::Block {
        pb::schema::Block {
            version: 0,
            attributes: self
                .attributes
                .iter()
                .map(|a| pb::schema::Attribute {
                    name: a.name.to_string(),
                    r#type: a.ty.to_json().to_string().into_bytes(),
                    description: a.description.to_string(),
                    required: a.presence == Presence::Required,
                    optional: matches!(a.presence, Presence::Optional | Presence::OptionalComputed),
                    computed: matches!(a.presence, Presence::Computed | Presence::OptionalComputed),
                    sensitive: a.sensitive,
                    description_kind: pb::StringKind::Markdown as i32,
                    deprecated: false,
                })
                .collect(),
            block_types: self
                .blocks
                .iter()
                .map(|b| pb::schema::NestedBlock {
                    type_name: b.name.to_string(),
                    block: Some(b.block.to_proto()),
                    nesting: match b.nesting {
                        Nesting::Single => pb::schema::nested_block::NestingMode::Single,
                        Nesting::List => pb::schema::nested_block::NestingMode::List,
                    } as i32,
                    min_items: 0,
                    max_items: b.max_items,
                })
                .collect(),
            description: self.description.to_string(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
        }
    }

    /// The whole schema in protocol form.
    pub fn schema(&self) -> pb::Schema {
        pb::Schema {
            version: 0,
            block: Some(self.to_proto()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_types_its_nested_blocks() {
        let block = Block {
            attributes: vec![Attribute::new("name", Type::String, Presence::Required, "")],
            blocks: vec![NestedBlock {
                name: "taint",
                nesting: Nesting::List,
                block: Block {
                    attributes: vec![Attribute::new("key", Type::String, Presence::Required, "")],
                    ..Block::default()
                },
                max_items: 0,
            }],
            description: "",
        };
        assert_eq!(
            block.ty().to_json(),
            serde_json::json!(["object", {"name": "string", "taint": ["list", ["object", {"key": "string"}]]}])
        );
        let proto = block.to_proto();
        assert!(proto.attributes[0].required);
        assert_eq!(proto.block_types[0].nesting, 2);
    }
}

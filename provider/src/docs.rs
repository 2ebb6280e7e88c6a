//! The reference part of each doc page in `provider/docs/`, rendered from
//! the schemas, so a page never misses or misnames an attribute. A page
//! keeps its hand-written text; the part between the markers is generated,
//! and a test fails when it is stale (`UPDATE_DOCS=1 cargo test -p
//! terraform-provider-karpenter docs` rewrites it).

use crate::schema::{Block, Nesting, Presence};

/// Where the generated reference starts and ends in a page.
pub const BEGIN: &str = "<!-- schema: generated from the provider's schema; do not edit -->";
/// The end marker.
pub const END: &str = "<!-- end schema -->";

/// The reference of `block`: its arguments, then its attributes, then its
/// nested blocks, each with a heading.
pub fn reference(block: &Block) -> String {
    let mut out = String::new();
    section(&mut out, block, "");
    out
}

fn section(out: &mut String, block: &Block, prefix: &str) {
    let arguments: Vec<_> = block
        .attributes
        .iter()
        .filter(|a| a.presence != Presence::Computed)
        .collect();
    let computed: Vec<_> = block
        .attributes
        .iter()
        .filter(|a| a.presence == Presence::Computed)
        .collect();
    let title = if prefix.is_empty() {
        String::new()
    } else {
        format!(" of `{prefix}`")
    };
    if !arguments.is_empty() || !block.blocks.is_empty() {
        out.push_str(&format!("\n### Arguments{title}\n\n"));
        for a in &arguments {
            let how = match a.presence {
                Presence::Required => "Required",
                Presence::OptionalComputed => "Optional, defaulted",
                _ => "Optional",
            };
            let sensitive = if a.sensitive { ", sensitive" } else { "" };
            out.push_str(&format!(
                "- `{}` ({how}{sensitive}, `{}`): {}\n",
                a.name,
                type_name(&a.ty),
                a.description
            ));
        }
        for b in &block.blocks {
            let how = match b.nesting {
                Nesting::Single => "block, at most once",
                Nesting::List => "block, repeatable",
            };
            out.push_str(&format!(
                "- `{}` ({how}): {}\n",
                b.name, b.block.description
            ));
        }
    }
    if !computed.is_empty() {
        out.push_str(&format!("\n### Attributes{title}\n\n"));
        for a in &computed {
            out.push_str(&format!(
                "- `{}` (`{}`): {}\n",
                a.name,
                type_name(&a.ty),
                a.description
            ));
        }
    }
    for b in &block.blocks {
        let path = if prefix.is_empty() {
            b.name.to_string()
        } else {
            format!("{prefix}.{}", b.name)
        };
        section(out, &b.block, &path);
    }
}

fn type_name(ty: &crate::cty::Type) -> String {
    use crate::cty::Type;
    match ty {
        Type::String => "string".into(),
        Type::Number => "number".into(),
        Type::Bool => "bool".into(),
        Type::List(t) => format!("list({})", type_name(t)),
        Type::Map(t) => format!("map({})", type_name(t)),
        Type::Object(_) => "object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_sources::DataSource;
    use std::path::Path;

    fn pages() -> Vec<(String, Block)> {
        let mut pages = vec![("index.md".to_string(), crate::provider::config::schema())];
        for kind in crate::resources::all() {
            let file = kind.type_name.trim_start_matches("karpenter_");
            pages.push((format!("resources/{file}.md"), kind.schema()));
        }
        pages.push((
            "resources/node_role.md".to_string(),
            crate::resources::node_role::schema(),
        ));
        pages.push((
            "resources/controller_role.md".to_string(),
            crate::resources::controller_role::schema(),
        ));
        for source in DataSource::ALL {
            let file = source.type_name().trim_start_matches("karpenter_");
            pages.push((format!("data-sources/{file}.md"), source.schema()));
        }
        pages
    }

    #[test]
    fn every_page_has_the_current_reference() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        let update = std::env::var_os("UPDATE_DOCS").is_some();
        for (file, block) in pages() {
            let path = root.join(&file);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!("docs/{file} is missing: write its page with the markers")
            });
            let (head, rest) = text
                .split_once(BEGIN)
                .unwrap_or_else(|| panic!("docs/{file} lacks the begin marker"));
            let (_, tail) = rest
                .split_once(END)
                .unwrap_or_else(|| panic!("docs/{file} lacks the end marker"));
            let wanted = format!("{head}{BEGIN}\n{}\n{END}{tail}", reference(&block));
            if update {
                std::fs::write(&path, &wanted).unwrap();
            } else {
                assert!(
                    text == wanted,
                    "docs/{file} is stale: run `UPDATE_DOCS=1 cargo test -p terraform-provider-karpenter docs`"
                );
            }
        }
    }
}

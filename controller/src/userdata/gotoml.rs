//! A TOML writer in the style of `pelletier/go-toml/v2`, the encoder upstream
//! Karpenter writes Bottlerocket user data with: plain values of a table
//! first, then its sub-tables (a blank line before each), literal `'...'`
//! strings where possible, map keys sorted, struct fields in declaration order.

use toml::Value;

/// A value in a table: plain, a sub-table, or an array of tables.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// A string, number, boolean, date or inline array.
    Value(Value),
    /// A sub-table, written under its own `[header]`.
    Table(Table),
    /// An array of tables, written as `[[header]]` sections.
    Tables(Vec<Table>),
}

/// An ordered table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table(pub Vec<(String, Item)>);

impl Table {
    /// A table from a parsed TOML table: keys sorted, as Go maps are written.
    pub fn from_map(map: &toml::Table) -> Table {
        let mut entries: Vec<(String, Item)> = map
            .iter()
            .map(|(k, v)| (k.clone(), Item::from_value(v)))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        Table(entries)
    }

    /// Appends `key = item`.
    pub fn push(&mut self, key: &str, item: Item) {
        self.0.push((key.to_string(), item));
    }

    fn is_empty(&self) -> bool {
        self.0.iter().all(|(_, item)| match item {
            Item::Table(t) => t.is_empty(),
            Item::Tables(ts) => ts.is_empty(),
            Item::Value(_) => false,
        })
    }
}

impl Item {
    /// An item from a parsed TOML value (tables and arrays of tables kept as such).
    pub fn from_value(value: &Value) -> Item {
        match value {
            Value::Table(t) => Item::Table(Table::from_map(t)),
            Value::Array(a) if !a.is_empty() && a.iter().all(Value::is_table) => Item::Tables(
                a.iter()
                    .filter_map(Value::as_table)
                    .map(Table::from_map)
                    .collect(),
            ),
            other => Item::Value(other.clone()),
        }
    }
}

/// Writes `root` (no header of its own).
pub fn write(root: &Table) -> String {
    let mut out = String::new();
    write_table(&mut out, &[], root, false);
    out
}

fn write_table(out: &mut String, path: &[&str], table: &Table, header: bool) {
    if header {
        out.push('[');
        out.push_str(&header_path(path));
        out.push_str("]\n");
    }
    let mut has_values = false;
    for (key, item) in &table.0 {
        if let Item::Value(v) = item {
            has_values = true;
            out.push_str(&format!("{} = {}\n", key_text(key), value_text(v)));
        }
    }
    let mut first = true;
    for (key, item) in &table.0 {
        let children: Vec<(&Table, bool)> = match item {
            Item::Value(_) => continue,
            Item::Table(t) if t.is_empty() => continue,
            Item::Table(t) => vec![(t, false)],
            Item::Tables(ts) if ts.is_empty() => continue,
            Item::Tables(ts) => ts.iter().map(|t| (t, true)).collect(),
        };
        let mut child_path = path.to_vec();
        child_path.push(key);
        for (child, array) in children {
            if first {
                first = false;
                if has_values {
                    out.push('\n');
                }
            } else {
                out.push('\n');
            }
            if array {
                out.push_str(&format!("[[{}]]\n", header_path(&child_path)));
                write_table(out, &child_path, child, false);
            } else {
                write_table(out, &child_path, child, true);
            }
        }
    }
}

fn header_path(path: &[&str]) -> String {
    path.iter()
        .map(|k| key_text(k))
        .collect::<Vec<_>>()
        .join(".")
}

fn needs_quoting(text: &str) -> bool {
    text.bytes()
        .any(|b| b == b'\'' || b == b'\r' || b == b'\n' || (b < 0x20 && b != b'\t') || b == 0x7f)
}

fn basic_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn key_text(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        key.to_string()
    } else if needs_quoting(key) {
        basic_string(key)
    } else {
        format!("'{key}'")
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) if needs_quoting(s) => basic_string(s),
        Value::String(s) => format!("'{s}'"),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => "nan".into(),
        Value::Float(f) if f.is_infinite() => (if *f > 0.0 { "inf" } else { "-inf" }).into(),
        Value::Float(f) if f.fract() == 0.0 => format!("{f:.1}"),
        Value::Float(f) => f.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.to_string(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(value_text).collect::<Vec<_>>().join(", ")
        ),
        Value::Table(t) => {
            let mut keys: Vec<&String> = t.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{} = {}", key_text(k), value_text(&t[k])))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_first_then_tables_with_blank_lines() {
        let parsed: toml::Table = toml::from_str(
            "[settings.network]\nno-proxy = [\"a\", \"b\"]\nhostname = \"h\"\n[settings.kubernetes.node-labels]\n\"a.b/c\" = \"it's\"\n",
        )
        .unwrap();
        let text = write(&Table::from_map(&parsed));
        assert_eq!(
            text,
            "[settings]\n[settings.kubernetes]\n[settings.kubernetes.node-labels]\n'a.b/c' = \"it's\"\n\n[settings.network]\nhostname = 'h'\nno-proxy = ['a', 'b']\n"
        );
        let again: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(again, parsed);
    }
}

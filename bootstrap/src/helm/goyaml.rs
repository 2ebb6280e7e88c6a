//! YAML as Helm's `toYaml` writes it (go-yaml v2 through
//! `sigs.k8s.io/yaml`): keys sorted, a list under a key not indented,
//! strings plain where YAML 1.1 would read them back as the same string,
//! double-quoted where it would read another type (`"true"`, `"1"`, `""`),
//! single-quoted where plain text would not parse (`'a: b'`), multi-line
//! strings as literal blocks. The bootstrap's
//! rendering must equal Helm's byte for byte (`tests/helm.rs` compares).

use serde_json::Value;

/// `value` as go-yaml v2 marshals it, without the final newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(map, 0, &mut out),
        Value::Array(items) if !items.is_empty() => write_seq(items, 0, &mut out),
        scalar => {
            out.push_str(&scalar_text(scalar, 0));
            out.push('\n');
        }
    }
    out.trim_end_matches('\n').to_string()
}

fn pad(indent: usize) -> String {
    " ".repeat(indent)
}

fn write_map(map: &serde_json::Map<String, Value>, indent: usize, out: &mut String) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort();
    for key in keys {
        out.push_str(&pad(indent));
        out.push_str(&string(key, indent));
        out.push(':');
        write_value_after_key(&map[key], indent, out);
    }
}

/// What follows `key:` (a nested block, or ` scalar`).
fn write_value_after_key(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(map, indent + 2, out);
        }
        // go-yaml v2 writes a list under a key at the key's own indentation.
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_seq(items, indent, out);
        }
        scalar => {
            out.push(' ');
            out.push_str(&scalar_text(scalar, indent + 2));
            out.push('\n');
        }
    }
}

fn write_seq(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&pad(indent));
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                // The first key on the dash's line, the rest below it.
                let mut nested = String::new();
                write_map(map, indent + 2, &mut nested);
                out.push(' ');
                out.push_str(nested.trim_start_matches(' '));
            }
            Value::Array(inner) if !inner.is_empty() => {
                let mut nested = String::new();
                write_seq(inner, indent + 2, &mut nested);
                out.push(' ');
                out.push_str(nested.trim_start_matches(' '));
            }
            scalar => {
                out.push(' ');
                out.push_str(&scalar_text(scalar, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn scalar_text(value: &Value, indent: usize) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, indent),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

/// A string scalar: plain, single-quoted, double-quoted or a literal block.
fn string(s: &str, indent: usize) -> String {
    if s.contains('\n') && s.chars().all(|c| c == '\n' || !c.is_control()) {
        return literal(s, indent);
    }
    // go-yaml v2 asks for double quotes when the plain text would read back
    // as another type, and the emitter falls back to single quotes when
    // plain text would not parse at all.
    if s.is_empty() || resolves_to_other_type(s) || s.chars().any(|c| c.is_control()) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "''"))
}

/// libyaml's double-quoted style: `\\`, `\"`, named escapes, else `\xNN`.
fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\0' => out.push_str("\\0"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A literal block (`|-`, `|` or `|+` by the trailing newlines).
fn literal(s: &str, indent: usize) -> String {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let body = s.strip_suffix('\n').unwrap_or(s);
    let indicator = if body.starts_with(' ') { "2" } else { "" };
    let mut out = format!("|{indicator}{chomp}");
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad(indent));
            out.push_str(line);
        }
    }
    out
}

/// libyaml's analysis: may the string be written without quotes?
fn plain_allowed(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if first.is_whitespace() || s.ends_with(char::is_whitespace) {
        return false;
    }
    let second_is_space = s.chars().nth(1).is_none_or(char::is_whitespace);
    match first {
        '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
        | '@' | '`' => return false,
        '-' | '?' | ':' if second_is_space => return false,
        _ => {}
    }
    !(s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.chars().any(char::is_control))
}

/// Whether YAML 1.1 (as go-yaml v2 resolves it) reads the plain text as
/// something other than a string: booleans, null, numbers, timestamps.
fn resolves_to_other_type(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "true", "True", "TRUE", "false", "False", "FALSE", "yes", "Yes", "YES", "no", "No", "NO",
        "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N", "null", "Null", "NULL", "~",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits = unsigned.replace('_', "");
    let is_int = !digits.is_empty()
        && (digits.chars().all(|c| c.is_ascii_digit())
            || digits
                .strip_prefix("0x")
                .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            || digits
                .strip_prefix("0b")
                .is_some_and(|b| !b.is_empty() && b.chars().all(|c| c == '0' || c == '1')));
    let is_float = {
        let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
            Some((m, e)) => (m, Some(e)),
            None => (digits.as_str(), None),
        };
        // go-yaml v2: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
        let mantissa_ok = match mantissa.split_once('.') {
            Some((whole, fraction)) => {
                whole.chars().all(|c| c.is_ascii_digit())
                    && fraction.chars().all(|c| c.is_ascii_digit())
                    && (!whole.is_empty() || !fraction.is_empty())
            }
            None => !mantissa.is_empty() && mantissa.chars().all(|c| c.is_ascii_digit()),
        };
        let exponent_ok = exponent.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        });
        mantissa_ok && exponent_ok
    };
    let is_timestamp = {
        let bytes = s.as_bytes();
        bytes.len() >= 10
            && bytes[4] == b'-'
            && bytes[..4].iter().all(u8::is_ascii_digit)
            && s[5..]
                .split(['-', 'T', 't', ' ', ':', '.', 'Z', '+'])
                .next()
                .is_some_and(|m| {
                    !m.is_empty() && m.len() <= 2 && m.chars().all(|c| c.is_ascii_digit())
                })
    };
    is_int || is_float || is_timestamp
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Outputs Helm v4's `toYaml` gave for the same values (seen in the
    /// release manifests `tests/helm.rs` compares).
    #[test]
    fn writes_what_helm_writes() {
        assert_eq!(
            to_yaml(&json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}])),
            "- apiGroups:\n  - \"\"\n  resources:\n  - configmaps\n  verbs:\n  - get"
        );
        assert_eq!(
            to_yaml(&json!({"prometheus.io/scrape": "true", "team": "platform"})),
            "prometheus.io/scrape: \"true\"\nteam: platform"
        );
        assert_eq!(
            to_yaml(&json!({"options": [{"name": "ndots", "value": "1"}]})),
            "options:\n- name: ndots\n  value: \"1\""
        );
        assert_eq!(
            to_yaml(&json!([{"emptyDir": {}, "name": "token"}])),
            "- emptyDir: {}\n  name: token"
        );
        assert_eq!(
            to_yaml(
                &json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "DoesNotExist"}]}]})
            ),
            "nodeSelectorTerms:\n- matchExpressions:\n  - key: k\n    operator: DoesNotExist"
        );
    }

    #[test]
    fn quotes_only_what_yaml_would_read_otherwise() {
        for plain in ["platform", "a:b", "-x", "1.2.3", "v1", "http://x/y", "a b"] {
            assert_eq!(string(plain, 0), plain, "{plain}");
        }
        for (text, quoted) in [
            ("", "\"\""),
            ("yes", "\"yes\""),
            ("0x1F", "\"0x1F\""),
            ("1e3", "\"1e3\""),
            ("2026-12-02", "\"2026-12-02\""),
            ("- x", "'- x'"),
            ("a: b", "'a: b'"),
            ("it's", "it's"),
            ("'q'", "'''q'''"),
            (" lead", "' lead'"),
            ("*", "'*'"),
        ] {
            assert_eq!(string(text, 0), quoted, "{text}");
        }
        assert_eq!(string("a\u{1}b", 0), "\"a\\x01b\"");
        assert_eq!(
            to_yaml(&json!({"script": "one\ntwo"})),
            "script: |-\n  one\n  two"
        );
    }
}

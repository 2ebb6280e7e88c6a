//! Label selectors (equality and set-based) and field selectors, as list and
//! watch requests carry them (`?labelSelector=app=web,tier in (a,b),!legacy`).

use crate::status::ApiError;
use serde_json::Value;

/// One parsed selector term.
#[derive(Debug, Clone, PartialEq)]
enum Term {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label or field selector; matches when every term does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector(Vec<Term>);

impl Selector {
    /// Parses a label selector (equality and set-based terms).
    pub fn labels(text: &str) -> Result<Self, ApiError> {
        parse(text, true)
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))
    }

    /// Parses a field selector (`=`, `==`, `!=` only).
    pub fn fields(text: &str) -> Result<Self, ApiError> {
        parse(text, false)
            .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))
    }

    /// True when the object's labels satisfy every term.
    pub fn matches_labels(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        self.0.iter().all(|term| {
            term.matches(|key| labels.get(key).and_then(Value::as_str).map(str::to_string))
        })
    }

    /// True when the object's fields (dotted paths such as `spec.nodeName`) satisfy
    /// every term; a missing field reads as the empty string, as upstream does.
    pub fn matches_fields(&self, obj: &Value) -> bool {
        self.0.iter().all(|term| {
            term.matches(|path| {
                let value = path.split('.').try_fold(obj, |v, step| v.get(step));
                Some(match value {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                })
            })
        })
    }

    /// True when there are no terms.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Term {
    fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        match self {
            Term::Equals(k, v) => lookup(k).as_deref() == Some(v.as_str()),
            Term::NotEquals(k, v) => lookup(k).as_deref() != Some(v.as_str()),
            Term::In(k, vs) => lookup(k).is_some_and(|v| vs.contains(&v)),
            Term::NotIn(k, vs) => lookup(k).is_none_or(|v| !vs.contains(&v)),
            Term::Exists(k) => lookup(k).is_some(),
            Term::NotExists(k) => lookup(k).is_none(),
        }
    }
}

/// Splits on commas outside parentheses.
fn split_terms(text: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                terms.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse(text: &str, set_based: bool) -> Result<Selector, String> {
    let mut terms = Vec::new();
    for raw in split_terms(text) {
        let term = if let Some((k, v)) = raw.split_once("!=") {
            Term::NotEquals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = raw.split_once("==").or_else(|| raw.split_once('=')) {
            Term::Equals(k.trim().into(), v.trim().into())
        } else if !set_based {
            return Err(format!("{raw:?}: expected key=value or key!=value"));
        } else if let Some(key) = raw.strip_prefix('!') {
            Term::NotExists(key.trim().into())
        } else if let Some((key, rest)) = split_set_operator(raw, " notin ") {
            Term::NotIn(key, parse_values(rest)?)
        } else if let Some((key, rest)) = split_set_operator(raw, " in ") {
            Term::In(key, parse_values(rest)?)
        } else if raw
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            Term::Exists(raw.into())
        } else {
            return Err(format!(
                "{raw:?}: expected one of =, ==, !=, in, notin, or a key"
            ));
        };
        terms.push(term);
    }
    Ok(Selector(terms))
}

fn split_set_operator<'a>(raw: &'a str, operator: &str) -> Option<(String, &'a str)> {
    raw.split_once(operator)
        .map(|(k, rest)| (k.trim().to_string(), rest.trim()))
}

fn parse_values(text: &str) -> Result<Vec<String>, String> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("{text:?}: expected a parenthesised value list"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(labels: Value) -> Value {
        json!({"metadata": {"name": "p", "labels": labels}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}})
    }

    #[test]
    fn equality_and_set_based_labels() {
        let p = pod(json!({"app": "web", "tier": "front"}));
        for (selector, expected) in [
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app=web,tier=front", true),
            ("tier in (front, back)", true),
            ("tier notin (front)", false),
            ("missing notin (x)", true),
            ("app", true),
            ("!app", false),
            ("!legacy", true),
            ("app in (api),tier=front", false),
            ("", true),
        ] {
            assert_eq!(
                Selector::labels(selector).unwrap().matches_labels(&p),
                expected,
                "{selector}"
            );
        }
        assert!(Selector::labels("tier in front").is_err());
    }

    #[test]
    fn field_selectors_read_paths() {
        let p = pod(json!({}));
        for (selector, expected) in [
            ("metadata.name=p", true),
            ("spec.nodeName=n1", true),
            ("spec.nodeName!=n1", false),
            ("spec.nodeName=", false),
            ("status.phase=Running,metadata.name=p", true),
            ("metadata.namespace=", true),
        ] {
            assert_eq!(
                Selector::fields(selector).unwrap().matches_fields(&p),
                expected,
                "{selector}"
            );
        }
        assert!(Selector::fields("spec.nodeName").is_err());
    }
}

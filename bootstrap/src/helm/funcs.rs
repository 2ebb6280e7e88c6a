//! The template functions the chart uses, with the meaning Helm gives them:
//! Helm's own `include`, `required`, `toYaml` and the Sprig functions
//! `default`, `quote`, `toString`, `indent`, `nindent`, `trunc`,
//! `trimSuffix`, `contains` and `join`. Go's built-ins (`printf`, `eq`, `index`,
//! ...) come with `gtmpl`. A chart that calls anything else fails to parse
//! with the function's name, so the list grows with the chart.

use super::chart::ChartFile;
use gtmpl::{Context, Func, FuncError, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Every function a chart template may call besides Go's built-ins.
pub const FUNCS: &[(&str, Func)] = &[
    ("include", include),
    ("required", required),
    ("toYaml", to_yaml),
    ("default", default),
    ("quote", quote),
    ("toString", to_string),
    ("indent", indent),
    ("nindent", nindent),
    ("trunc", trunc),
    ("trimSuffix", trim_suffix),
    ("contains", contains),
    ("join", join),
];

thread_local! {
    /// The templates of the chart being rendered, for `include`.
    static TEMPLATES: RefCell<Vec<ChartFile>> = const { RefCell::new(Vec::new()) };
    /// Parsed template sets, one per entry point, reused within a render.
    static PARSED: RefCell<HashMap<String, Rc<gtmpl::Template>>> = RefCell::new(HashMap::new());
}

/// Makes `templates` what `include` looks names up in, until the guard drops.
pub(super) fn scope(templates: &[ChartFile]) -> Scope {
    TEMPLATES.with(|t| *t.borrow_mut() = templates.to_vec());
    PARSED.with(|p| p.borrow_mut().clear());
    Scope
}

/// Clears what [`scope`] set when dropped.
pub(super) struct Scope;

impl Drop for Scope {
    fn drop(&mut self) {
        TEMPLATES.with(|t| t.borrow_mut().clear());
        PARSED.with(|p| p.borrow_mut().clear());
    }
}

/// The template set whose entry point is `name` (a file or a `define`).
pub(super) fn template(name: &str) -> Result<Rc<gtmpl::Template>, String> {
    if let Some(parsed) = PARSED.with(|p| p.borrow().get(name).cloned()) {
        return Ok(parsed);
    }
    let mut set = gtmpl::Template::with_name(name);
    set.add_funcs(FUNCS);
    TEMPLATES.with(|templates| {
        for file in templates.borrow().iter() {
            set.add_template(file.path, file.text)
                .map_err(|e| format!("{}: {e}", file.path))?;
        }
        Ok::<_, String>(())
    })?;
    let parsed = Rc::new(set);
    PARSED.with(|p| p.borrow_mut().insert(name.to_string(), parsed.clone()));
    Ok(parsed)
}

fn fail(message: impl Into<String>) -> FuncError {
    FuncError::Generic(message.into())
}

fn arg<'a>(args: &'a [Value], i: usize, func: &str) -> Result<&'a Value, FuncError> {
    args.get(i)
        .ok_or_else(|| FuncError::AtLeastXArgs(func.to_string(), i + 1))
}

/// Go's `fmt.Sprint` of one value, as Sprig's `toString` gives it.
fn text(value: &Value) -> String {
    match value {
        Value::NoValue | Value::Nil => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sprig's `empty`: nil, false, 0, "" and empty collections.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::NoValue | Value::Nil => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => {
            n.as_i64() == Some(0) || n.as_u64() == Some(0) || n.as_f64() == Some(0.0)
        }
        Value::Array(a) => a.is_empty(),
        Value::Map(m) | Value::Object(m) => m.is_empty(),
        Value::Function(_) => false,
    }
}

fn include(args: &[Value]) -> Result<Value, FuncError> {
    let name = text(arg(args, 0, "include")?);
    let data = args.get(1).cloned().unwrap_or(Value::Nil);
    let set = template(&name).map_err(fail)?;
    let out = set
        .render(&Context::from(data))
        .map_err(|e| fail(format!("include {name:?}: {e}")))?;
    Ok(Value::String(out))
}

fn required(args: &[Value]) -> Result<Value, FuncError> {
    let message = text(arg(args, 0, "required")?);
    let value = args.get(1).cloned().unwrap_or(Value::Nil);
    match &value {
        Value::NoValue | Value::Nil => Err(fail(message)),
        Value::String(s) if s.is_empty() => Err(fail(message)),
        _ => Ok(value),
    }
}

fn to_yaml(args: &[Value]) -> Result<Value, FuncError> {
    let json = to_json(arg(args, 0, "toYaml")?);
    Ok(Value::String(super::goyaml::to_yaml(&json)))
}

fn default(args: &[Value]) -> Result<Value, FuncError> {
    let fallback = arg(args, 0, "default")?;
    match args.get(1) {
        Some(given) if !is_empty(given) => Ok(given.clone()),
        _ => Ok(fallback.clone()),
    }
}

fn quote(args: &[Value]) -> Result<Value, FuncError> {
    let quoted: Vec<String> = args
        .iter()
        .filter(|v| !matches!(v, Value::Nil | Value::NoValue))
        .map(|v| serde_json::Value::String(text(v)).to_string())
        .collect();
    Ok(Value::String(quoted.join(" ")))
}

fn to_string(args: &[Value]) -> Result<Value, FuncError> {
    Ok(Value::String(text(arg(args, 0, "toString")?)))
}

fn spaces(args: &[Value], func: &str) -> Result<String, FuncError> {
    match arg(args, 0, func)? {
        Value::Number(n) => {
            let width = n
                .as_u64()
                .ok_or_else(|| fail(format!("{func}: width must be >= 0")))?;
            Ok(" ".repeat(usize::try_from(width).unwrap_or(0)))
        }
        _ => Err(fail(format!("{func}: the first argument is the width"))),
    }
}

fn indent(args: &[Value]) -> Result<Value, FuncError> {
    let pad = spaces(args, "indent")?;
    let body = text(arg(args, 1, "indent")?);
    Ok(Value::String(format!(
        "{pad}{}",
        body.replace('\n', &format!("\n{pad}"))
    )))
}

fn nindent(args: &[Value]) -> Result<Value, FuncError> {
    let indented = indent(args)?;
    Ok(Value::String(format!("\n{}", text(&indented))))
}

fn trunc(args: &[Value]) -> Result<Value, FuncError> {
    let Value::Number(n) = arg(args, 0, "trunc")? else {
        return Err(fail("trunc: the first argument is the length"));
    };
    let s = text(arg(args, 1, "trunc")?);
    let length = n.as_i64().unwrap_or(0);
    let count = s.chars().count();
    let kept: String = if length >= 0 {
        s.chars()
            .take(usize::try_from(length).unwrap_or(0))
            .collect()
    } else {
        let skip = count.saturating_sub(usize::try_from(-length).unwrap_or(0));
        s.chars().skip(skip).collect()
    };
    Ok(Value::String(kept))
}

fn trim_suffix(args: &[Value]) -> Result<Value, FuncError> {
    let suffix = text(arg(args, 0, "trimSuffix")?);
    let s = text(arg(args, 1, "trimSuffix")?);
    Ok(Value::String(
        s.strip_suffix(&suffix).unwrap_or(&s).to_string(),
    ))
}

fn contains(args: &[Value]) -> Result<Value, FuncError> {
    let needle = text(arg(args, 0, "contains")?);
    Ok(Value::Bool(
        text(arg(args, 1, "contains")?).contains(&needle),
    ))
}

/// Sprig's `join sep list`: the list's items as text, joined by `sep` (a
/// single value is itself).
fn join(args: &[Value]) -> Result<Value, FuncError> {
    let separator = text(arg(args, 0, "join")?);
    let joined = match arg(args, 1, "join")? {
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(&separator),
        Value::Nil | Value::NoValue => String::new(),
        other => text(other),
    };
    Ok(Value::String(joined))
}

/// A template value as JSON, maps with sorted keys (as Go's YAML writes them).
pub(super) fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::NoValue | Value::Nil | Value::Function(_) => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.into(),
            (None, Some(u), _) => u.into(),
            (None, None, Some(f)) => serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            _ => serde_json::Value::Null,
        },
        Value::Array(items) => items.iter().map(to_json).collect(),
        Value::Map(map) | Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let sorted: serde_json::Map<String, serde_json::Value> = keys
                .into_iter()
                .map(|k| (k.clone(), to_json(&map[k])))
                .collect();
            serde_json::Value::Object(sorted)
        }
    }
}

/// JSON as a template value; objects become maps, where a missing key reads
/// as no value (as in Go), not an error.
pub(super) fn from_json(value: &serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(u)) => Value::from(u),
            _ => Value::from(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(items) => Value::Array(items.iter().map(from_json).collect()),
        serde_json::Value::Object(map) => {
            Value::Map(map.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(f: Func, args: &[Value]) -> String {
        text(&f(args).unwrap())
    }

    #[test]
    fn sprig_functions_behave_as_in_helm() {
        let s = |v: &str| Value::String(v.into());
        assert_eq!(call(default, &[s("x"), s("")]), "x");
        assert_eq!(call(default, &[s("x"), s("y")]), "y");
        assert_eq!(call(default, &[s("x"), Value::from(0i64)]), "x");
        assert_eq!(call(quote, &[s("a\"b")]), "\"a\\\"b\"");
        assert_eq!(call(quote, &[Value::Bool(false)]), "\"false\"");
        assert_eq!(call(nindent, &[Value::from(2i64), s("a\nb")]), "\n  a\n  b");
        assert_eq!(call(indent, &[Value::from(1i64), s("a")]), " a");
        assert_eq!(call(trunc, &[Value::from(3i64), s("abcdef")]), "abc");
        assert_eq!(call(trunc, &[Value::from(-2i64), s("abcdef")]), "ef");
        assert_eq!(call(trim_suffix, &[s("-"), s("ab-")]), "ab");
        assert_eq!(call(contains, &[s("kar"), s("karpenter")]), "true");
        let map = from_json(&serde_json::json!({"b": [1, {"d": "x", "c": true}], "a": 0.5}));
        assert_eq!(call(to_yaml, &[map]), "a: 0.5\nb:\n- 1\n- c: true\n  d: x");
    }

    #[test]
    fn required_names_what_is_missing() {
        let err = required(&[
            Value::String("settings.clusterName is required".into()),
            Value::NoValue,
        ]);
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("settings.clusterName")
        );
    }
}

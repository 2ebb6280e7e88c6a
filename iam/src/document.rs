//! IAM policy documents as JSON: statements with conditions grouped by
//! operator and key, rendered the way `aws_iam_policy_document` renders
//! them (single values stay lists, so documents compare as written).

use serde_json::{Map, Value, json};

/// One condition: operator (`StringEquals`), key (`aws:RequestTag/...`) and
/// the values any of which satisfies it.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator, such as `StringEquals` or `ForAllValues:StringEquals`.
    pub test: &'static str,
    /// The condition key.
    pub variable: String,
    /// The accepted values.
    pub values: Vec<String>,
}

impl Condition {
    /// A condition of `test` on `variable` accepting `values`.
    pub fn new(test: &'static str, variable: impl Into<String>, values: &[&str]) -> Self {
        Condition {
            test,
            variable: variable.into(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// Its id (every statement here has one, so changes diff readably).
    pub sid: &'static str,
    /// `Allow` or `Deny`.
    pub effect: &'static str,
    /// The principal, for resource and trust policies.
    pub principal: Option<Value>,
    /// The actions.
    pub actions: Vec<String>,
    /// The resources (none for trust policies).
    pub resources: Vec<String>,
    /// The conditions, all of which must hold.
    pub conditions: Vec<Condition>,
}

impl Statement {
    /// An `Allow` statement `sid` of `actions` on `resources`.
    pub fn allow(sid: &'static str, actions: &[&str], resources: &[String]) -> Self {
        Statement {
            sid,
            effect: "Allow",
            principal: None,
            actions: actions.iter().map(|a| a.to_string()).collect(),
            resources: resources.to_vec(),
            conditions: Vec::new(),
        }
    }

    /// A `Deny` statement `sid` of `actions` on `resources`.
    pub fn deny(sid: &'static str, actions: &[&str], resources: &[String]) -> Self {
        Statement {
            effect: "Deny",
            ..Statement::allow(sid, actions, resources)
        }
    }

    /// The statement with one more condition.
    pub fn when(
        mut self,
        test: &'static str,
        variable: impl Into<String>,
        values: &[&str],
    ) -> Self {
        self.conditions.push(Condition::new(test, variable, values));
        self
    }

    /// The statement with a principal.
    pub fn by(mut self, principal: Value) -> Self {
        self.principal = Some(principal);
        self
    }

    /// The statement as IAM JSON.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("Sid".into(), json!(self.sid));
        out.insert("Effect".into(), json!(self.effect));
        if let Some(principal) = &self.principal {
            out.insert("Principal".into(), principal.clone());
        }
        out.insert("Action".into(), json!(self.actions));
        if !self.resources.is_empty() {
            out.insert("Resource".into(), json!(self.resources));
        }
        if !self.conditions.is_empty() {
            let mut by_test: Map<String, Value> = Map::new();
            for c in &self.conditions {
                let keys = by_test
                    .entry(c.test)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(keys) = keys {
                    keys.insert(c.variable.clone(), json!(c.values));
                }
            }
            out.insert("Condition".into(), Value::Object(by_test));
        }
        Value::Object(out)
    }
}

/// A policy document of `statements`.
pub fn policy(statements: &[Statement]) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": statements.iter().map(Statement::to_json).collect::<Vec<_>>(),
    })
}

/// A policy document as IAM returns it (URL-encoded JSON) or as written
/// (plain JSON); `None` when it is neither.
pub fn parse_document(text: &str) -> Option<Value> {
    if let Ok(plain) = serde_json::from_str(text) {
        return Some(plain);
    }
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.bytes();
    while let Some(b) = rest.next() {
        match b {
            b'%' => {
                let hex: Vec<u8> = rest.by_ref().take(2).collect();
                let hex = std::str::from_utf8(&hex).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
            }
            b'+' => bytes.push(b' '),
            b => bytes.push(b),
        }
    }
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_read_url_encoded_or_plain() {
        let plain = json!({"Version": "2012-10-17", "Statement": [{"Sid": "A b"}]});
        assert_eq!(parse_document(&plain.to_string()), Some(plain.clone()));
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Sid%22%3A%22A+b%22%7D%5D%7D";
        assert_eq!(parse_document(encoded), Some(plain));
        assert_eq!(parse_document("%ZZ"), None);
    }

    #[test]
    fn conditions_group_by_operator_then_key() {
        let statement = Statement::allow("S", &["ec2:CreateTags"], &["*".to_string()])
            .when("StringEquals", "aws:RequestTag/a", &["1"])
            .when("StringEquals", "aws:RequestTag/b", &["2"])
            .when("StringLike", "aws:RequestTag/c", &["*"]);
        assert_eq!(
            statement.to_json(),
            json!({"Sid": "S", "Effect": "Allow", "Action": ["ec2:CreateTags"], "Resource": ["*"],
                "Condition": {"StringEquals": {"aws:RequestTag/a": ["1"], "aws:RequestTag/b": ["2"]},
                    "StringLike": {"aws:RequestTag/c": ["*"]}}})
        );
    }
}

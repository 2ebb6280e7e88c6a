//! Query parameters of API requests.

use std::collections::HashMap;

/// Decoded query parameters (`?labelSelector=app%3Dweb&watch=true`), and the
/// response format the request asked for.
#[derive(Debug, Default)]
pub(crate) struct Query {
    params: HashMap<String, String>,
    /// Answer reads with a `meta.k8s.io/v1` Table (`Accept: ...;as=Table`).
    pub(crate) as_table: bool,
}

impl Query {
    /// Parses `a=b&c=d`, percent-decoding keys and values.
    pub(crate) fn parse(text: &str) -> Self {
        let params = text
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect();
        Query {
            params,
            as_table: false,
        }
    }

    /// A parameter's value.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.params
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A true/false parameter (`watch=true`, `watch=1`).
    pub(crate) fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    /// A numeric parameter.
    pub(crate) fn number(&self, key: &str) -> Option<u64> {
        self.get(key)?.parse().ok()
    }
}

/// Percent-decoding with `+` as space (form encoding).
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_selectors() {
        let q =
            super::Query::parse("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&limit=5&x=%zz");
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.number("limit"), Some(5));
        assert_eq!(q.get("x"), Some("%zz"));
        assert_eq!(q.get("missing"), None);
    }
}

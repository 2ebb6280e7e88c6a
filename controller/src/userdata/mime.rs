//! MIME multi-part documents as cloud-init and nodeadm read them, and as
//! upstream Karpenter writes them (Go's `mime/multipart` writer with the
//! carriage returns removed, boundary `//`).
//!
//! Parsing follows Go's `net/mail` + `mime/multipart` readers: headers up to
//! the first empty line (folded lines joined), the top-level `Content-Type`
//! must be `multipart/*` with a `boundary`, text before the first delimiter is
//! preamble, the line break before a delimiter belongs to the delimiter, and a
//! delimiter followed by the end of the input ends the document like the
//! closing one does. Not modelled: `Content-Transfer-Encoding` decoding
//! (Go's reader decodes quoted-printable parts; such parts are kept verbatim).

use super::UserDataError;

/// The boundary upstream Karpenter writes.
pub const BOUNDARY: &str = "//";
/// Content type of a shell-script part.
pub const SHELL_SCRIPT: &str = "text/x-shellscript; charset=\"us-ascii\"";
/// Content type of a nodeadm `NodeConfig` part.
pub const NODE_CONFIG: &str = "application/node.eks.aws";

/// Header name and value pairs, in the order written.
pub type Headers = Vec<(String, String)>;

/// One part of a multi-part document: its headers (canonical names, in the
/// order written) and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Header name and value pairs.
    pub headers: Headers,
    /// The content, without the line break that precedes the next delimiter.
    pub body: String,
}

impl Part {
    /// A part with only a `Content-Type` header.
    pub fn new(content_type: &str, body: impl Into<String>) -> Self {
        Part {
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// The part with its `Content-Type` header only (how upstream's nodeadm
    /// bootstrapper keeps the user's parts).
    pub fn with_content_type_only(self) -> Self {
        let content_type = self.content_type().to_string();
        Part::new(&content_type, self.body)
    }

    /// The `Content-Type` header's value (empty when absent).
    pub fn content_type(&self) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == "Content-Type")
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    /// The media type without parameters, lower case (`text/x-shellscript`).
    pub fn media_type(&self) -> String {
        media_type(self.content_type())
    }
}

/// `text/x-shellscript; charset=...` -> `text/x-shellscript`.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// True when `text` starts like a MIME document (upstream's test:
/// `MIME-Version:` or `Content-Type:` after leading white space).
pub fn looks_like_mime(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with("MIME-Version:") || t.starts_with("Content-Type:")
}

/// Go's canonical header name: `content-type` -> `Content-Type`.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => {
                    first.to_ascii_uppercase().to_string() + &chars.as_str().to_ascii_lowercase()
                }
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Reads header lines up to the first empty line; returns them and the rest.
fn headers(text: &str) -> Result<(Headers, &str), UserDataError> {
    let mut headers: Headers = Vec::new();
    let mut rest = text;
    loop {
        let (line, after) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            return Ok((headers, after));
        }
        if rest.is_empty() {
            return Err(UserDataError::Mime(
                "the headers never end (no empty line after them)".into(),
            ));
        }
        if line.starts_with([' ', '\t']) {
            let Some(last) = headers.last_mut() else {
                return Err(UserDataError::Mime(format!(
                    "a continuation line comes before any header: {line:?}"
                )));
            };
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (name, value) = line.split_once(':').ok_or_else(|| {
                UserDataError::Mime(format!("malformed header line {line:?} (no `:`)"))
            })?;
            if name.is_empty() || name.contains(' ') {
                return Err(UserDataError::Mime(format!(
                    "malformed header name in {line:?}"
                )));
            }
            headers.push((canonical(name), value.trim().to_string()));
        }
        rest = after;
    }
}

/// The `boundary` parameter of a `multipart/*` content type.
fn boundary(content_type: &str) -> Result<String, UserDataError> {
    let media = media_type(content_type);
    if !media.starts_with("multipart/") {
        return Err(UserDataError::Mime(format!(
            "Content-Type is {content_type:?}, not multipart"
        )));
    }
    content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            UserDataError::Mime(format!("Content-Type {content_type:?} has no boundary"))
        })
}

/// The parts of a MIME multi-part document.
pub fn parse(text: &str) -> Result<Vec<Part>, UserDataError> {
    let (top, body) = headers(text)?;
    let content_type = top
        .iter()
        .find(|(k, _)| k == "Content-Type")
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| UserDataError::Mime("no Content-Type header".into()))?;
    let boundary = boundary(content_type)?;
    let delimiter = format!("--{boundary}");
    let is_delimiter = |line: &str| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match line.strip_prefix(&delimiter) {
            Some(rest) if rest.trim_end().is_empty() => Some(false),
            Some(rest) if rest.trim_end() == "--" => Some(true),
            _ => None,
        }
    };
    // Split into lines keeping offsets, find the delimiter lines.
    let mut parts = Vec::new();
    let mut current: Option<usize> = None; // start offset of the current part
    let mut offset = 0;
    let mut closed = false;
    for line in body.split_inclusive('\n') {
        let bare = line.strip_suffix('\n').unwrap_or(line);
        if let Some(last) = is_delimiter(bare) {
            if let Some(start) = current.take() {
                // The line break before the delimiter belongs to it.
                let mut end = offset;
                if body[..end].ends_with('\n') && end > start {
                    end -= 1;
                    if body[..end].ends_with('\r') && end > start {
                        end -= 1;
                    }
                }
                parts.push(part(&body[start..end.max(start)])?);
            }
            if last {
                closed = true;
                break;
            }
            current = Some(offset + line.len());
        }
        offset += line.len();
    }
    if let Some(start) = current
        && !closed
        && !body[start..].trim().is_empty()
    {
        return Err(UserDataError::Mime(format!(
            "the last part never ends (no closing {delimiter}--)"
        )));
    }
    if parts.is_empty() && current.is_none() && !closed {
        return Err(UserDataError::Mime(format!(
            "no part starts with the boundary {delimiter}"
        )));
    }
    Ok(parts)
}

fn part(text: &str) -> Result<Part, UserDataError> {
    let (headers, body) = headers(text)?;
    Ok(Part {
        headers,
        body: body.to_string(),
    })
}

/// Writes `parts` as upstream does: `MIME-Version`, a `multipart/mixed`
/// content type with boundary `//`, each part's headers sorted by name.
pub fn serialize(parts: &[Part]) -> String {
    let mut out =
        format!("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"{BOUNDARY}\"\n\n");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("--{BOUNDARY}\n"));
        let mut headers = part.headers.clone();
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\n"));
        }
        out.push('\n');
        out.push_str(&part.body);
    }
    out.push_str(&format!("\n--{BOUNDARY}--\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_parts_and_content() {
        let parts = vec![
            Part::new(SHELL_SCRIPT, "#!/bin/bash\necho hi\n"),
            Part::new(NODE_CONFIG, "kind: NodeConfig"),
        ];
        let text = serialize(&parts);
        assert_eq!(parse(&text).unwrap(), parts);
    }

    #[test]
    fn headers_fold_and_canonicalise_and_crlf_is_accepted() {
        let text = "content-type: multipart/mixed;\r\n boundary=\"b\"\r\nMIME-Version: 1.0\r\n\r\npreamble\r\n--b\r\ncontent-type: text/x-shellscript\r\n\r\necho 1\r\n--b--\r\n";
        let parts = parse(text).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].content_type(), "text/x-shellscript");
        assert_eq!(parts[0].body, "echo 1");
    }

    #[test]
    fn malformed_documents_are_named() {
        for (text, wanted) in [
            ("Content-Type: text/plain\n\nhello", "not multipart"),
            ("Content-Type: multipart/mixed\n\n--x\n", "no boundary"),
            ("MIME-Version: 1.0\n\nbody", "no Content-Type"),
            (
                "Content-Type: multipart/mixed; boundary=b\n\nno parts",
                "no part starts",
            ),
            (
                "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: x\n\nbody never closed",
                "never ends",
            ),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(wanted), "{text:?}: {err}");
        }
    }
}

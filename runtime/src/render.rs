//! Templates rendered at run time, each value escaped for its place.
//!
//! | place | escaping |
//! | --- | --- |
//! | URL | percent-encoded as a path segment (RFC 3986 unreserved characters kept); a `vars` reference that opens the template is the base URL and is inserted as it is |
//! | query, form | the raw text, encoded by the `application/x-www-form-urlencoded` serializer |
//! | JSON body | encoded by the JSON serializer; a leaf that is exactly one reference keeps its JSON type |
//! | header | the raw text; a value with CR, LF or NUL is refused |
//! | raw body | as it renders (the author's escape hatch) |
//!
//! A reference without a value (an optional input with no default, an auth field the server
//! did not send) renders as the empty string, or `null` as a whole JSON leaf. A query
//! parameter or form field that renders empty is left out.

use compiler::ir::{JsonTemplate, Part, Ref, Template};
use indexmap::IndexMap;

use crate::error::{Error, ErrorKind, Result};
use crate::value::Scope;

/// Renders a template as plain text, with no escaping. The string is allocated once, at its
/// final length.
pub fn text(t: &Template, scope: &Scope<'_>) -> String {
    let len =
        t.0.iter()
            .map(|part| match part {
                Part::Text(s) => s.len(),
                Part::Ref(r) => scope.get(r).map_or(0, |v| v.as_text().len()),
            })
            .sum();
    let mut out = String::with_capacity(len);
    for part in &t.0 {
        match part {
            Part::Text(s) => out.push_str(s),
            Part::Ref(r) => {
                if let Some(v) = scope.get(r) {
                    out.push_str(&v.as_text());
                }
            }
        }
    }
    out
}

/// Renders an optional template as plain text; `""` when there is none.
pub fn opt_text(t: &Option<Template>, scope: &Scope<'_>) -> String {
    t.as_ref().map(|t| text(t, scope)).unwrap_or_default()
}

/// Whether the template uses a secret value (so that what it renders must not be shown).
pub fn uses_secret(t: &Template, scope: &Scope<'_>) -> bool {
    t.refs()
        .any(|r| scope.get(r).is_some_and(|v| v.is_secret()))
}

/// Renders a URL template and parses the result.
pub fn url(t: &Template, scope: &Scope<'_>) -> Result<url::Url> {
    let out = url_text(t, scope, None);
    if dot_segments(&out).next().is_some() {
        // Where each reference's value went, to refuse a value that makes a whole path
        // segment `.` or `..`: the URL parser would resolve it away.
        let mut placed = Vec::new();
        url_text(t, scope, Some(&mut placed));
        if let Some(r) = dot_segment(&out, &placed) {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "the value of `{r}` makes a path segment `.` or `..`, which would move the request to another path; refused"
                ),
            ));
        }
    }
    if out.len() > MAX_URL_BYTES {
        return Err(long_url(out.len()));
    }
    let parsed = url::Url::parse(&out).map_err(|e| {
        Error::new(
            ErrorKind::Usage,
            format!(
                "the URL `{}` is not valid: {e}",
                shown_url_text(&out, t, scope)
            ),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "the URL `{}` is not http or https",
                shown_url_text(&out, t, scope)
            ),
        ));
    }
    Ok(parsed)
}

/// The text of a URL template: a leading `vars` reference inserted as it is (the base URL),
/// every other value percent-encoded. With `placed`, records where each value went.
fn url_text<'t>(
    t: &'t Template,
    scope: &Scope<'_>,
    mut placed: Option<&mut Vec<(std::ops::Range<usize>, &'t Ref)>>,
) -> String {
    let mut out = String::with_capacity(128);
    for (i, part) in t.0.iter().enumerate() {
        match part {
            Part::Text(s) => out.push_str(s),
            Part::Ref(r @ Ref::Vars(_)) if i == 0 => {
                if let Some(v) = scope.get(r) {
                    let base = v.as_text();
                    // `https://api.test/` + `/items` is `https://api.test/items`.
                    let next_slash =
                        matches!(t.0.get(1), Some(Part::Text(n)) if n.starts_with('/'));
                    out.push_str(if next_slash {
                        base.strip_suffix('/').unwrap_or(&base)
                    } else {
                        &base
                    });
                }
            }
            Part::Ref(r) => {
                if let Some(v) = scope.get(r) {
                    let start = out.len();
                    encode_segment(&v.as_text(), &mut out);
                    if let Some(p) = placed.as_deref_mut() {
                        p.push((start..out.len(), r));
                    }
                }
            }
        }
    }
    out
}

/// The byte ranges of the path segments of `url` that are `.` or `..`.
fn dot_segments(url: &str) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let path_start = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |i| after_scheme + i);
    let path_end = url[path_start..]
        .find(['?', '#'])
        .map_or(url.len(), |i| path_start + i);
    let mut at = path_start;
    url[path_start..path_end].split('/').filter_map(move |seg| {
        let range = at..at + seg.len();
        at += seg.len() + 1;
        (seg == "." || seg == "..").then_some(range)
    })
}

/// The longest URL sent, in bytes; servers commonly refuse more than 8 KiB.
pub const MAX_URL_BYTES: usize = 16 * 1024;

/// The error of a URL longer than [`MAX_URL_BYTES`] (the URL itself is not quoted).
pub fn long_url(len: usize) -> Error {
    Error::new(
        ErrorKind::Usage,
        format!(
            "the URL would be {len} bytes long, more than {MAX_URL_BYTES}; send long values in the request body"
        ),
    )
}

/// The reference whose value makes a whole path segment `.` or `..`, if any.
fn dot_segment<'a>(url: &str, placed: &[(std::ops::Range<usize>, &'a Ref)]) -> Option<&'a Ref> {
    dot_segments(url).find_map(|range| {
        placed
            .iter()
            .find(|(p, _)| p.start < range.end && range.start < p.end)
            .map(|(_, r)| *r)
    })
}

/// The URL text as it may be shown in an error (hidden when a secret went into it).
fn shown_url_text(text: &str, t: &Template, scope: &Scope<'_>) -> String {
    if uses_secret(t, scope) {
        "<a URL with a secret in it>".to_owned()
    } else {
        text.to_owned()
    }
}

/// Percent-encodes `text` as one path segment: every byte but the RFC 3986 unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`, so a value can never add a `/`, `?`, `#`
/// or `&` to the URL.
pub fn encode_segment(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// Renders query parameters or form fields, leaving out those that render empty.
pub fn pairs(map: &IndexMap<String, Template>, scope: &Scope<'_>) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, t)| (k.clone(), text(t, scope)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// Encodes pairs as `application/x-www-form-urlencoded`.
pub fn form_body(pairs: &[(String, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Renders a header value, refusing one that would break the header's structure.
pub fn header(name: &str, t: &Template, scope: &Scope<'_>) -> Result<String> {
    let value = text(t, scope);
    check_header(name, &value)?;
    Ok(value)
}

/// Refuses a header value with CR, LF or NUL (header injection).
pub fn check_header(name: &str, value: &str) -> Result<()> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "the value of the header `{name}` contains a line break or a NUL character; \
                 it was not sent because it would change the structure of the request"
            ),
        ));
    }
    Ok(())
}

/// Renders a JSON body.
pub fn json(t: &JsonTemplate, scope: &Scope<'_>) -> serde_json::Value {
    match t {
        JsonTemplate::Value(v) => v.clone(),
        JsonTemplate::Template(t) => serde_json::Value::String(text(t, scope)),
        JsonTemplate::Ref(r) => scope
            .get(r)
            .map(|v| v.to_json())
            .unwrap_or(serde_json::Value::Null),
        JsonTemplate::Array(items) => items.iter().map(|i| json(i, scope)).collect(),
        JsonTemplate::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), json(v, scope)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{Value, Values};

    fn scope_with(name: &str, v: Value) -> Values {
        let mut m = Values::default();
        m.insert(name.into(), v);
        m
    }

    #[test]
    fn url_values_cannot_change_the_path() {
        let input = scope_with("id", Value::text("a\"b&c=d/e?f#g%h"));
        let scope = Scope {
            input: Some(&input),
            ..Default::default()
        };
        let t = compiler::parse_template("https://x.test/items/{{ input.id }}/sub");
        let u = url(&t, &scope).unwrap();
        assert_eq!(u.path(), "/items/a%22b%26c%3Dd%2Fe%3Ff%23g%25h/sub");
        assert_eq!(u.query(), None);
        assert_eq!(u.fragment(), None);
    }

    #[test]
    fn leading_vars_is_the_base() {
        let vars = scope_with("base", Value::text("http://127.0.0.1:9/api"));
        let scope = Scope {
            vars: Some(&vars),
            ..Default::default()
        };
        let t = compiler::parse_template("{{ vars.base }}/items");
        assert_eq!(
            url(&t, &scope).unwrap().as_str(),
            "http://127.0.0.1:9/api/items"
        );
    }

    #[test]
    fn headers_refuse_line_breaks() {
        let input = scope_with("v", Value::text("a\r\nX-Evil: 1"));
        let scope = Scope {
            input: Some(&input),
            ..Default::default()
        };
        let t = compiler::parse_template("{{ input.v }}");
        let e = header("X-Test", &t, &scope).unwrap_err();
        assert!(e.message().contains("`X-Test`"));
        assert!(!e.message().contains("Evil"));
    }

    #[test]
    fn form_encoding() {
        let body = form_body(&[("a".into(), "x&y=z +".into())]);
        assert_eq!(body, "a=x%26y%3Dz+%2B");
    }
}

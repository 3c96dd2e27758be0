//! Reading token and auth responses, leniently where servers differ and strictly where a
//! mistake would go unnoticed.

use std::time::Duration;

use crate::error::{Error, ErrorKind, Result};
use crate::http::Incoming;
use crate::secret::Secret;
use crate::value::{Value, Values};

/// Finds `key` in a JSON response: a JSON pointer when it starts with `/`, else a top-level
/// key.
pub fn lookup<'a>(doc: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    if key.starts_with('/') {
        doc.pointer(key)
    } else {
        doc.get(key)
    }
}

/// Whether a field of an auth response is a credential by its name.
pub fn sensitive(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    if n == "token_type" {
        return false;
    }
    [
        "token",
        "secret",
        "password",
        "session",
        "key",
        "assertion",
        "cookie",
        "code",
        "signature",
        "credential",
    ]
    .iter()
    .any(|w| n.contains(w))
}

/// The field's value, a secret when its name says it is one.
pub fn field_value(name: &str, v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::String(s) if sensitive(name) => Value::Secret(Secret::new(s.clone())),
        v if sensitive(name) => Value::Secret(Secret::new(v.to_string())),
        v => Value::Plain(v.clone()),
    }
}

/// Server text made safe to show: control characters replaced, at most 200 characters.
pub fn clean(text: &str) -> String {
    let t: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    if text.chars().count() > 200 {
        format!("{t}…")
    } else {
        t
    }
}

/// Parses the body of an auth response: a JSON object, or an error that says what came back
/// instead. `what` names the endpoint ("the token endpoint").
pub fn json_body(resp: &Incoming, what: &str, place: &str) -> Result<serde_json::Value> {
    if (300..400).contains(&resp.status) {
        return Err(Error::new(
            ErrorKind::AuthResponse,
            format!(
                "{place}: {what} answered {} (a redirect); redirects are not followed from {what}: use the final URL",
                resp.status_text()
            ),
        )
        .with_status(resp.status));
    }
    let parsed = serde_json::from_slice::<serde_json::Value>(&resp.body);
    match parsed {
        Ok(v) if v.is_object() => {
            if let Some(error) = v.get("error").filter(|e| !e.is_null()) {
                return Err(rejected(resp, &v, error, what, place));
            }
            if !(200..300).contains(&resp.status) {
                return Err(Error::new(
                    if outage(resp.status) {
                        ErrorKind::Status
                    } else {
                        ErrorKind::AuthRejected
                    },
                    format!("{place}: {what} answered {}", resp.status_text()),
                )
                .with_status(resp.status));
            }
            Ok(v)
        }
        _ if !(200..300).contains(&resp.status) => Err(Error::new(
            if outage(resp.status) {
                ErrorKind::Status
            } else if resp.status == 401 || resp.status == 403 {
                ErrorKind::AuthRejected
            } else {
                ErrorKind::AuthResponse
            },
            format!("{place}: {what} answered {}", resp.status_text()),
        )
        .with_status(resp.status)),
        Ok(_) => Err(Error::new(
            ErrorKind::AuthResponse,
            format!(
                "{place}: {what} answered {} with JSON that is not an object",
                resp.status_text()
            ),
        )
        .with_status(resp.status)),
        Err(_) => Err(Error::new(
            ErrorKind::AuthResponse,
            format!(
                "{place}: {what} answered {} with a body that is not JSON {}",
                resp.status_text(),
                resp.body_kind()
            ),
        )
        .with_status(resp.status)),
    }
}

/// An RFC 6749 §5.2 error response as one line: `invalid_client: Client authentication
/// failed`.
fn rejected(
    resp: &Incoming,
    doc: &serde_json::Value,
    error: &serde_json::Value,
    what: &str,
    place: &str,
) -> Error {
    let code = match error {
        serde_json::Value::String(s) => clean(s),
        other => clean(&other.to_string()),
    };
    let description = doc
        .get("error_description")
        .and_then(|d| d.as_str())
        .map(|d| format!(" ({})", clean(d)))
        .unwrap_or_default();
    let advice = match code.as_str() {
        "invalid_client" => {
            "; check the client id and secret, and `client_auth` (basic, basic_raw or body)"
        }
        "invalid_scope" => "; check the `scope` value",
        "invalid_grant" => "; the credentials or grant were refused",
        "unauthorized_client" => "; this client may not use this grant",
        "unsupported_grant_type" => "; the server does not offer this grant",
        _ => "",
    };
    // An outage (429, 5xx) is not a refusal of the credentials, even with an RFC 6749 body.
    let kind = if outage(resp.status) {
        ErrorKind::Status
    } else {
        ErrorKind::AuthRejected
    };
    Error::new(
        kind,
        format!(
            "{place}: {what} refused the request ({}): {code}{description}{advice}",
            resp.status_text()
        ),
    )
    .with_status(resp.status)
}

/// `expires_in` read leniently: a number, a numeric string, or absent/unusable (then the
/// default). The second value says whether the default was used because the value was
/// unusable (to warn about it).
pub fn lifetime(v: Option<&serde_json::Value>, default_s: u64) -> (Duration, bool) {
    let secs = match v {
        None | Some(serde_json::Value::Null) => return (Duration::from_secs(default_s), false),
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match secs.filter(|s| s.is_finite() && *s > 0.0) {
        Some(s) => (
            Duration::from_secs_f64(s.min(10.0 * 365.0 * 86400.0)),
            false,
        ),
        None => (Duration::from_secs(default_s), true),
    }
}

/// The requested scopes the server did not grant (RFC 6749 §3.3: space-separated; commas
/// tolerated). An absent granted scope means all requested ones were granted (§5.1).
pub fn missing_scopes(requested: &str, granted: Option<&str>) -> Vec<String> {
    let Some(granted) = granted else {
        return Vec::new();
    };
    let split = |s: &str| -> Vec<String> {
        s.split([' ', ','])
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let granted = split(granted);
    split(requested)
        .into_iter()
        .filter(|r| !granted.contains(r))
        .collect()
}

/// Copies the mapped `fields` of a response into `auth.*` values.
pub fn map_fields<'a>(
    doc: &serde_json::Value,
    fields: impl IntoIterator<Item = (&'a str, String)>,
    out: &mut Values,
) {
    for (name, key) in fields {
        if let Some(v) = lookup(doc, &key).filter(|v| !v.is_null()) {
            out.insert(name.to_owned(), field_value(name, v));
        }
    }
}

/// The keys of a response object, to say what was there when something is missing.
pub fn keys(doc: &serde_json::Value) -> String {
    match doc.as_object() {
        Some(m) if !m.is_empty() => m
            .keys()
            .map(|k| format!("`{}`", clean(k)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "none".to_owned(),
    }
}

/// The response as it may be shown: every string that is a credential (by its key's name, or
/// because it equals one of `secrets`) replaced by `<redacted string(N)>`.
pub fn redacted(doc: &serde_json::Value, secrets: &[&Secret]) -> serde_json::Value {
    fn walk(v: &serde_json::Value, key: Option<&str>, secrets: &[&Secret]) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), walk(v, Some(k), secrets)))
                    .collect(),
            ),
            serde_json::Value::Array(a) => a.iter().map(|v| walk(v, key, secrets)).collect(),
            serde_json::Value::String(s)
                if key.is_some_and(sensitive) || secrets.iter().any(|x| x.expose() == s) =>
            {
                serde_json::Value::String(Secret::new(s.clone()).to_string())
            }
            other => other.clone(),
        }
    }
    walk(doc, None, secrets)
}

/// Whether a status says the server is unavailable or overloaded (429, 5xx) rather than that
/// it refused the request.
fn outage(status: u16) -> bool {
    status == 429 || status >= 500
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expires_in_is_read_leniently() {
        assert_eq!(
            lifetime(Some(&json!(3600)), 10).0,
            Duration::from_secs(3600)
        );
        assert_eq!(
            lifetime(Some(&json!("3600")), 10).0,
            Duration::from_secs(3600)
        );
        assert_eq!(
            lifetime(Some(&json!(" 120 ")), 10).0,
            Duration::from_secs(120)
        );
        assert_eq!(lifetime(None, 10), (Duration::from_secs(10), false));
        assert_eq!(
            lifetime(Some(&json!("soon")), 10),
            (Duration::from_secs(10), true)
        );
        assert_eq!(
            lifetime(Some(&json!(-5)), 10),
            (Duration::from_secs(10), true)
        );
    }

    #[test]
    fn scope_drift() {
        assert_eq!(missing_scopes("a b", Some("b")), vec!["a"]);
        assert!(missing_scopes("a b", None).is_empty());
        assert!(missing_scopes("a,b", Some("b a")).is_empty());
    }

    #[test]
    fn lookups_and_redaction() {
        let doc = json!({"data": {"token": "t0k3n-value"}, "token_type": "bearer", "n": 1});
        assert_eq!(lookup(&doc, "/data/token"), Some(&json!("t0k3n-value")));
        assert_eq!(lookup(&doc, "token_type"), Some(&json!("bearer")));
        let r = redacted(&doc, &[]);
        assert_eq!(r["data"]["token"], json!("<redacted string(11)>"));
        assert_eq!(r["token_type"], json!("bearer"));
    }
}

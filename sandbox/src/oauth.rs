//! What the OAuth endpoints share: errors (RFC 6749 §5.2), forms, scopes, resources and
//! issuing tokens.

use std::time::Instant;

use axum::http::header::{CACHE_CONTROL, PRAGMA};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::http::{challenge, error, json_response, media_type, Req};
use crate::Shared;

/// Scopes the token endpoint knows.
pub(crate) const KNOWN_SCOPES: [&str; 5] = [
    "items:read",
    "items:write",
    "events:read",
    "logs:read",
    "admin",
];
/// A scope accepted in requests but never granted.
const WITHHELD_SCOPE: &str = "admin";
/// The scope granted when none is requested.
const DEFAULT_SCOPE: &str = "items:read";
/// The challenge of `invalid_client` answers.
const BASIC_CHALLENGE: &str = r#"Basic realm="sandbox""#;
/// Parameters that may be repeated (RFC 8707 §2).
const REPEATABLE: [&str; 2] = ["resource", "audience"];

/// An RFC 6749 §5.2 error, answered with the headers of §5.1 (and a Basic challenge when it
/// is a 401 `invalid_client`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            status,
            code,
            description: description.into(),
        }
    }

    /// 401 `invalid_client`.
    pub(crate) fn invalid_client(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    /// 400 `invalid_request`.
    pub(crate) fn invalid_request(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 400 `invalid_grant`.
    pub(crate) fn invalid_grant(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    /// 400 `invalid_scope`.
    pub(crate) fn invalid_scope(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    /// 400 `invalid_target` (RFC 8707 §2).
    pub(crate) fn invalid_target(description: impl Into<String>) -> OAuthError {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_target", description)
    }

    /// 400 `unsupported_grant_type`.
    pub(crate) fn unsupported_grant_type(description: impl Into<String>) -> OAuthError {
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        )
    }

    /// 500 `server_error`: no randomness.
    pub(crate) fn no_randomness() -> OAuthError {
        OAuthError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "No randomness for a token",
        )
    }
}

impl From<OAuthError> for Response {
    fn from(e: OAuthError) -> Response {
        let response = no_store(error(e.status, e.code, &e.description));
        if e.status == StatusCode::UNAUTHORIZED {
            challenge(response, BASIC_CHALLENGE)
        } else {
            response
        }
    }
}

/// Adds `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub(crate) fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Decoded `application/x-www-form-urlencoded` parameters, in order.
#[derive(Debug)]
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// The form of a POST body; refuses another content type and repeated parameters (except
    /// `resource` and `audience`).
    pub(crate) fn of_body(req: &Req, what: &str) -> Result<Form, OAuthError> {
        let content_type = req.header("content-type").map(media_type);
        if content_type.as_deref() != Some("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(format!(
                "The {what} body must be application/x-www-form-urlencoded"
            )));
        }
        Form::parse(&req.body).map_err(OAuthError::invalid_request)
    }

    /// Parses `input`; the error names a repeated parameter.
    pub(crate) fn parse(input: &[u8]) -> Result<Form, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(input) {
            if !REPEATABLE.contains(&name.as_ref()) && pairs.iter().any(|(n, _)| *n == name) {
                return Err(format!("The parameter `{name}` is given more than once"));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Form(pairs))
    }

    /// The value of a parameter.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a parameter, empty values as absent.
    pub(crate) fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Every value of a repeatable parameter.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// The scope granted for a requested one (space-separated); `Err` is the `invalid_scope`
/// description.
pub(crate) fn grant_scope(requested: &str) -> Result<String, String> {
    let mut granted: Vec<&str> = Vec::new();
    for scope in requested.split_whitespace() {
        if !KNOWN_SCOPES.contains(&scope) {
            return Err(format!(
                "The scope `{scope}` is unknown; known scopes: {}",
                KNOWN_SCOPES.join(" ")
            ));
        }
        if scope != WITHHELD_SCOPE && !granted.contains(&scope) {
            granted.push(scope);
        }
    }
    if requested.trim().is_empty() {
        granted.push(DEFAULT_SCOPE);
    }
    Ok(granted.join(" "))
}

/// Checks RFC 8707 `resource` values against [`Config::resources`](crate::Config::resources);
/// `Err` is the `invalid_target` description.
pub(crate) fn check_resources(shared: &Shared, resources: &[String]) -> Result<(), String> {
    let known = &shared.config.resources;
    match resources.iter().find(|r| !known.contains(r)) {
        None => Ok(()),
        Some(resource) => Err(format!(
            "The resource `{resource}` is not served here; known resources: {}",
            known.join(" ")
        )),
    }
}

/// The S256 `code_challenge` of a `code_verifier`: BASE64URL(SHA256(verifier)) (RFC 7636
/// §4.2).
pub(crate) fn pkce_s256(verifier: &str) -> String {
    BASE64URL.encode(Sha256::digest(verifier.as_bytes()))
}

/// What a successful grant issues.
pub(crate) struct Issue {
    /// The scope granted.
    pub(crate) scope: String,
    /// Issue a refresh token bound to this client (`Some((client_id, public))`).
    pub(crate) refresh: Option<(String, bool)>,
    /// Echoed as `resource` (non-standard, for tests).
    pub(crate) resource: Vec<String>,
    /// Echoed as `audience` (non-standard, for tests).
    pub(crate) audience: Vec<String>,
}

/// Issues an access token (and a refresh token if asked) and answers with them.
pub(crate) fn issue(shared: &Shared, issue: Issue) -> Result<Response, OAuthError> {
    let access_token = shared
        .credential()
        .map_err(|_| OAuthError::no_randomness())?;
    let refresh_token = match issue.refresh {
        None => None,
        Some(_) => Some(
            shared
                .credential()
                .map_err(|_| OAuthError::no_randomness())?,
        ),
    };
    let now = Instant::now();
    {
        let mut state = shared.lock();
        state.prune(now);
        state
            .tokens
            .insert(access_token.clone(), shared.expiry(now));
        state.remember(&access_token);
        state.stats.tokens_issued += 1;
        if let (Some(token), Some((client_id, public))) = (&refresh_token, &issue.refresh) {
            state
                .grants
                .add_refresh(token.clone(), client_id, &issue.scope, *public);
            state.remember(token);
        }
    }
    let mut body = Map::new();
    body.insert("access_token".into(), json!(access_token));
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("expires_in".into(), json!(shared.config.token_lifetime_s));
    body.insert("scope".into(), json!(issue.scope));
    if let Some(token) = refresh_token {
        body.insert("refresh_token".into(), json!(token));
    }
    for (name, values) in [("resource", issue.resource), ("audience", issue.audience)] {
        if let Some(value) = one_or_many(values) {
            body.insert(name.into(), value);
        }
    }
    Ok(no_store(json_response(
        StatusCode::OK,
        &Value::Object(body),
    )))
}

/// Nothing, a string, or an array of strings.
fn one_or_many(mut values: Vec<String>) -> Option<Value> {
    match values.len() {
        0 => None,
        1 => values.pop().map(Value::String),
        _ => Some(json!(values)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_checked_and_deduplicated() {
        assert_eq!(grant_scope("").unwrap(), "items:read");
        assert_eq!(
            grant_scope("admin logs:read logs:read").unwrap(),
            "logs:read"
        );
        assert!(grant_scope("x:y").unwrap_err().contains("`x:y`"));
    }

    #[test]
    fn forms_refuse_repeats_but_resources() {
        let form = Form::parse(b"resource=a&resource=b&x=1").unwrap();
        assert_eq!(form.all("resource"), ["a", "b"]);
        assert_eq!(form.get("x"), Some("1"));
        assert!(Form::parse(b"x=1&x=2").unwrap_err().contains("`x`"));
    }
}

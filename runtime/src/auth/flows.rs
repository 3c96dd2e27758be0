//! The flows that obtain credentials: OAuth 2 token requests, custom auth requests, Basic,
//! and static methods.

use std::time::{Duration, Instant};

use compiler::ir::{ClientAuth, Custom, Flow, Grant, OAuth2, ScopeCheck};

use super::response::{self, json_body, lookup};
use super::{basic_header, margin, Credentials};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Http, RetryPolicy, Sent};
use crate::instance::Instance;
use crate::render;
use crate::request;
use crate::secret::Secret;
use crate::value::{Scope, Value, Values};

/// Timeout of token and auth requests.
const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest token or auth response accepted.
const AUTH_MAX_BYTES: u64 = 1024 * 1024;

/// The credentials of methods that need no request (Basic, bearer, API key).
pub fn fixed(instance: &Instance) -> Option<Credentials> {
    let scope = Scope {
        vars: Some(&instance.vars),
        ..Default::default()
    };
    match &instance.auth().flow {
        Flow::Static => Some(Credentials::static_()),
        Flow::Basic { username, password } => {
            let mut c = Credentials::static_();
            c.basic = Some(basic_header(
                &render::text(username, &scope),
                &render::text(password, &scope),
            ));
            Some(c)
        }
        Flow::Oauth2(_) | Flow::Custom(_) => None,
    }
}

/// Obtains credentials for the instance's auth method.
pub async fn fetch(instance: &Instance, http: &Http, sent: &mut Sent) -> Result<Credentials> {
    if let Some(c) = fixed(instance) {
        return Ok(c);
    }
    let scope = Scope {
        vars: Some(&instance.vars),
        ..Default::default()
    };
    match &instance.auth().flow {
        Flow::Oauth2(o) => oauth2(o, http, sent, &scope).await,
        Flow::Custom(c) => custom(c, http, sent, &scope).await,
        Flow::Static | Flow::Basic { .. } => Ok(Credentials::static_()),
    }
}

fn unsupported(what: &str) -> Error {
    Error::new(
        ErrorKind::Unsupported,
        format!("{what} is not supported by this version of the runtime yet"),
    )
}

/// An OAuth 2 token request (RFC 6749 §4.3, §4.4, §6) and its response (§5.1, §5.2).
async fn oauth2(
    o: &OAuth2,
    http: &Http,
    sent: &mut Sent,
    scope: &Scope<'_>,
) -> Result<Credentials> {
    match o.grant {
        Grant::ClientCredentials | Grant::Password | Grant::RefreshToken => {}
        Grant::JwtBearer => return Err(unsupported("the `oauth2_jwt_bearer` grant")),
        Grant::AuthorizationCode => {
            return Err(unsupported("the `oauth2_authorization_code` grant"))
        }
    }
    if o.client_auth == ClientAuth::PrivateKeyJwt {
        return Err(unsupported("`client_auth: private_key_jwt`"));
    }
    if o.request.url.0.is_empty() {
        return Err(unsupported("token URL discovery from `issuer`"));
    }
    let mut req = request::build(&o.request, scope, &[], None, AUTH_TIMEOUT, AUTH_MAX_BYTES)?;
    let place = format!("token request to {}", req.place());
    let text = |t: &Option<compiler::ir::Template>| {
        t.as_ref()
            .map(|t| render::text(t, scope))
            .unwrap_or_default()
    };
    match o.client_auth {
        ClientAuth::Basic => {
            // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
            let id = form_encode(&text(&o.client_id));
            let secret = Secret::new(form_encode(&text(&o.client_secret)));
            req.header("Authorization", basic_header(&id, secret.expose()).expose())?;
        }
        ClientAuth::BasicRaw => {
            let secret = Secret::new(text(&o.client_secret));
            let header = basic_header(&text(&o.client_id), secret.expose());
            req.header("Authorization", header.expose())?;
        }
        ClientAuth::Body | ClientAuth::None | ClientAuth::PrivateKeyJwt => {}
    }
    tracing::debug!("{place}");
    let resp = http
        .send(&req, &RetryPolicy::token(), false, sent)
        .await
        .map_err(|e| e.context("token request failed"))?;
    let doc = json_body(&resp, "the token endpoint", &place)?;
    let fields_scope = scope;
    let key = |t: &compiler::ir::Template| render::text(t, fields_scope);
    let token_key = key(&o.response.access_token);
    let mut fields = Values::new();
    let token = match lookup(&doc, &token_key) {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => {
            return Err(Error::new(
                ErrorKind::AuthResponse,
                format!(
                    "{place}: the token response's `{}` is not a non-empty string",
                    response::clean(&token_key)
                ),
            ))
        }
        None => {
            return Err(Error::new(
                ErrorKind::AuthResponse,
                format!(
                    "{place}: the token endpoint answered {} without `{}` (keys in the response: {}); set the response token key if the token is elsewhere",
                    resp.status_text(),
                    response::clean(&token_key),
                    response::keys(&doc)
                ),
            ))
        }
    };
    fields.insert("access_token".into(), Value::Secret(Secret::new(token)));
    let mut warnings = Vec::new();
    if let Some(tt) = lookup(&doc, &key(&o.response.token_type)).and_then(|v| v.as_str()) {
        let tt = if tt.eq_ignore_ascii_case("bearer") {
            "Bearer".to_owned()
        } else {
            warnings.push(format!(
                "{place}: the token type is `{}`, not Bearer",
                response::clean(tt)
            ));
            tt.to_owned()
        };
        fields.insert("token_type".into(), Value::text(tt));
    }
    let expires = lookup(&doc, &key(&o.response.expires_in));
    let (lifetime, unusable) = response::lifetime(expires, o.default_lifetime_s);
    if unusable {
        warnings.push(format!(
            "{place}: `expires_in` is not a positive number; assuming {} s",
            o.default_lifetime_s
        ));
    }
    fields.insert(
        "expires_in".into(),
        Value::Plain(serde_json::Value::from(lifetime.as_secs())),
    );
    let granted = lookup(&doc, &key(&o.response.scope)).and_then(|v| v.as_str());
    if let Some(g) = granted {
        fields.insert("scope".into(), Value::text(g));
    }
    if let Some(serde_json::Value::String(r)) = lookup(&doc, &key(&o.response.refresh_token)) {
        fields.insert(
            "refresh_token".into(),
            Value::Secret(Secret::new(r.clone())),
        );
    }
    let extra: Vec<(&str, String)> = o
        .response
        .fields
        .iter()
        .map(|(n, t)| (n.as_str(), key(t)))
        .collect();
    response::map_fields(&doc, extra, &mut fields);
    let requested = text(&o.scope);
    let missing = response::missing_scopes(&requested, granted);
    if !missing.is_empty() {
        let msg = format!(
            "{place}: the server granted `{}` but not {} of the requested scope",
            granted.map(response::clean).unwrap_or_default(),
            missing
                .iter()
                .map(|m| format!("`{}`", response::clean(m)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if o.scope_check == ScopeCheck::Strict {
            return Err(Error::new(
                ErrorKind::AuthRejected,
                format!("{msg} (`scope_check: strict`)"),
            ));
        }
        warnings.push(msg);
    }
    Ok(timed(fields, lifetime, o.refresh_margin_s, warnings, doc))
}

/// A `custom` auth request: any request whose response fields become `auth.*`.
async fn custom(
    c: &Custom,
    http: &Http,
    sent: &mut Sent,
    scope: &Scope<'_>,
) -> Result<Credentials> {
    let req = request::build(&c.request, scope, &[], None, AUTH_TIMEOUT, AUTH_MAX_BYTES)?;
    let place = format!("auth request to {}", req.place());
    tracing::debug!("{place}");
    let resp = http
        .send(&req, &RetryPolicy::token(), false, sent)
        .await
        .map_err(|e| e.context("auth request failed"))?;
    let doc = json_body(&resp, "the auth endpoint", &place)?;
    let mut fields = Values::new();
    for (name, t) in &c.fields {
        let key = render::text(t, scope);
        match lookup(&doc, &key).filter(|v| !v.is_null()) {
            Some(v) => {
                fields.insert(name.clone(), response::field_value(name, v));
            }
            None => {
                return Err(Error::new(
                    ErrorKind::AuthResponse,
                    format!(
                        "{place}: the auth response has no `{}` (for `auth.{name}`; keys in the response: {})",
                        response::clean(&key),
                        response::keys(&doc)
                    ),
                ))
            }
        }
    }
    let mut warnings = Vec::new();
    let (lifetime, unusable) = response::lifetime(
        fields.get("expires_in").map(|v| v.to_json()).as_ref(),
        c.default_lifetime_s,
    );
    if unusable {
        warnings.push(format!(
            "{place}: `expires_in` is not a positive number; assuming {} s",
            c.default_lifetime_s
        ));
    }
    Ok(timed(fields, lifetime, None, warnings, doc))
}

fn timed(
    fields: Values,
    lifetime: Duration,
    margin_s: Option<u64>,
    warnings: Vec<String>,
    doc: serde_json::Value,
) -> Credentials {
    let now = Instant::now();
    // Jitter: up to a tenth of the margin earlier, so that keys fetched together do not all
    // fall due at the same instant.
    let m = margin(lifetime, margin_s);
    let jitter = m.mul_f64(fastrand::f64() / 10.0);
    Credentials {
        id: super::new_id(),
        fields,
        obtained: now,
        lifetime: Some(lifetime),
        refresh_at: Some(now + lifetime - m - jitter),
        expires_at: Some(now + lifetime),
        warnings,
        requests: 0,
        response: Some(doc),
        basic: None,
    }
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 §2.3.1, Appendix B).
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn client_secret_is_form_encoded_before_basic() {
        assert_eq!(form_encode("a+b/c=d%e:f g"), "a%2Bb%2Fc%3Dd%25e%3Af+g");
        let h = basic_header(&form_encode("id"), &form_encode("s+/"));
        assert_eq!(h.expose(), format!("Basic {}", b64("id:s%2B%2F")));
    }
}

//! The flows that obtain credentials: custom auth requests, Basic and static methods here,
//! OAuth 2 grants in [`super::oauth2`].

use std::time::{Duration, Instant};

use compiler::ir::{Custom, Flow};

use super::oauth2::{AUTH_MAX_BYTES, AUTH_TIMEOUT};
use super::response::{self, json_body, lookup};
use super::state::Store;
use super::{basic_header, margin, Credentials};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Http, RetryPolicy, Sent};
use crate::instance::Instance;
use crate::render;
use crate::request;
use crate::value::{Scope, Values};

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
pub async fn fetch(
    instance: &Instance,
    http: &Http,
    sent: &mut Sent,
    store: &Store,
) -> Result<Credentials> {
    if let Some(c) = fixed(instance) {
        return Ok(c);
    }
    let scope = Scope {
        vars: Some(&instance.vars),
        ..Default::default()
    };
    match &instance.auth().flow {
        Flow::Oauth2(o) => super::oauth2::fetch(instance, o, http, sent, store).await,
        Flow::Custom(c) => custom(c, http, sent, &scope).await,
        Flow::Static | Flow::Basic { .. } => Ok(Credentials::static_()),
    }
}

/// A `custom` auth request: any request whose response fields become `auth.*`.
async fn custom(
    c: &Custom,
    http: &Http,
    sent: &mut Sent,
    scope: &Scope<'_>,
) -> Result<Credentials> {
    let mut req = request::build(&c.request, scope, &[], None, AUTH_TIMEOUT, AUTH_MAX_BYTES)?;
    req.configurable = false;
    let place = format!("auth request to {}", req.place());
    tracing::debug!("{place}");
    let resp = http
        .send(&req, &RetryPolicy::token(), false, sent)
        .await
        .map_err(|e| e.context("auth request failed"))?;
    let doc = json_body(&resp, "the auth endpoint", &place)?;
    let mut fields = Values::default();
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

/// Credentials from a response's fields, due for refresh a margin (with jitter) before they
/// expire.
pub(super) fn timed(
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

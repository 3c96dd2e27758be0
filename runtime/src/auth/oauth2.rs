//! OAuth 2 token requests of every grant: client credentials (RFC 6749 §4.4), password
//! (§4.3), refresh token (§6) with rotation, JWT bearer (RFC 7523 §2.1), and the code exchange
//! and refreshes of the authorization code grant (§4.1, RFC 7636); client authentication by
//! HTTP Basic, in the body, or by a signed JWT (RFC 7523 §2.2); `resource` (RFC 8707),
//! `audience` and other parameters; endpoints found by discovery (RFC 8414).

use std::time::Duration;

use compiler::ir::{ClientAuth, Grant, OAuth2, ScopeCheck};

use super::jwt::{self, ServiceAccount};
use super::response::{self, json_body, lookup};
use super::state::{self, Store};
use super::{basic_header, Credentials};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Http, Outgoing, RetryPolicy, Sent};
use crate::instance::Instance;
use crate::render;
use crate::request;
use crate::secret::Secret;
use crate::value::{Scope, Value, Values};

/// Timeout of token requests.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest token response accepted.
pub const AUTH_MAX_BYTES: u64 = 1024 * 1024;

/// Where an OAuth 2 method's requests go, and how the client authenticates there.
#[derive(Debug)]
pub struct Endpoints {
    /// The token endpoint.
    pub token: url::Url,
    /// The authorization endpoint (authorization code grant).
    pub authorize: Option<String>,
    /// The RFC 7009 revocation endpoint.
    pub revocation: Option<String>,
    /// The client authentication to use (the server's discovery metadata may change it).
    pub client_auth: ClientAuth,
    /// The service-account key file of a JWT bearer grant.
    pub service_account: Option<ServiceAccount>,
    /// Whether the server's metadata says it rejects PKCE (lists methods without `S256`).
    pub pkce_unsupported: bool,
}

impl Endpoints {
    /// The default `aud` of assertions: the token endpoint without its query.
    fn token_audience(&self) -> String {
        let mut u = self.token.clone();
        u.set_query(None);
        u.set_fragment(None);
        u.to_string()
    }
}

/// Finds the endpoints: written in the connector, given by a service-account key file, or
/// discovered from the `issuer`.
pub async fn endpoints(o: &OAuth2, http: &Http, scope: &Scope<'_>) -> Result<Endpoints> {
    let text = |t: &Option<compiler::ir::Template>| {
        Some(render::opt_text(t, scope)).filter(|s| !s.is_empty())
    };
    let service_account = match o
        .assertion
        .as_ref()
        .and_then(|a| a.service_account.as_ref())
    {
        Some(t) => Some(ServiceAccount::parse(
            &render::text(t, scope),
            "the `service_account` value",
        )?),
        None => None,
    };
    let mut ep = Endpoints {
        token: url::Url::parse("http://0.0.0.0/").expect("a valid URL"),
        authorize: o
            .authorize
            .as_ref()
            .map(|a| render::text(&a.url, scope))
            .filter(|s| !s.is_empty()),
        revocation: text(&o.revocation_url),
        client_auth: o.client_auth,
        service_account: None,
        pkce_unsupported: false,
    };
    let written = !o.request.url.0.is_empty();
    let sa_uri = service_account.as_ref().and_then(|s| s.token_uri.clone());
    if written {
        ep.token = render::url(&o.request.url, scope)?;
    } else if let Some(uri) = sa_uri.filter(|_| o.issuer.is_none()) {
        ep.token = parse_url(&uri, "the service account's `token_uri`")?;
    } else if let Some(issuer) = text(&o.issuer) {
        // Discovery is not a token request: it is not counted as one.
        let m = super::discovery::metadata(http, &issuer, &mut Sent::default()).await?;
        let Some(token) = &m.token_endpoint else {
            return Err(Error::new(
                ErrorKind::AuthResponse,
                format!(
                    "the discovery metadata of `{}` has no `token_endpoint`; set `request.url`",
                    response::clean(&issuer)
                ),
            ));
        };
        ep.token = parse_url(token, "the discovered `token_endpoint`")?;
        ep.authorize = ep.authorize.or(m.authorization_endpoint.clone());
        ep.revocation = ep.revocation.or(m.revocation_endpoint.clone());
        ep.client_auth = super::discovery::client_auth(o.client_auth, &m)?;
        ep.pkce_unsupported = m
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|l| !l.iter().any(|x| x == "S256"));
    } else {
        return Err(Error::new(
            ErrorKind::Usage,
            "the auth method has no token URL: set `request.url`, `issuer`, or the service account key",
        ));
    }
    if !written {
        for (k, v) in render::pairs(&o.request.query, scope) {
            ep.token.query_pairs_mut().append_pair(&k, &v);
        }
    }
    ep.service_account = service_account;
    Ok(ep)
}

fn parse_url(text: &str, what: &str) -> Result<url::Url> {
    url::Url::parse(text).map_err(|e| {
        Error::new(
            ErrorKind::AuthResponse,
            format!("{what} `{}` is not a URL: {e}", response::clean(text)),
        )
    })
}

/// What a token request exchanges.
#[derive(Debug, Clone, Copy)]
pub enum Exchange<'a> {
    /// The method's own grant, with the connector's body.
    Grant,
    /// A stored refresh token (the authorization code grant after sign-in).
    Refresh(&'a Secret),
    /// An authorization code and its PKCE verifier.
    Code {
        /// The code.
        code: &'a str,
        /// The PKCE code verifier, when PKCE was used.
        verifier: Option<&'a str>,
    },
}

/// Credentials for the instance's OAuth 2 method: the grant's token request, with a stored
/// refresh token when there is one; a rotated refresh token is stored before returning.
pub async fn fetch(
    instance: &Instance,
    o: &OAuth2,
    http: &Http,
    sent: &mut Sent,
    store: &Store,
) -> Result<Credentials> {
    let scope = Scope {
        vars: Some(&instance.vars),
        ..Default::default()
    };
    let ep = endpoints(o, http, &scope).await?;
    match o.grant {
        Grant::RefreshToken => {
            let given = instance.vars.get("refresh_token").map(|v| v.as_text());
            let seed = state::instance_seed(instance);
            let stored = store.load(&seed).await?;
            let mut vars;
            let scope = match &stored {
                Some(t) => {
                    vars = instance.vars.clone();
                    vars.insert("refresh_token".into(), Value::Secret(t.clone()));
                    Scope {
                        vars: Some(&vars),
                        ..Default::default()
                    }
                }
                None => scope,
            };
            let used = stored.or_else(|| given.map(|g| Secret::new(g.into_owned())));
            let creds = token(o, &ep, Exchange::Grant, http, sent, &scope)
                .await
                .map_err(|e| refused_refresh(e, instance, false))?;
            keep_rotated(&creds, used.as_ref(), store, &seed).await?;
            Ok(creds)
        }
        Grant::AuthorizationCode => {
            let Some(stored) = store.load("").await? else {
                return Err(Error::new(
                    ErrorKind::Usage,
                    format!(
                        "the instance is not signed in: run `connector login {}` once",
                        instance.file
                    ),
                ));
            };
            let creds = token(o, &ep, Exchange::Refresh(&stored), http, sent, &scope)
                .await
                .map_err(|e| refused_refresh(e, instance, true))?;
            keep_rotated(&creds, Some(&stored), store, "").await?;
            Ok(creds)
        }
        _ => token(o, &ep, Exchange::Grant, http, sent, &scope).await,
    }
}

/// Stores the refresh token of `creds` when the server sent a new one.
pub async fn keep_rotated(
    creds: &Credentials,
    used: Option<&Secret>,
    store: &Store,
    seed: &str,
) -> Result<()> {
    if let Some(Value::Secret(new)) = creds.fields.get("refresh_token") {
        if used.is_none_or(|u| u.expose() != new.expose()) {
            store.save(new, seed).await?;
            tracing::debug!("stored the new refresh token in {}", store.file().display());
        }
    }
    Ok(())
}

fn refused_refresh(e: Error, instance: &Instance, login: bool) -> Error {
    if e.kind() == ErrorKind::AuthRejected && e.message().contains("invalid_grant") {
        if login {
            e.hint(format!(
                "the stored refresh token is spent, revoked or expired: run `connector login {}` again",
                instance.file
            ))
        } else {
            e.hint("the refresh token is spent, revoked or expired: give the instance a new `refresh_token`")
        }
    } else {
        e
    }
}

/// One token request and its response (RFC 6749 §5.1, §5.2).
pub async fn token(
    o: &OAuth2,
    ep: &Endpoints,
    exchange: Exchange<'_>,
    http: &Http,
    sent: &mut Sent,
    scope: &Scope<'_>,
) -> Result<Credentials> {
    let mut req = request::build(
        &o.request,
        scope,
        &[],
        Some(ep.token.clone()),
        AUTH_TIMEOUT,
        AUTH_MAX_BYTES,
    )?;
    req.configurable = false;
    let client_id = render::opt_text(&o.client_id, scope);
    let public = matches!(ep.client_auth, ClientAuth::None | ClientAuth::PrivateKeyJwt);
    let mut form: Vec<(String, String)> = Vec::new();
    match exchange {
        Exchange::Grant => {}
        Exchange::Refresh(rt) => {
            req.body = None;
            form.push(("grant_type".into(), "refresh_token".into()));
            form.push(("refresh_token".into(), rt.expose().to_owned()));
            if public && !client_id.is_empty() {
                form.push(("client_id".into(), client_id.clone()));
            }
        }
        Exchange::Code { code, verifier } => {
            form.push(("code".into(), code.to_owned()));
            if let Some(v) = verifier {
                form.push(("code_verifier".into(), v.to_owned()));
            }
        }
    }
    if o.grant == Grant::JwtBearer && matches!(exchange, Exchange::Grant) {
        let assertion = bearer_assertion(o, ep, scope)?;
        form.push(("assertion".into(), assertion.expose().to_owned()));
    }
    let in_body = o.client_auth == ClientAuth::Body
        && matches!(exchange, Exchange::Grant | Exchange::Code { .. });
    authenticate_client(o, ep, &client_id, in_body, scope, &mut req, &mut form)?;
    for (k, v) in render::pairs(&o.params, scope) {
        if !v.is_empty() {
            form.push((k, v));
        }
    }
    add_form(&mut req, form);
    let place = format!("token request to {}", req.place());
    tracing::debug!("{place}");
    let resp = http
        .send(&req, &RetryPolicy::token(), false, sent)
        .await
        .map_err(|e| e.context("token request failed"))?;
    let doc = json_body(&resp, "the token endpoint", &place)?;
    read_token(o, &doc, &resp.status_text(), &place, scope)
}

/// Adds the client authentication to a request to the token or revocation endpoint: a
/// Basic header, or form fields (`in_body`: the connector's body has the id and secret
/// already).
fn authenticate_client(
    o: &OAuth2,
    ep: &Endpoints,
    client_id: &str,
    in_body: bool,
    scope: &Scope<'_>,
    req: &mut Outgoing,
    form: &mut Vec<(String, String)>,
) -> Result<()> {
    let secret = || Secret::new(render::opt_text(&o.client_secret, scope));
    match ep.client_auth {
        ClientAuth::Basic => {
            // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
            let id = form_encode(client_id);
            let secret = Secret::new(form_encode(secret().expose()));
            req.header("Authorization", basic_header(&id, secret.expose()).expose())?;
        }
        ClientAuth::BasicRaw => {
            let header = basic_header(client_id, secret().expose());
            req.header("Authorization", header.expose())?;
        }
        ClientAuth::Body if !in_body => {
            form.push(("client_id".into(), client_id.to_owned()));
            form.push(("client_secret".into(), secret().expose().to_owned()));
        }
        ClientAuth::PrivateKeyJwt => {
            let assertion = client_assertion(o, ep, client_id, scope)?;
            form.push((
                "client_assertion_type".into(),
                jwt::CLIENT_ASSERTION_TYPE.into(),
            ));
            form.push(("client_assertion".into(), assertion.expose().to_owned()));
        }
        ClientAuth::Body | ClientAuth::None => {}
    }
    Ok(())
}

/// Revokes `token` at the RFC 7009 endpoint, authenticated as at the token endpoint.
pub async fn revoke(
    o: &OAuth2,
    ep: &Endpoints,
    endpoint: &str,
    token: &Secret,
    hint: &str,
    http: &Http,
    scope: &Scope<'_>,
) -> Result<()> {
    let url = parse_url(endpoint, "the revocation endpoint")?;
    let mut req = Outgoing::new(reqwest::Method::POST, url);
    req.timeout = AUTH_TIMEOUT;
    req.max_bytes = AUTH_MAX_BYTES;
    req.configurable = false;
    req.header("Accept", "application/json")?;
    let client_id = render::opt_text(&o.client_id, scope);
    let mut form = vec![
        ("token".to_owned(), token.expose().to_owned()),
        ("token_type_hint".to_owned(), hint.to_owned()),
    ];
    if matches!(ep.client_auth, ClientAuth::None | ClientAuth::PrivateKeyJwt)
        && !client_id.is_empty()
    {
        form.push(("client_id".into(), client_id.clone()));
    }
    authenticate_client(o, ep, &client_id, false, scope, &mut req, &mut form)?;
    add_form(&mut req, form);
    let place = format!("revocation request to {}", req.place());
    let resp = http
        .send(&req, &RetryPolicy::token(), false, &mut Sent::default())
        .await
        .map_err(|e| e.context("revocation failed"))?;
    if resp.status == 200 {
        return Ok(());
    }
    // RFC 7009 §2.2.1: errors are those of RFC 6749 §5.2.
    json_body(&resp, "the revocation endpoint", &place).map(|_| ())?;
    Err(Error::new(
        ErrorKind::AuthRejected,
        format!(
            "{place}: the revocation endpoint answered {}",
            resp.status_text()
        ),
    )
    .with_status(resp.status))
}

/// Adds fields to the body: to a form (or a new one), or as keys of a JSON object.
fn add_form(req: &mut Outgoing, fields: Vec<(String, String)>) {
    if fields.is_empty() {
        return;
    }
    match &mut req.body {
        None => {
            req.body = Some((
                render::form_body(&fields).into_bytes(),
                "application/x-www-form-urlencoded".to_owned(),
            ))
        }
        Some((bytes, ct)) if ct == "application/x-www-form-urlencoded" => {
            let mut have: Vec<(String, String)> = url::form_urlencoded::parse(bytes)
                .into_owned()
                .filter(|(k, _)| !fields.iter().any(|(n, _)| n == k))
                .collect();
            have.extend(fields);
            *bytes = render::form_body(&have).into_bytes();
        }
        Some((bytes, ct)) if ct == "application/json" => {
            if let Ok(serde_json::Value::Object(mut m)) = serde_json::from_slice(bytes) {
                for (k, v) in fields {
                    m.insert(k, serde_json::Value::String(v));
                }
                *bytes = serde_json::to_vec(&m).unwrap_or_default();
            }
        }
        Some(_) => {
            tracing::debug!(
                "the token request has a raw body: its parameters are the connector's only"
            );
        }
    }
}

/// The `private_key_jwt` client assertion: `iss` = `sub` = the client id, `aud` the token
/// endpoint unless configured.
fn client_assertion(
    o: &OAuth2,
    ep: &Endpoints,
    client_id: &str,
    scope: &Scope<'_>,
) -> Result<Secret> {
    let Some(j) = &o.client_assertion else {
        return Err(Error::new(
            ErrorKind::Usage,
            "`client_auth: private_key_jwt` needs `client_assertion: { key: ... }`",
        ));
    };
    let key = Secret::new(render::opt_text(&j.key, scope));
    let aud = ep.token_audience();
    jwt::sign(
        j,
        &key,
        scope,
        &jwt::Defaults {
            issuer: Some(client_id),
            subject: Some(client_id),
            audience: &aud,
            kid: None,
        },
        "the client assertion (`private_key_jwt`)",
    )
}

/// The JWT bearer grant's assertion, from a PEM key or a service-account key file.
fn bearer_assertion(o: &OAuth2, ep: &Endpoints, scope: &Scope<'_>) -> Result<Secret> {
    let Some(j) = &o.assertion else {
        return Err(Error::new(
            ErrorKind::Usage,
            "the `oauth2_jwt_bearer` method needs `assertion:`",
        ));
    };
    let aud = ep
        .service_account
        .as_ref()
        .and_then(|sa| sa.token_uri.clone())
        .unwrap_or_else(|| ep.token_audience());
    let (key, issuer, kid) = match &ep.service_account {
        Some(sa) => (
            sa.private_key.clone(),
            Some(sa.client_email.as_str()),
            sa.private_key_id.as_deref(),
        ),
        None => (Secret::new(render::opt_text(&j.key, scope)), None, None),
    };
    jwt::sign(
        j,
        &key,
        scope,
        &jwt::Defaults {
            issuer,
            subject: None,
            audience: &aud,
            kid,
        },
        "the JWT bearer assertion",
    )
}

/// Reads a token response (RFC 6749 §5.1).
fn read_token(
    o: &OAuth2,
    doc: &serde_json::Value,
    status: &str,
    place: &str,
    scope: &Scope<'_>,
) -> Result<Credentials> {
    let key = |t: &compiler::ir::Template| render::text(t, scope);
    let token_key = key(&o.response.access_token);
    let mut fields = Values::default();
    let token = match lookup(doc, &token_key) {
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
                    "{place}: the token endpoint answered {status} without `{}` (keys in the response: {}); set the response token key if the token is elsewhere",
                    response::clean(&token_key),
                    response::keys(doc)
                ),
            ))
        }
    };
    fields.insert("access_token".into(), Value::Secret(Secret::new(token)));
    let mut warnings = Vec::new();
    if let Some(tt) = lookup(doc, &key(&o.response.token_type)).and_then(|v| v.as_str()) {
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
    let expires = lookup(doc, &key(&o.response.expires_in));
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
    let granted = lookup(doc, &key(&o.response.scope)).and_then(|v| v.as_str());
    if let Some(g) = granted {
        fields.insert("scope".into(), Value::text(g));
    }
    if let Some(serde_json::Value::String(r)) = lookup(doc, &key(&o.response.refresh_token)) {
        if !r.is_empty() {
            fields.insert(
                "refresh_token".into(),
                Value::Secret(Secret::new(r.clone())),
            );
        }
    }
    let extra: Vec<(&str, String)> = o
        .response
        .fields
        .iter()
        .map(|(n, t)| (n.as_str(), key(t)))
        .collect();
    response::map_fields(doc, extra, &mut fields);
    let requested = render::opt_text(&o.scope, scope);
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
    Ok(super::flows::timed(
        fields,
        lifetime,
        o.refresh_margin_s,
        warnings,
        doc.clone(),
    ))
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

    #[test]
    fn fields_join_a_form_body() {
        let mut req = Outgoing::new(
            reqwest::Method::POST,
            url::Url::parse("http://x/t").unwrap(),
        );
        req.body = Some((
            b"grant_type=x&scope=a".to_vec(),
            "application/x-www-form-urlencoded".into(),
        ));
        add_form(
            &mut req,
            vec![("scope".into(), "b c".into()), ("k".into(), "&".into())],
        );
        let (body, _) = req.body.unwrap();
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "grant_type=x&scope=b+c&k=%26"
        );
    }
}

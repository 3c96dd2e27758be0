//! Authorization server discovery: RFC 8414 metadata at
//! `/.well-known/oauth-authorization-server`, then OpenID Connect Discovery 1.0 at
//! `/.well-known/openid-configuration`. The metadata's `issuer` must be the configured one
//! (RFC 8414 §3.3); what was read is kept for an hour.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use compiler::ir::ClientAuth;
use serde::Deserialize;

use super::response::clean;
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Http, Outgoing, RetryPolicy, Sent};

/// How long discovered metadata is used before it is read again.
const TTL: Duration = Duration::from_secs(3600);

/// The metadata fields this runtime uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    /// The issuer identifier; equal to the configured issuer.
    pub issuer: String,
    /// The token endpoint.
    pub token_endpoint: Option<String>,
    /// The authorization endpoint.
    pub authorization_endpoint: Option<String>,
    /// The RFC 7009 revocation endpoint.
    pub revocation_endpoint: Option<String>,
    /// Client authentication methods of the token endpoint; RFC 8414 §2 makes
    /// `client_secret_basic` the default when absent.
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// PKCE methods.
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

type Cache = Mutex<HashMap<String, (Instant, Arc<Metadata>)>>;

fn cache() -> &'static Cache {
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The metadata of `issuer`, from the cache or read now.
pub async fn metadata(http: &Http, issuer: &str, sent: &mut Sent) -> Result<Arc<Metadata>> {
    if let Some((at, m)) = cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(issuer)
    {
        if at.elapsed() < TTL {
            return Ok(m.clone());
        }
    }
    let m = Arc::new(fetch(http, issuer, sent).await?);
    cache()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(issuer.to_owned(), (Instant::now(), m.clone()));
    Ok(m)
}

/// The two documents to try, in order: RFC 8414 §3.1 inserts the well-known path between the
/// host and the issuer's path; OpenID Connect Discovery appends it.
pub fn locations(issuer: &url::Url) -> [url::Url; 2] {
    let path = issuer.path().trim_end_matches('/');
    let mut oauth = issuer.clone();
    oauth.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    let mut openid = issuer.clone();
    openid.set_path(&format!("{path}/.well-known/openid-configuration"));
    for u in [&mut oauth, &mut openid] {
        u.set_query(None);
        u.set_fragment(None);
    }
    [oauth, openid]
}

async fn fetch(http: &Http, issuer: &str, sent: &mut Sent) -> Result<Metadata> {
    let parsed = url::Url::parse(issuer).map_err(|e| {
        Error::new(
            ErrorKind::Usage,
            format!("the issuer `{}` is not a URL: {e}", clean(issuer)),
        )
    })?;
    let mut tried = Vec::new();
    for location in locations(&parsed) {
        let mut req = Outgoing::new(reqwest::Method::GET, location.clone());
        req.timeout = Duration::from_secs(10);
        req.max_bytes = 1024 * 1024;
        req.configurable = false;
        req.header("Accept", "application/json")?;
        let shown = crate::http::shown(&location);
        let resp = match http.send(&req, &RetryPolicy::token(), false, sent).await {
            Ok(r) => r,
            Err(e) if e.kind() == ErrorKind::Connect || e.kind() == ErrorKind::Tls => {
                return Err(e.context("discovery of the authorization server failed"))
            }
            Err(e) => {
                tried.push(format!("{shown}: {e}"));
                continue;
            }
        };
        if resp.status != 200 {
            tried.push(format!("{shown} answered {}", resp.status_text()));
            continue;
        }
        let m: Metadata = match serde_json::from_slice(&resp.body) {
            Ok(m) => m,
            Err(e) => {
                tried.push(format!("{shown}: not discovery metadata ({e})"));
                continue;
            }
        };
        if m.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(Error::new(
                ErrorKind::AuthResponse,
                format!(
                    "{shown}: the metadata names the issuer `{}`, not `{}`; RFC 8414 requires them to be equal, so it is not used (check the `issuer` of the connector)",
                    clean(&m.issuer),
                    clean(issuer)
                ),
            ));
        }
        tracing::debug!("discovered the authorization server metadata at {shown}");
        return Ok(m);
    }
    Err(Error::new(
        ErrorKind::AuthResponse,
        format!(
            "no discovery metadata for the issuer `{}`: {}; set `request.url` instead of `issuer`",
            clean(issuer),
            tried.join("; ")
        ),
    ))
}

/// The RFC 8414 name of a client authentication method.
pub fn method_name(c: ClientAuth) -> &'static str {
    match c {
        ClientAuth::Basic | ClientAuth::BasicRaw => "client_secret_basic",
        ClientAuth::Body => "client_secret_post",
        ClientAuth::PrivateKeyJwt => "private_key_jwt",
        ClientAuth::None => "none",
    }
}

/// The client authentication to use with a server: the configured one when the server
/// supports it, else the other client-secret method when it supports that, else an error.
pub fn client_auth(configured: ClientAuth, m: &Metadata) -> Result<ClientAuth> {
    let supported: Vec<&str> = match &m.token_endpoint_auth_methods_supported {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => vec!["client_secret_basic"],
    };
    if supported.contains(&method_name(configured)) {
        return Ok(configured);
    }
    let other = match configured {
        ClientAuth::Basic | ClientAuth::BasicRaw => Some(ClientAuth::Body),
        ClientAuth::Body => Some(ClientAuth::Basic),
        _ => None,
    };
    if let Some(o) = other.filter(|o| supported.contains(&method_name(*o))) {
        tracing::debug!(
            "the server does not support {}; using {}",
            method_name(configured),
            method_name(o)
        );
        return Ok(o);
    }
    Err(Error::new(
        ErrorKind::Usage,
        format!(
            "the authorization server `{}` supports the client authentication methods {} but the connector uses `{}`; set `request.client_auth` to one it supports",
            clean(&m.issuer),
            supported
                .iter()
                .map(|s| format!("`{}`", clean(s)))
                .collect::<Vec<_>>()
                .join(", "),
            method_name(configured)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_locations() {
        let [a, b] = locations(&url::Url::parse("https://id.example.com").unwrap());
        assert_eq!(
            a.as_str(),
            "https://id.example.com/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            b.as_str(),
            "https://id.example.com/.well-known/openid-configuration"
        );
        let [a, b] = locations(&url::Url::parse("https://id.example.com/tenant/").unwrap());
        assert_eq!(
            a.as_str(),
            "https://id.example.com/.well-known/oauth-authorization-server/tenant"
        );
        assert_eq!(
            b.as_str(),
            "https://id.example.com/tenant/.well-known/openid-configuration"
        );
    }

    #[test]
    fn picks_a_supported_client_auth() {
        let mut m = Metadata {
            issuer: "https://id".into(),
            token_endpoint: None,
            authorization_endpoint: None,
            revocation_endpoint: None,
            token_endpoint_auth_methods_supported: Some(vec!["client_secret_post".into()]),
            code_challenge_methods_supported: None,
        };
        assert_eq!(
            client_auth(ClientAuth::Basic, &m).unwrap(),
            ClientAuth::Body
        );
        assert!(client_auth(ClientAuth::PrivateKeyJwt, &m).is_err());
        m.token_endpoint_auth_methods_supported = None;
        assert_eq!(
            client_auth(ClientAuth::Body, &m).unwrap(),
            ClientAuth::Basic
        );
    }
}

//! Authentication: obtaining credentials for an instance, caching them until shortly before
//! they expire, and applying them to endpoint requests.
//!
//! One [`Authenticator`] per instance. Its cache holds one set of [`Credentials`]; callers
//! that find it stale wait on one lock while a single caller fetches new ones, so however
//! many requests run, one token request is made per expiry.

pub mod discovery;
mod flows;
pub mod jwt;
pub mod login;
pub mod oauth2;
pub mod response;
pub mod state;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::Digest as _;

use crate::error::Result;
use crate::http::{Http, Outgoing};
use crate::instance::Instance;
use crate::render;
use crate::secret::Secret;
use crate::tokens::{BoxFuture, Fetcher, Slot, TokenCache};
use crate::value::{Scope, Value, Values};

/// What an auth method obtained: the `auth.*` fields and how long they last.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// A random id, to tell one set of credentials from another across processes.
    pub id: String,
    /// `auth.*`: fields of the auth response (tokens are secrets).
    pub fields: Values,
    /// When they were obtained.
    pub obtained: Instant,
    /// Their lifetime; `None` for credentials that do not expire (Basic, API keys).
    pub lifetime: Option<Duration>,
    /// When to fetch new ones.
    pub refresh_at: Option<Instant>,
    /// When they expire.
    pub expires_at: Option<Instant>,
    /// Warnings about the response (scope drift, an unusable `expires_in`).
    pub warnings: Vec<String>,
    /// Requests sent to the token or auth endpoint to obtain them, retries included.
    pub requests: u64,
    /// The response as received, for `connector auth` (shown redacted only).
    pub response: Option<serde_json::Value>,
    /// `Authorization: Basic …` of the `basic` method.
    pub(crate) basic: Option<Secret>,
}

impl Credentials {
    fn static_() -> Self {
        Credentials {
            id: new_id(),
            fields: Values::default(),
            obtained: Instant::now(),
            lifetime: None,
            refresh_at: None,
            expires_at: None,
            warnings: Vec::new(),
            requests: 0,
            response: None,
            basic: None,
        }
    }

    /// Whether they can be used at `now` without a refresh (before the refresh point).
    pub fn fresh(&self, now: Instant) -> bool {
        self.refresh_at.is_none_or(|t| now < t)
    }

    /// Whether they can still be used at `now` (before they expire).
    pub fn valid(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }

    /// The response with every credential redacted.
    pub fn shown_response(&self) -> Option<serde_json::Value> {
        let secrets: Vec<&Secret> = self.secrets().collect();
        self.response
            .as_ref()
            .map(|r| response::redacted(r, &secrets))
    }

    /// The secrets among the fields, to scrub from text shown to users.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.fields
            .values()
            .filter_map(|v| match v {
                crate::value::Value::Secret(s) => Some(s),
                _ => None,
            })
            .chain(self.basic.iter())
    }
}

/// 16 random hex characters.
pub(crate) fn new_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// The refresh margin: the configured one, else max(60 s, 10 % of the lifetime); never more
/// than half the lifetime, so a short-lived token is still used.
pub fn margin(lifetime: Duration, configured_s: Option<u64>) -> Duration {
    let m = match configured_s {
        Some(s) => Duration::from_secs(s),
        None => Duration::from_secs(60).max(lifetime / 10),
    };
    if m >= lifetime {
        lifetime / 2
    } else {
        m
    }
}

/// Obtains the credentials of one instance through the token cache, and applies them.
#[derive(Debug)]
pub struct Authenticator {
    instance: Arc<Instance>,
    tokens: Arc<TokenCache>,
    key: String,
    source: Source,
    fetcher: Arc<dyn Fetcher>,
    token_requests: Arc<AtomicU64>,
    store: Arc<state::Store>,
    http: Http,
}

/// Where an authenticator's credentials come from.
#[derive(Debug)]
enum Source {
    /// Credentials that need no request (Basic, bearer, API key): made once.
    Fixed(Arc<Credentials>),
    /// The token cache, at the instance's place in it (so that calls skip the lookup).
    Cached(Slot),
}

impl std::fmt::Debug for dyn Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fetcher")
    }
}

/// The fetcher of an instance's auth method.
struct FlowFetcher {
    instance: Arc<Instance>,
    http: Http,
    token_requests: Arc<AtomicU64>,
    store: Arc<state::Store>,
}

impl Fetcher for FlowFetcher {
    fn fetch(&self) -> BoxFuture<'_, Result<Credentials>> {
        Box::pin(async move {
            let mut sent = crate::http::Sent::default();
            let result = flows::fetch(&self.instance, &self.http, &mut sent, &self.store).await;
            self.token_requests
                .fetch_add(sent.requests, Ordering::Relaxed);
            let mut creds = result?;
            creds.requests = sent.requests;
            for w in &creds.warnings {
                tracing::warn!("{w}");
            }
            Ok(creds)
        })
    }
}

impl Authenticator {
    /// An authenticator for `instance`, caching in `tokens`.
    pub fn new(instance: Arc<Instance>, http: Http, tokens: Arc<TokenCache>) -> Self {
        let token_requests = Arc::new(AtomicU64::new(0));
        let fixed = flows::fixed(&instance).map(Arc::new);
        let key = cache_key(&instance);
        let store = Arc::new(state::Store::new(
            &instance,
            shared_sign_in(&instance),
            &key,
            Some(tokens.clone()),
        ));
        let fetcher: Arc<dyn Fetcher> = Arc::new(FlowFetcher {
            instance: instance.clone(),
            http: http.clone(),
            token_requests: token_requests.clone(),
            store: store.clone(),
        });
        let source = match fixed {
            Some(c) => Source::Fixed(c),
            None => Source::Cached(tokens.slot(&key, &fetcher)),
        };
        Authenticator {
            source,
            fetcher,
            instance,
            tokens,
            key,
            token_requests,
            store,
            http,
        }
    }

    /// The instance.
    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// Where the instance's grant state (its refresh token) is kept.
    pub fn store(&self) -> &Arc<state::Store> {
        &self.store
    }

    /// The HTTP client.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The token cache.
    pub fn tokens(&self) -> &Arc<TokenCache> {
        &self.tokens
    }

    /// The key of this instance's credentials in the cache.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Requests this authenticator sent to the token or auth endpoint, retries included.
    pub fn token_requests(&self) -> u64 {
        self.token_requests.load(Ordering::Relaxed)
    }

    /// Valid credentials: from the cache while they are fresh, else new ones. Concurrent
    /// callers share one fetch.
    pub async fn credentials(&self) -> Result<Arc<Credentials>> {
        self.credentials_for_call().await.map(|(c, _)| c)
    }

    /// Valid credentials for one call, and the token requests that call owes (those of a
    /// fetch it made itself; none when the cache, another caller or the background refresher
    /// supplied them).
    pub async fn credentials_for_call(&self) -> Result<(Arc<Credentials>, u64)> {
        match &self.source {
            Source::Fixed(c) => Ok((c.clone(), 0)),
            Source::Cached(slot) => {
                let (c, fetched) = self
                    .tokens
                    .get_counted(&self.key, slot, &self.fetcher)
                    .await?;
                let n = if fetched { c.requests } else { 0 };
                Ok((c, n))
            }
        }
    }

    /// Fetches new credentials now, bypassing the cache (and replacing what it holds).
    pub async fn refresh(&self) -> Result<Arc<Credentials>> {
        match &self.source {
            Source::Fixed(c) => Ok(c.clone()),
            Source::Cached(_) => self.tokens.refresh(&self.key, &self.fetcher).await,
        }
    }

    /// Drops `used` from the cache (the API refused it), unless it was already replaced.
    pub async fn invalidate(&self, used: &Arc<Credentials>) {
        if let Source::Cached(_) = self.source {
            self.tokens.invalidate(&self.key, used).await;
        }
    }

    /// Adds the credentials to an endpoint request: the method's `apply` headers and query
    /// parameters, or the Basic header.
    pub fn apply(&self, creds: &Credentials, req: &mut Outgoing) -> Result<()> {
        let auth = self.instance.auth();
        let scope = Scope {
            vars: Some(&self.instance.vars),
            auth: Some(&creds.fields),
            ..Default::default()
        };
        if let Some(b) = &creds.basic {
            req.header("Authorization", b.expose())?;
        }
        for (name, t) in &auth.apply.headers {
            let v = render::header(name, t, &scope)?;
            req.header_owned(name, v)?;
        }
        let pairs = render::pairs(&auth.apply.query, &scope);
        if !pairs.is_empty() {
            let keep: Vec<(String, String)> = req
                .url
                .query_pairs()
                .filter(|(k, _)| !pairs.iter().any(|(n, _)| n == k))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            req.url.set_query(None);
            crate::request::append_query(&mut req.url, &keep);
            crate::request::append_query(&mut req.url, &pairs);
        }
        Ok(())
    }
}

/// The cache key of an instance's credentials: a SHA-256 over the connector, the auth method,
/// the rendered token (or auth) URL and every non-secret value of the instance, so instances
/// with the same client, scope and resource share one token and no others do. Secrets are
/// left out: the key is stored in Redis in the clear.
///
/// An authorization code grant with `token_sharing: shared` has one key per connector and
/// method: every instance uses the one sign-in.
pub fn cache_key(instance: &Instance) -> String {
    let mut h = sha2::Sha256::new();
    let mut put = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    put(&instance.ir.connector);
    put(&instance.auth_name);
    if shared_sign_in(instance) {
        put("shared");
        return hex(&h.finalize());
    }
    let scope = Scope {
        vars: Some(&instance.vars),
        ..Default::default()
    };
    if let compiler::ir::Flow::Oauth2(o) = &instance.auth().flow {
        if let Some(issuer) = &o.issuer {
            put(&render::text(issuer, &scope));
        }
    }
    if let Some(url) = match &instance.auth().flow {
        compiler::ir::Flow::Oauth2(o) => Some(&o.request.url),
        compiler::ir::Flow::Custom(c) => Some(&c.request.url),
        _ => None,
    } {
        put(&render::text(url, &scope));
    }
    let mut names: Vec<&String> = instance.vars.keys().collect();
    names.sort();
    for n in names {
        if let Some(Value::Plain(v)) = instance.vars.get(n) {
            put(n);
            put(&v.to_string());
        }
    }
    hex(&h.finalize())
}

/// Lowercase hexadecimal of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the instance's method is an authorization code grant whose sign-in is shared by
/// every instance of the connector.
pub fn shared_sign_in(instance: &Instance) -> bool {
    matches!(&instance.auth().flow, compiler::ir::Flow::Oauth2(o)
        if o.token_sharing == Some(compiler::ir::TokenSharing::Shared))
}

/// `Basic base64(user:password)` (RFC 7617).
fn basic_header(user: &str, password: &str) -> Secret {
    Secret::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins() {
        let h = Duration::from_secs(3600);
        assert_eq!(margin(h, None), Duration::from_secs(360));
        assert_eq!(
            margin(Duration::from_secs(300), None),
            Duration::from_secs(60)
        );
        assert_eq!(margin(Duration::from_secs(4), None), Duration::from_secs(2));
        assert_eq!(margin(h, Some(5)), Duration::from_secs(5));
    }
}

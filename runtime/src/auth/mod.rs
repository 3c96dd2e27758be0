//! Authentication: obtaining credentials for an instance, caching them until shortly before
//! they expire, and applying them to endpoint requests.
//!
//! One [`Authenticator`] per instance. Its cache holds one set of [`Credentials`]; callers
//! that find it stale wait on one lock while a single caller fetches new ones, so however
//! many requests run, one token request is made per expiry.

mod flows;
pub mod response;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::error::Result;
use crate::http::{Http, Outgoing};
use crate::instance::Instance;
use crate::render;
use crate::secret::Secret;
use crate::value::{Scope, Values};

/// What an auth method obtained: the `auth.*` fields and how long they last.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `auth.*`: fields of the auth response (tokens are secrets).
    pub fields: Values,
    /// When they were obtained.
    pub obtained: Instant,
    /// Their lifetime; `None` for credentials that do not expire (Basic, API keys).
    pub lifetime: Option<Duration>,
    /// When to fetch new ones.
    pub refresh_at: Option<Instant>,
    /// Warnings about the response (scope drift, an unusable `expires_in`).
    pub warnings: Vec<String>,
    /// The response as received, for `connector auth` (shown redacted only).
    pub response: Option<serde_json::Value>,
    /// `Authorization: Basic …` of the `basic` method.
    basic: Option<Secret>,
}

impl Credentials {
    fn static_() -> Self {
        Credentials {
            fields: Values::new(),
            obtained: Instant::now(),
            lifetime: None,
            refresh_at: None,
            warnings: Vec::new(),
            response: None,
            basic: None,
        }
    }

    /// Whether they can still be used at `now` (before the refresh point).
    pub fn fresh(&self, now: Instant) -> bool {
        self.refresh_at.is_none_or(|t| now < t)
    }

    /// The response with every credential redacted.
    pub fn shown_response(&self) -> Option<serde_json::Value> {
        let secrets: Vec<&Secret> = self
            .fields
            .values()
            .filter_map(|v| match v {
                crate::value::Value::Secret(s) => Some(s),
                _ => None,
            })
            .collect();
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

/// Obtains, caches and applies the credentials of one instance.
#[derive(Debug)]
pub struct Authenticator {
    instance: Arc<Instance>,
    http: Http,
    cache: tokio::sync::Mutex<Option<Arc<Credentials>>>,
    token_requests: AtomicU64,
}

impl Authenticator {
    /// An authenticator with an empty cache.
    pub fn new(instance: Arc<Instance>, http: Http) -> Self {
        Authenticator {
            instance,
            http,
            cache: tokio::sync::Mutex::new(None),
            token_requests: AtomicU64::new(0),
        }
    }

    /// The instance.
    pub fn instance(&self) -> &Arc<Instance> {
        &self.instance
    }

    /// Requests sent to the token or auth endpoint so far, retries included.
    pub fn token_requests(&self) -> u64 {
        self.token_requests.load(Ordering::Relaxed)
    }

    /// Valid credentials: the cached ones while they are fresh, else new ones. Concurrent
    /// callers wait for the one fetch in progress instead of starting their own.
    pub async fn credentials(&self) -> Result<Arc<Credentials>> {
        let mut cached = self.cache.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| c.fresh(Instant::now())) {
            return Ok(c.clone());
        }
        let fresh = Arc::new(self.fetch().await?);
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// Fetches new credentials, bypassing the cache (and replacing it on success).
    pub async fn refresh(&self) -> Result<Arc<Credentials>> {
        let mut cached = self.cache.lock().await;
        let fresh = Arc::new(self.fetch().await?);
        *cached = Some(fresh.clone());
        Ok(fresh)
    }

    /// Drops `used` from the cache (the API refused it), unless another caller already
    /// replaced it.
    pub async fn invalidate(&self, used: &Arc<Credentials>) {
        let mut cached = self.cache.lock().await;
        if cached.as_ref().is_some_and(|c| Arc::ptr_eq(c, used)) {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<Credentials> {
        let mut sent = crate::http::Sent::default();
        let result = flows::fetch(&self.instance, &self.http, &mut sent).await;
        self.token_requests
            .fetch_add(sent.requests, Ordering::Relaxed);
        let creds = result?;
        for w in &creds.warnings {
            tracing::warn!("{w}");
        }
        Ok(creds)
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
            req.header(name, &v)?;
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

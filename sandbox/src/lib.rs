//! A local OAuth 2 provider and demo API served on loopback, for the tests, demos and benchmarks
//! of the `connector` binary (`connector sandbox`, `connectors/sandbox.yaml`).
//!
//! The sandbox answers:
//!
//! | route | what |
//! | --- | --- |
//! | `POST /oauth/token` | RFC 6749 token endpoint: `client_credentials`, `password`, `authorization_code` (PKCE, RFC 7636), `refresh_token` (rotating) and JWT-bearer (RFC 7523 §2.1, service accounts) grants; client authentication by HTTP Basic (§2.3.1), in the body, by `private_key_jwt` (RFC 7523 §2.2), or none for PKCE public clients; RFC 8707 `resource` |
//! | `GET /oauth/authorize` | RFC 6749 §4.1 authorization endpoint, loopback redirect URIs only (RFC 8252), approves at once ([`AuthorizeMode`]) |
//! | `POST /oauth/revoke` | RFC 7009 revocation of access and refresh tokens |
//! | `GET /.well-known/oauth-authorization-server`, `GET /.well-known/openid-configuration` | RFC 8414 / OpenID discovery metadata ([`Config::discovery`]) |
//! | `GET /oauth/jwks` | the public keys of [`Config::jwt_keys`] as a JWK Set |
//! | `POST /login` | JSON `{"username", "password"}` → `{"session"}`, for `X-Session` |
//! | `GET /items`, `GET /items/{id}`, `POST /items` | items, offset or page pagination |
//! | `GET /events` | events, cursor pagination |
//! | `GET /logs` | log lines, pagination by the `Link` header (RFC 8288) |
//! | `/echo` | the request as the sandbox saw it, credentials redacted |
//! | `/_sandbox/*` | control: faults, request log, stats, token expiry, `GET`/`POST /_sandbox/authorize-mode` (`"approve"`, `"deny"`, `"wrong_state"`), `GET /_sandbox/refresh-tokens` (no auth, not recorded) |
//!
//! API routes accept a bearer token (issued or [`Config::static_token`]), HTTP Basic with the
//! user name and password, an API key (`X-API-Key` header or `api_key` query parameter) or a
//! session (`X-Session`).
//!
//! Signed assertions are verified with [`Config::jwt_keys`]; by default the public halves of
//! the committed test keys [`TEST_RSA_PRIVATE_KEY`] and [`TEST_EC_PRIVATE_KEY`] (public test
//! keys, `sandbox/keys/`), with [`TEST_UNREGISTERED_RSA_PRIVATE_KEY`] for "wrong key" tests.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use sandbox::{Config, Fault, Sandbox};
//!
//! let sandbox = Sandbox::start("127.0.0.1:0".parse().unwrap(), Config::default()).await?;
//! sandbox.add_fault(Fault { status: Some(429), ..Fault::new("/items") });
//! println!("listening on {}", sandbox.url());
//! // ... run a client against sandbox.url() ...
//! assert_eq!(sandbox.stats().tokens_issued, 0);
//! sandbox.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod authorize;
mod client_auth;
mod config;
mod discovery;
mod fault;
mod grants;
mod http;
mod jwt;
mod keys;
mod oauth;
mod routes;
mod token;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use config::{
    AuthorizeMode, Config, DiscoveryMode, JwtKey, PkceMode, TEST_EC_KID, TEST_EC_PRIVATE_KEY,
    TEST_EC_PUBLIC_KEY, TEST_RSA_KID, TEST_RSA_PRIVATE_KEY, TEST_RSA_PUBLIC_KEY,
    TEST_SERVICE_ACCOUNT_KID, TEST_UNREGISTERED_RSA_PRIVATE_KEY,
};
pub use fault::Fault;

/// How many requests the request log keeps; the oldest are dropped first.
pub const REQUEST_LOG_CAPACITY: usize = 1000;

/// How many issued tokens and sessions [`Sandbox::issued`] remembers.
pub const ISSUED_LOG_CAPACITY: usize = 10_000;

/// The largest request body the sandbox reads (1 MiB); larger bodies are answered with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Counters of what the sandbox has answered (also served by `GET /_sandbox/stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests to `/oauth/token`, whatever their outcome (faults included).
    pub token_requests: u64,
    /// Access tokens issued.
    pub tokens_issued: u64,
    /// Requests to API routes (`/items*`, `/events`, `/logs`, `/echo`), whatever their outcome.
    pub api_requests: u64,
    /// API requests answered with 401 (injected faults included).
    pub unauthorized: u64,
    /// Requests to `/oauth/token` with `grant_type=refresh_token`, whatever their outcome
    /// (injected faults excluded: they answer before the grant type is read).
    #[serde(default)]
    pub refresh_grants: u64,
    /// Requests to `/oauth/revoke`, whatever their outcome (faults included).
    #[serde(default)]
    pub revocations: u64,
    /// Requests to `/oauth/authorize`, whatever their outcome (faults included).
    #[serde(default)]
    pub authorizations: u64,
}

/// A request as the sandbox received it (served by `GET /_sandbox/requests`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, without `?` (empty when there is none).
    pub query: String,
    /// Every header, names lowercase, in the order received; credentials are not redacted.
    pub headers: Vec<(String, String)>,
    /// The body, as lossy UTF-8.
    pub body: String,
}

impl SeenRequest {
    /// The value of the first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running sandbox server.
///
/// Dropping it without [`Sandbox::shutdown`] also stops the server, in the background.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox").field("addr", &self.addr).finish()
    }
}

impl Sandbox {
    /// Starts the sandbox on `listen`, which must be a loopback address (port 0 picks a free
    /// port). Must be called inside a tokio runtime; the server runs on it.
    ///
    /// Fails with [`io::ErrorKind::InvalidInput`] for a non-loopback address, an invalid
    /// fault in [`Config::faults`] or a key of [`Config::jwt_keys`] that is not an RSA or P-256
    /// `PUBLIC KEY` PEM, and with the bind error when the address is taken.
    pub async fn start(listen: SocketAddr, config: Config) -> io::Result<Sandbox> {
        if !listen.ip().to_canonical().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the sandbox only listens on loopback (127.0.0.1 or [::1]); refusing {listen}"
                ),
            ));
        }
        for fault in &config.faults {
            fault.validate().map_err(|message| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("invalid sandbox fault for `{}`: {message}", fault.path),
                )
            })?;
        }
        let keys = keys::parse_all(&config.jwt_keys)
            .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, addr, keys));
        let app = axum::Router::new()
            .fallback(routes::handle)
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                // A send or a dropped sender both stop the server.
                let _ = stopped.await;
            });
            if let Err(error) = server.await {
                tracing::warn!(%error, "sandbox server stopped");
            }
        });
        tracing::debug!(%addr, "sandbox listening");
        Ok(Sandbox {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address the sandbox listens on (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:8080` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint, `{url}/oauth/token`.
    pub fn token_url(&self) -> String {
        self.shared.token_url()
    }

    /// The authorization endpoint, `{url}/oauth/authorize`.
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth/authorize", self.shared.base_url())
    }

    /// The revocation endpoint, `{url}/oauth/revoke`.
    pub fn revocation_url(&self) -> String {
        format!("{}/oauth/revoke", self.shared.base_url())
    }

    /// The `issuer` of the discovery documents: [`Config::issuer`], or else [`Sandbox::url`].
    pub fn issuer(&self) -> String {
        self.shared.issuer()
    }

    /// A Google-style service-account key file (JSON) for [`Config::service_account_email`],
    /// with the key [`TEST_RSA_PRIVATE_KEY`] (`private_key_id` [`TEST_SERVICE_ACCOUNT_KID`])
    /// and `token_uri` [`Sandbox::token_url`]: what the JWT-bearer grant signs with.
    pub fn service_account_json(&self) -> String {
        serde_json::json!({
            "type": "service_account",
            "project_id": "sandbox",
            "private_key_id": TEST_SERVICE_ACCOUNT_KID,
            "private_key": TEST_RSA_PRIVATE_KEY,
            "client_email": self.shared.config.service_account_email,
            "client_id": "1",
            "token_uri": self.token_url(),
        })
        .to_string()
    }

    /// The refresh tokens the sandbox issued that are valid now (neither spent nor revoked),
    /// oldest first. [`Config::refresh_token`] is not listed, like in [`Sandbox::issued`],
    /// though it is valid until spent or revoked.
    pub fn refresh_tokens(&self) -> Vec<String> {
        self.shared.lock().grants.live_refresh_tokens()
    }

    /// How `GET /oauth/authorize` answers from now on (also `POST /_sandbox/authorize-mode`
    /// with `"approve"`, `"deny"` or `"wrong_state"`).
    pub fn set_authorize_mode(&self, mode: AuthorizeMode) {
        self.shared.lock().authorize_mode = mode;
    }

    /// How `GET /oauth/authorize` answers now.
    pub fn authorize_mode(&self) -> AuthorizeMode {
        self.shared.lock().authorize_mode
    }

    /// The configuration the sandbox was started with (its `faults` are the initial ones).
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The counters, the same numbers as `GET /_sandbox/stats`.
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats
    }

    /// The request log, oldest first (at most [`REQUEST_LOG_CAPACITY`] entries).
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.shared.lock().requests.iter().cloned().collect()
    }

    /// Every access token, refresh token, authorization code and session issued so far (the
    /// last [`ISSUED_LOG_CAPACITY`]), revoked or not: what a leak test looks for in a client's
    /// output. [`Config::refresh_token`] is not in it: it was configured, not issued.
    pub fn issued(&self) -> Vec<String> {
        self.shared.lock().issued.iter().cloned().collect()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Adds a fault, after the faults already installed.
    ///
    /// # Panics
    ///
    /// When the fault is invalid (a path that does not start with `/` nor is `*`, a status
    /// outside 200..=599, a header name or value that HTTP does not allow): a test bug.
    pub fn add_fault(&self, fault: Fault) {
        if let Err(message) = fault.validate() {
            panic!("invalid sandbox fault for `{}`: {message}", fault.path);
        }
        self.shared.lock().faults.push(fault::Active::new(fault));
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// Revokes every issued access token and session (the static token and the refresh tokens
    /// stay valid).
    pub fn expire_tokens(&self) {
        self.shared.lock().revoke_all();
    }

    /// Stops accepting connections, lets the requests in flight finish, and returns when the
    /// server has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// What the request handlers share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) addr: SocketAddr,
    /// [`Config::jwt_keys`], parsed.
    pub(crate) keys: Vec<keys::RegisteredKey>,
    state: Mutex<State>,
}

impl Shared {
    fn new(config: Config, addr: SocketAddr, keys: Vec<keys::RegisteredKey>) -> Shared {
        let faults = config
            .faults
            .iter()
            .cloned()
            .map(fault::Active::new)
            .collect();
        let next_item_id = u64::try_from(config.items)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let mut grants = grants::Grants::default();
        if !config.refresh_token.is_empty() {
            grants.add_configured_refresh(
                config.refresh_token.clone(),
                &config.client_id,
                "items:read",
            );
        }
        Shared {
            config,
            addr,
            keys,
            state: Mutex::new(State {
                tokens: HashMap::new(),
                sessions: HashMap::new(),
                prune_at: PRUNE_MIN,
                issued: VecDeque::new(),
                faults,
                requests: VecDeque::new(),
                stats: Stats::default(),
                next_item_id,
                grants,
                authorize_mode: AuthorizeMode::default(),
            }),
        }
    }

    /// `http://{addr}`.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `{base}/oauth/token`.
    pub(crate) fn token_url(&self) -> String {
        format!("{}/oauth/token", self.base_url())
    }

    /// The discovery `issuer`.
    pub(crate) fn issuer(&self) -> String {
        self.config
            .issuer
            .clone()
            .unwrap_or_else(|| self.base_url())
    }

    /// The keys registered for the JWTs of `issuer`.
    pub(crate) fn keys_of(&self, issuer: &str) -> Vec<&keys::RegisteredKey> {
        self.keys.iter().filter(|k| k.issuer == issuer).collect()
    }

    /// The URLs of `paths` on this server, by its address and by the request's `Host` (when
    /// it is another name, e.g. `localhost`); with the base URLs and the issuer when
    /// `with_base`. What an assertion's `aud` may be.
    pub(crate) fn endpoint_urls(
        &self,
        req: &http::Req,
        paths: &[&str],
        with_base: bool,
    ) -> Vec<String> {
        let mut bases = vec![self.base_url()];
        if let Some(host) = req.header("host").filter(|h| http::is_plain_authority(h)) {
            bases.push(format!("http://{host}"));
        }
        let mut urls = Vec::new();
        for base in &bases {
            urls.extend(paths.iter().map(|path| format!("{base}{path}")));
        }
        if with_base {
            urls.extend(bases);
            urls.push(self.issuer());
        }
        urls
    }

    /// Locks the state; never held across an await.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new credential (token, session, code): [`Config::token_prefix`] and 64 random hex
    /// characters.
    pub(crate) fn credential(&self) -> Result<String, getrandom::Error> {
        Ok(format!(
            "{}{}",
            self.config.token_prefix,
            http::random_hex()?
        ))
    }

    /// When a token or session issued now expires (`None`: never, for huge lifetimes).
    pub(crate) fn expiry(&self, now: Instant) -> Option<Instant> {
        now.checked_add(Duration::from_secs(self.config.token_lifetime_s))
    }
}

/// Expired tokens and sessions are pruned when a map reaches this size (then twice the size
/// left after pruning), so that benchmarks issuing many tokens do not grow without bound.
const PRUNE_MIN: usize = 1024;

/// The mutable state of a sandbox.
pub(crate) struct State {
    /// Issued access tokens and their expiry (`None`: never).
    pub(crate) tokens: HashMap<String, Option<Instant>>,
    /// Sessions from `/login` and their expiry (`None`: never).
    pub(crate) sessions: HashMap<String, Option<Instant>>,
    prune_at: usize,
    /// Every token and session issued, newest last (capped), for leak tests.
    issued: VecDeque<String>,
    pub(crate) faults: Vec<fault::Active>,
    pub(crate) requests: VecDeque<SeenRequest>,
    pub(crate) stats: Stats,
    pub(crate) next_item_id: u64,
    /// Refresh tokens, authorization codes and client assertion `jti`s.
    pub(crate) grants: grants::Grants,
    pub(crate) authorize_mode: AuthorizeMode,
}

impl State {
    pub(crate) fn revoke_all(&mut self) {
        self.tokens.clear();
        self.sessions.clear();
    }

    /// Remembers an issued token, code or session.
    pub(crate) fn remember(&mut self, credential: &str) {
        push_capped(&mut self.issued, credential.to_owned(), ISSUED_LOG_CAPACITY);
    }

    pub(crate) fn record(&mut self, request: SeenRequest) {
        push_capped(&mut self.requests, request, REQUEST_LOG_CAPACITY);
    }

    /// Removes expired tokens and sessions when the maps have grown.
    pub(crate) fn prune(&mut self, now: Instant) {
        if self.tokens.len() + self.sessions.len() < self.prune_at {
            return;
        }
        self.tokens.retain(|_, expiry| is_live(*expiry, now));
        self.sessions.retain(|_, expiry| is_live(*expiry, now));
        self.prune_at = PRUNE_MIN.max(2 * (self.tokens.len() + self.sessions.len()));
    }
}

/// Whether a token or session with this expiry is still valid at `now`.
pub(crate) fn is_live(expiry: Option<Instant>, now: Instant) -> bool {
    expiry.is_none_or(|at| now < at)
}

fn push_capped<T>(log: &mut VecDeque<T>, item: T, capacity: usize) {
    while log.len() >= capacity {
        log.pop_front();
    }
    log.push_back(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_log_drops_the_oldest_beyond_capacity() {
        let mut log = VecDeque::new();
        for i in 0..REQUEST_LOG_CAPACITY + 5 {
            push_capped(&mut log, i, REQUEST_LOG_CAPACITY);
        }
        assert_eq!(log.len(), REQUEST_LOG_CAPACITY);
        assert_eq!(log.front(), Some(&5));
        assert_eq!(log.back(), Some(&(REQUEST_LOG_CAPACITY + 4)));
    }

    #[test]
    fn expired_tokens_are_pruned_once_the_maps_grow() {
        let shared = Shared::new(
            Config::default(),
            "127.0.0.1:1".parse().unwrap(),
            Vec::new(),
        );
        let mut state = shared.lock();
        let now = Instant::now();
        for i in 0..PRUNE_MIN {
            let expiry = if i % 2 == 0 { Some(now) } else { None };
            state.tokens.insert(format!("t{i}"), expiry);
        }
        state.prune(now);
        assert_eq!(state.tokens.len(), PRUNE_MIN / 2);
        assert!(state.tokens.values().all(Option::is_none));
    }

    #[test]
    fn default_secret_changes_under_form_urlencoding() {
        let secret = Config::default().client_secret;
        let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        assert_ne!(encoded, secret);
        for c in ['+', '/', '=', '%', ':'] {
            assert!(secret.contains(c), "{c}");
        }
    }
}

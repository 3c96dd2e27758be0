//! A local OAuth 2 provider and demo API served on loopback, for the tests, demos and benchmarks
//! of the `connector` binary (`connector sandbox`, `connectors/sandbox.yaml`).
//!
//! The sandbox answers:
//!
//! | route | what |
//! | --- | --- |
//! | `POST /oauth/token` | RFC 6749 token endpoint: `client_credentials` and `password` grants, client authentication by HTTP Basic (§2.3.1) or in the body |
//! | `POST /login` | JSON `{"username", "password"}` → `{"session"}`, for `X-Session` |
//! | `GET /items`, `GET /items/{id}`, `POST /items` | items, offset or page pagination |
//! | `GET /events` | events, cursor pagination |
//! | `GET /logs` | log lines, pagination by the `Link` header (RFC 8288) |
//! | `/echo` | the request as the sandbox saw it, credentials redacted |
//! | `/_sandbox/*` | control: faults, request log, stats, token expiry (no auth, not recorded) |
//!
//! API routes accept a bearer token (issued or [`Config::static_token`]), HTTP Basic with the
//! user name and password, an API key (`X-API-Key` header or `api_key` query parameter) or a
//! session (`X-Session`).
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

mod fault;
mod http;
mod routes;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use fault::Fault;

/// How many requests the request log keeps; the oldest are dropped first.
pub const REQUEST_LOG_CAPACITY: usize = 1000;

/// How many issued tokens and sessions [`Sandbox::issued`] remembers.
pub const ISSUED_LOG_CAPACITY: usize = 10_000;

/// The largest request body the sandbox reads (1 MiB); larger bodies are answered with 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// What the sandbox accepts and serves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The OAuth 2 client id.
    pub client_id: String,
    /// The OAuth 2 client secret.
    pub client_secret: String,
    /// The user name for the `password` grant, `/login` and HTTP Basic on the API.
    pub username: String,
    /// The password for the `password` grant, `/login` and HTTP Basic on the API.
    pub password: String,
    /// The API key accepted in `X-API-Key` or the `api_key` query parameter.
    pub api_key: String,
    /// A bearer token that is always valid (never expires, never revoked).
    pub static_token: String,
    /// Lifetime of issued access tokens and sessions, in seconds.
    pub token_lifetime_s: u64,
    /// How many items `/items` serves.
    pub items: usize,
    /// How many events `/events` serves.
    pub events: usize,
    /// How many log lines `/logs` serves.
    pub logs: usize,
    /// Faults installed at start, as if added with [`Sandbox::add_fault`].
    pub faults: Vec<Fault>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            client_id: "sandbox-client".to_owned(),
            // Every character after `secret` is changed by the form-urlencoding of RFC 6749
            // §2.3.1, so a client that skips it fails to authenticate.
            client_secret: "sandbox-secret/+=%:".to_owned(),
            username: "demo".to_owned(),
            password: "demo-password".to_owned(),
            api_key: "sandbox-api-key".to_owned(),
            static_token: "sandbox-static-token".to_owned(),
            token_lifetime_s: 3600,
            items: 120,
            events: 55,
            logs: 120,
            faults: Vec::new(),
        }
    }
}

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
    /// Fails with [`io::ErrorKind::InvalidInput`] for a non-loopback address or an invalid
    /// fault in [`Config::faults`], and with the bind error when the address is taken.
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
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, addr));
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

    /// Every access token and session issued so far (the last [`ISSUED_LOG_CAPACITY`]),
    /// revoked or not: what a leak test looks for in a client's output.
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

    /// Revokes every issued access token and session (the static token stays valid).
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
    state: Mutex<State>,
}

impl Shared {
    fn new(config: Config, addr: SocketAddr) -> Shared {
        let faults = config
            .faults
            .iter()
            .cloned()
            .map(fault::Active::new)
            .collect();
        let next_item_id = u64::try_from(config.items)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        Shared {
            config,
            addr,
            state: Mutex::new(State {
                tokens: HashMap::new(),
                sessions: HashMap::new(),
                prune_at: PRUNE_MIN,
                issued: VecDeque::new(),
                faults,
                requests: VecDeque::new(),
                stats: Stats::default(),
                next_item_id,
            }),
        }
    }

    /// Locks the state; never held across an await.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
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
}

impl State {
    pub(crate) fn revoke_all(&mut self) {
        self.tokens.clear();
        self.sessions.clear();
    }

    /// Remembers an issued token or session.
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
        let shared = Shared::new(Config::default(), "127.0.0.1:1".parse().unwrap());
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

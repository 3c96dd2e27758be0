//! `connector serve`: instances behind an HTTP API.
//!
//! Every instance of a folder is loaded at start ([`load_dir`]: the bad ones are reported and
//! left out, the others served), one [`Connection`] each, all sharing one [`Context`] (HTTP
//! client, token cache, metrics). A [`Server`] binds, refreshes the tokens of active instances
//! in the background and serves until its shutdown future completes, then lets the requests in
//! flight finish.
//!
//! | route | what |
//! | --- | --- |
//! | `POST /v1/instances/{id}/endpoints/{name}` | a JSON object of inputs → records and a summary |
//! | `POST /v1/instances/{id}/auth/test` | fetch credentials now; every secret redacted |
//! | `GET /v1/instances` | the instances, their connector, auth method and endpoints |
//! | `GET /healthz` | liveness, no API key needed |
//! | `GET /metrics` | Prometheus text |
//!
//! Every route but `/healthz` requires `Authorization: Bearer KEY` ([`ApiKey`]). Errors are
//! `{"error": {"code", "message"}}` with a stable code.

mod auth;
mod error;
mod log;
mod routes;

pub use auth::ApiKey;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use compiler::Diagnostic;
use indexmap::IndexMap;

use crate::instance::{self, Instance, LoadError};
use crate::metrics::Metrics;
use crate::run::{Connection, Context};
use crate::tokens::TokenCache;

/// The largest request body read (1 MiB).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// How long a client has to send a request's head (request line and headers), counted from
/// when the server starts waiting for it: a connection that has not sent a whole head by then
/// (a slowloris trickling bytes, a connection that sends nothing, a keep-alive connection
/// idle that long) is closed without an answer.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client has to send a request's whole body once its head is read; after that the
/// call is answered 408 `request_timeout` and the connection closed.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the background refresher looks for tokens that fall due.
pub const REFRESH_EVERY: Duration = Duration::from_millis(500);

/// What the routes share.
pub(crate) struct State {
    /// Connections by instance id, in the order their files were loaded.
    pub(crate) instances: IndexMap<String, Arc<Connection>>,
    /// The counters of the shared context.
    pub(crate) metrics: Arc<Metrics>,
    /// The API key callers must present.
    pub(crate) api_key: ApiKey,
}

/// The instances of a folder: those that loaded, and why the others did not.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Instances ready to serve, in file name order.
    pub instances: Vec<Instance>,
    /// One entry per file that did not load, with every diagnostic about it.
    pub failures: Vec<LoadError>,
    /// How many instance files were found.
    pub files: usize,
}

/// Loads every `*.yaml` and `*.yml` file of `dir` (not its subfolders), in file name order.
/// A file that does not load, or whose instance id an earlier file already has, is a failure;
/// the others load regardless. Fails only when the folder cannot be read.
pub fn load_dir(dir: &Path) -> std::io::Result<Loaded> {
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml");
        if yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let mut loaded = Loaded {
        files: files.len(),
        ..Loaded::default()
    };
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut connectors = instance::Connectors::default();
    for path in &files {
        match instance::load_with(path, &[], &mut connectors) {
            Ok(i) => {
                if let Some(first) = seen.get(&i.id) {
                    let mut d = Diagnostic::error(
                        "duplicate-instance",
                        format!("the instance id `{}` is already used by {first}", i.id),
                    )
                    .help("give this instance another id with `instance: ID`, or rename the file");
                    if let Some(pos) = instance_key(&i.source) {
                        d = d.at("/instance", pos);
                    }
                    d.file = i.file.clone();
                    loaded.failures.push(LoadError {
                        diagnostics: vec![d],
                        sources: HashMap::from([(i.file.clone(), i.source.clone())]),
                    });
                    continue;
                }
                seen.insert(i.id.clone(), i.file.clone());
                loaded.instances.push(i);
            }
            Err(e) => loaded.failures.push(e),
        }
    }
    Ok(loaded)
}

/// Where the top-level `instance:` key of an instance file is.
fn instance_key(source: &str) -> Option<compiler::Pos> {
    let line = source.lines().position(|l| l.starts_with("instance:"))?;
    Some(compiler::Pos {
        line: line + 1,
        column: 1,
        len: "instance".len(),
    })
}

/// Settings of a [`Server`].
#[derive(Debug)]
pub struct Options {
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// The key callers must present.
    pub api_key: ApiKey,
    /// How long requests in flight may take to finish after shutdown is asked.
    pub grace: Duration,
}

/// A bound server, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    router: axum::Router,
    tokens: Arc<TokenCache>,
    addr: SocketAddr,
    instances: usize,
    grace: Duration,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.addr)
            .field("instances", &self.instances)
            .finish()
    }
}

impl Server {
    /// Opens a connection for each instance, all sharing `cx`, and binds to
    /// `options.listen`.
    pub async fn bind(
        options: Options,
        instances: Vec<Instance>,
        cx: &Context,
    ) -> std::io::Result<Server> {
        let state = state(options.api_key, instances, cx);
        let count = state.instances.len();
        let listener = tokio::net::TcpListener::bind(options.listen).await?;
        let addr = listener.local_addr()?;
        Ok(Server {
            listener,
            router: routes::router(state),
            tokens: cx.tokens.clone(),
            addr,
            instances: count,
            grace: options.grace,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many instances it serves.
    pub fn instances(&self) -> usize {
        self.instances
    }

    /// Serves until `shutdown` completes, then stops accepting connections and waits for the
    /// requests in flight (at most the grace period). Tokens of active instances are
    /// refreshed in the background meanwhile.
    ///
    /// Each connection is served by hyper's HTTP/1 server with a timer, so that a head must
    /// arrive within [`HEAD_TIMEOUT`] (`axum::serve` sets no timer, and without one hyper
    /// never times a head out: a client could hold a connection forever).
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let refresher = self.tokens.spawn_refresher(REFRESH_EVERY);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT);
        let service = hyper_util::service::TowerToHyperService::new(self.router);
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        accept_failed(&e).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let conn = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service.clone());
            let conn = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("connection closed: {e}");
                }
            });
        }
        tracing::info!("shutting down: finishing the requests in flight");
        drop(self.listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(self.grace) => {
                tracing::warn!(
                    "requests still in flight {} s after shutdown was asked; stopping anyway",
                    self.grace.as_secs()
                );
            }
        }
        refresher.abort();
        Ok(())
    }
}

/// After a failed `accept`: a connection that failed before it was accepted is the client's
/// problem; anything else (e.g. out of file descriptors) is logged and waited out for a
/// second rather than retried in a busy loop, as `axum::serve` does.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accepting a connection failed: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The routes over `instances` (connections sharing `cx`), for callers that serve them
/// themselves.
pub fn router(api_key: ApiKey, instances: Vec<Instance>, cx: &Context) -> axum::Router {
    routes::router(state(api_key, instances, cx))
}

/// One connection per instance (a later instance with the same id replaces an earlier one:
/// [`load_dir`] never returns two).
fn state(api_key: ApiKey, instances: Vec<Instance>, cx: &Context) -> Arc<State> {
    let mut map = IndexMap::new();
    for i in instances {
        let id = i.id.clone();
        map.insert(id, Arc::new(Connection::with_context(Arc::new(i), cx)));
    }
    Arc::new(State {
        instances: map,
        metrics: cx.metrics.clone(),
        api_key,
    })
}

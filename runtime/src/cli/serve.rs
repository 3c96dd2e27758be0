//! `connector serve --instances DIR`: every instance of a folder behind an HTTP API, with an
//! API key, metrics and tokens refreshed in the background.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use runtime::metrics::Metrics;
use runtime::run::Context;
use runtime::serve::{self, ApiKey, Server};
use runtime::tokens::shared::{self, EncryptionKey, Shared};
use runtime::tokens::TokenCache;

use super::exit;

/// The environment variable the API key is read from by default.
const DEFAULT_API_KEY_ENV: &str = "CONNECTOR_API_KEY";

/// How long requests in flight may take to finish after SIGTERM or Ctrl-C.
const GRACE: Duration = Duration::from_secs(30);

/// Arguments of `connector serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder of instance files: every `*.yaml` and `*.yml` in it (not in subfolders).
    #[arg(long, value_name = "DIR")]
    instances: PathBuf,
    /// Where to listen (port 0: any free port). A non-loopback address needs
    /// `--allow-remote`.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Accept a non-loopback `--listen` address (the API is plain HTTP: put TLS in front).
    #[arg(long)]
    allow_remote: bool,
    /// Share tokens with other processes through Redis: `redis://HOST:PORT/DB`. Without it,
    /// tokens are cached in this process only.
    #[arg(long, value_name = "URL")]
    token_cache: Option<String>,
    /// The environment variable holding the key that seals tokens in Redis (32 bytes: 64 hex
    /// characters or base64).
    #[arg(
        long,
        value_name = "NAME",
        requires = "token_cache",
        conflicts_with = "token_cache_key_file"
    )]
    token_cache_key_env: Option<String>,
    /// The file holding the key that seals tokens in Redis.
    #[arg(long, value_name = "PATH", requires = "token_cache")]
    token_cache_key_file: Option<PathBuf>,
    /// How long a Redis lease on a token request lasts if its holder dies, in milliseconds.
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    lease_ms: u64,
    /// The environment variable holding the API key callers must send as
    /// `Authorization: Bearer KEY` [default: CONNECTOR_API_KEY].
    #[arg(long, value_name = "NAME", conflicts_with = "api_key_file")]
    api_key_env: Option<String>,
    /// The file holding the API key.
    #[arg(long, value_name = "PATH")]
    api_key_file: Option<PathBuf>,
}

/// Runs the command until SIGTERM or Ctrl-C.
pub fn run(args: Args) -> u8 {
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        eprintln!(
            "error: `--listen {}` is not a loopback address; add `--allow-remote` to accept connections from other hosts (the API is plain HTTP: put TLS in front of it)",
            args.listen
        );
        return exit::IO;
    }
    let api_key = match api_key(&args) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::IO;
        }
    };
    let cache_key = match cache_key(&args) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::IO;
        }
    };
    let shared = match &args.token_cache {
        None => None,
        Some(url) => {
            let options = shared::Options {
                lease: Duration::from_millis(args.lease_ms),
                ..Default::default()
            };
            match Shared::new(url, cache_key, options) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("error: --token-cache: {e}");
                    return exit::IO;
                }
            }
        }
    };

    let mut loaded = match serve::load_dir(&args.instances) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "error: cannot read the instances folder `{}`: {e}",
                args.instances.display()
            );
            return exit::IO;
        }
    };
    for err in &loaded.failures {
        for d in &err.diagnostics {
            let src = err.sources.get(&d.file).map(String::as_str);
            super::output::print_human(std::slice::from_ref(d), src);
        }
    }
    for i in &mut loaded.instances {
        super::output::print_human(&i.warnings, Some(&i.source));
        // The text was kept for these source lines only: 10,000 instances would hold
        // megabytes of it for as long as the server runs.
        i.source = String::new();
    }
    if !loaded.failures.is_empty() {
        eprintln!(
            "warning: {} of {} instance files did not load (see above); serving the other {}",
            loaded.failures.len(),
            loaded.files,
            loaded.instances.len()
        );
    }

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return exit::IO;
        }
    };
    rt.block_on(async move {
        if loaded.instances.is_empty() {
            tracing::warn!(
                "no instance loaded from `{}`: serving /healthz and nothing else",
                args.instances.display()
            );
        }
        let metrics = Arc::new(Metrics::default());
        let tokens = match shared {
            None => TokenCache::new(metrics),
            Some(s) => {
                if !s.encrypted() {
                    tracing::warn!(
                        "tokens are stored in Redis as bearer credentials (not encrypted): anyone who can read Redis can use them; set --token-cache-key-env or --token-cache-key-file"
                    );
                }
                TokenCache::with_shared(metrics, s)
            }
        };
        let cx = match Context::with_tokens(Arc::new(tokens)) {
            Ok(cx) => cx,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::IO;
            }
        };
        let options = serve::Options {
            listen: args.listen,
            api_key,
            grace: GRACE,
        };
        let server = match Server::bind(options, loaded.instances, &cx).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.listen);
                return exit::IO;
            }
        };
        if !args.listen.ip().is_loopback() {
            tracing::warn!(
                "listening on a non-loopback address over plain HTTP: put TLS in front of it"
            );
        }
        // The signal handlers are installed before the address is printed, so a signal sent
        // as soon as it is seen is not lost.
        let shutdown = armed(super::sandbox::shutdown_signal()).await;
        eprintln!(
            "serving {} instances on http://{}",
            server.instances(),
            server.local_addr()
        );
        match server.run(shutdown).await {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("error: {e}");
                exit::ERRORS
            }
        }
    })
}

/// The API key, from `--api-key-file` or the environment; leading and trailing whitespace
/// removed.
fn api_key(args: &Args) -> Result<ApiKey, String> {
    if let Some(path) = &args.api_key_file {
        let text = read(path).map_err(|e| format!("no API key: {e}"))?;
        return ApiKey::new(text.trim())
            .ok_or_else(|| format!("no API key: the file `{}` is empty", path.display()));
    }
    let name = args.api_key_env.as_deref().unwrap_or(DEFAULT_API_KEY_ENV);
    let value = std::env::var(name).unwrap_or_default();
    ApiKey::new(value.trim()).ok_or_else(|| {
        format!(
            "no API key: the environment variable `{name}` is not set or empty (set it, or give `--api-key-env NAME` or `--api-key-file PATH`)"
        )
    })
}

/// The key that seals tokens in Redis, if one is given.
fn cache_key(args: &Args) -> Result<Option<EncryptionKey>, String> {
    seal_key(
        args.token_cache_key_env.as_deref(),
        args.token_cache_key_file.as_deref(),
    )
}

/// The key that seals tokens in Redis, from an environment variable or a file, if given.
pub(super) fn seal_key(
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<EncryptionKey>, String> {
    let (text, place) = if let Some(name) = env {
        let value = std::env::var(name).unwrap_or_default();
        if value.trim().is_empty() {
            return Err(format!(
                "no token cache key: the environment variable `{name}` is not set or empty"
            ));
        }
        (value, format!("the environment variable `{name}`"))
    } else if let Some(path) = file {
        let text = read(path).map_err(|e| format!("no token cache key: {e}"))?;
        (text, format!("the file `{}`", path.display()))
    } else {
        return Ok(None);
    };
    EncryptionKey::parse(&text)
        .map(Some)
        .map_err(|e| format!("the token cache key in {place}: {e}"))
}

/// A file's text, or why it cannot be read (never its contents).
fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
}

/// Polls `f` once, so whatever it sets up when first polled (signal handlers) is in place
/// now; returns it to be awaited later.
async fn armed(
    f: impl Future<Output = ()> + Send + 'static,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    let mut f: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(f);
    let done = std::future::poll_fn(|cx| Poll::Ready(f.as_mut().poll(cx).is_ready())).await;
    if done {
        Box::pin(std::future::ready(()))
    } else {
        f
    }
}

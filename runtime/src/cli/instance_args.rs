//! What `auth` and `run` share: loading the instance, the `--sandbox` switch, printing
//! failures on one line.

use std::path::PathBuf;

use runtime::instance::{self, Instance};
use runtime::resolve::Given;

use super::exit;

/// The instance and how to reach its provider.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The instance file (YAML): its connector, auth method and values.
    pub instance: PathBuf,
    /// Start the sandbox provider in this process on a free loopback port and point the
    /// instance's `base_url` at it (for the bundled `sandbox` connector).
    #[arg(long)]
    pub sandbox: bool,
    /// Share tokens and stored refresh tokens with `connector serve` replicas through Redis:
    /// `redis://HOST:PORT/DB`.
    #[arg(long, value_name = "URL")]
    pub token_cache: Option<String>,
    /// The environment variable holding the key that seals tokens in Redis.
    #[arg(
        long,
        value_name = "NAME",
        requires = "token_cache",
        conflicts_with = "token_cache_key_file"
    )]
    pub token_cache_key_env: Option<String>,
    /// The file holding the key that seals tokens in Redis.
    #[arg(long, value_name = "PATH", requires = "token_cache")]
    pub token_cache_key_file: Option<PathBuf>,
}

/// A loaded instance and the in-process sandbox of `--sandbox`.
pub struct Started {
    /// The loaded instance.
    pub instance: Instance,
    /// The sandbox, when `--sandbox` was given.
    pub sandbox: Option<sandbox::Sandbox>,
}

/// A connection to the instance, and the in-process sandbox of `--sandbox`.
pub struct Connected {
    /// The connection.
    pub conn: runtime::run::Connection,
    /// The sandbox, when `--sandbox` was given.
    pub sandbox: Option<sandbox::Sandbox>,
}

impl Connected {
    /// Stops the sandbox, if one was started.
    pub async fn finish(self) {
        if let Some(s) = self.sandbox {
            s.shutdown().await;
        }
    }
}

/// Loads the instance and opens a connection. On failure, prints why and returns the exit
/// status.
pub async fn connect(target: &Target) -> Result<Connected, u8> {
    let started = load(target).await?;
    if let Some(url) = &target.token_cache {
        let tokens = shared_tokens(target, url).map_err(|e| {
            eprintln!("error: --token-cache: {e}");
            exit::IO
        })?;
        return match runtime::run::Context::with_tokens(tokens) {
            Ok(cx) => Ok(Connected {
                conn: runtime::run::Connection::with_context(
                    std::sync::Arc::new(started.instance),
                    &cx,
                ),
                sandbox: started.sandbox,
            }),
            Err(e) => {
                eprintln!("error: {e}");
                Err(exit::IO)
            }
        };
    }
    match runtime::run::Connection::new(started.instance) {
        Ok(conn) => Ok(Connected {
            conn,
            sandbox: started.sandbox,
        }),
        Err(e) => {
            eprintln!("error: {e}");
            Err(exit::IO)
        }
    }
}

/// A token cache shared through the Redis at `url`.
fn shared_tokens(
    target: &Target,
    url: &str,
) -> Result<std::sync::Arc<runtime::tokens::TokenCache>, String> {
    use runtime::tokens::shared::{Options, Shared};
    let key = super::serve::seal_key(
        target.token_cache_key_env.as_deref(),
        target.token_cache_key_file.as_deref(),
    )?;
    let shared = Shared::new(url, key, Options::default()).map_err(|e| e.to_string())?;
    let metrics = std::sync::Arc::new(runtime::metrics::Metrics::default());
    Ok(std::sync::Arc::new(
        runtime::tokens::TokenCache::with_shared(metrics, shared),
    ))
}

/// Loads the instance (starting the sandbox first when asked). On failure, prints the
/// diagnostics and returns the exit status.
pub async fn load(target: &Target) -> Result<Started, u8> {
    let mut overrides = Vec::new();
    let sandbox = if target.sandbox {
        let addr = "127.0.0.1:0".parse().expect("a valid address");
        match sandbox::Sandbox::start(addr, sandbox::Config::default()).await {
            Ok(s) => {
                overrides.push(("base_url".to_owned(), Given::Text(s.url())));
                Some(s)
            }
            Err(e) => {
                eprintln!("error: cannot start the sandbox: {e}");
                return Err(exit::IO);
            }
        }
    } else {
        None
    };
    match instance::load(&target.instance, &overrides) {
        Ok(instance) => {
            if sandbox.is_some() && !instance.ir.variables.iter().any(|v| v.name == "base_url") {
                eprintln!(
                    "error: {}: `--sandbox` sets the variable `base_url`, which the connector `{}` does not have",
                    target.instance.display(),
                    instance.ir.connector
                );
                return Err(exit::IO);
            }
            super::output::print_human(&instance.warnings, Some(&instance.source));
            Ok(Started { instance, sandbox })
        }
        Err(err) => {
            for d in &err.diagnostics {
                let src = err.sources.get(&d.file).map(String::as_str);
                super::output::print_human(std::slice::from_ref(d), src);
            }
            let io = err.diagnostics.iter().any(|d| d.code == "io");
            Err(if io { exit::IO } else { exit::ERRORS })
        }
    }
}

/// The exit status of a runtime error: 2 for usage, 1 for everything else.
pub fn status(e: &runtime::Error) -> u8 {
    if e.kind() == runtime::ErrorKind::Usage {
        exit::IO
    } else {
        exit::ERRORS
    }
}

/// A tokio runtime for a command.
pub fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the async runtime starts")
}

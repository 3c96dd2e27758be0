//! `connector sandbox`: the local OAuth 2 provider and demo API.

use std::net::SocketAddr;

use super::exit;

/// Arguments of `connector sandbox`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to listen; loopback addresses only.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Lifetime of the access tokens it issues, in seconds.
    #[arg(long, default_value_t = 3600)]
    token_lifetime: u64,
    /// A fault to inject, as JSON, e.g.
    /// `{"path":"/items","status":429,"headers":{"Retry-After":"1"},"times":2}` (repeatable).
    #[arg(long = "fault", value_name = "JSON")]
    faults: Vec<String>,
}

/// Runs the command until Ctrl-C or SIGTERM.
pub fn run(args: Args) -> u8 {
    let mut config = sandbox::Config {
        token_lifetime_s: args.token_lifetime.max(1),
        ..Default::default()
    };
    for f in &args.faults {
        match serde_json::from_str::<sandbox::Fault>(f) {
            Ok(f) => config.faults.push(f),
            Err(e) => {
                eprintln!("error: `--fault {f}` is not a fault: {e}");
                return exit::IO;
            }
        }
    }
    super::instance_args::tokio().block_on(async move {
        let client_id = config.client_id.clone();
        let s = match sandbox::Sandbox::start(args.listen, config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", args.listen);
                return exit::IO;
            }
        };
        eprintln!(
            "sandbox listening on {} (OAuth 2 client `{client_id}`; stop with Ctrl-C)",
            s.url()
        );
        shutdown_signal().await;
        s.shutdown().await;
        exit::OK
    })
}

/// Ctrl-C, or SIGTERM on Unix.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

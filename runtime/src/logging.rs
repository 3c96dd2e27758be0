//! Logs: `tracing` to stderr, filtered by `RUST_LOG` (`warn` when unset).
//!
//! Log lines carry methods, URLs without their query strings, statuses and counts; never
//! header values, bodies, secrets or tokens.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

/// Installs the subscriber. `RUST_LOG` takes `trace`, `debug`, `info`, `warn`, `error` or
/// per-target directives such as `runtime=debug,warn`.
pub fn init() {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::WARN));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .compact();
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter))
        .try_init();
}

//! The runtime of declarative API connectors: instances loaded and resolved, credentials
//! obtained and cached, endpoints run with pagination and retries, secrets never shown.
//!
//! - [`instance`]: an instance file → its compiled connector and resolved values;
//! - [`auth`]: credentials per instance, cached until shortly before expiry;
//! - [`run`]: endpoint calls, pagination, records;
//! - [`render`] and [`request`]: templates rendered with escaping by context;
//! - [`http`]: the client, timeouts, capped bodies, retries;
//! - [`secret`]: the [`secret::Secret`] type;
//! - [`serve`]: instances behind an HTTP API (`connector serve`).

pub mod auth;
pub mod error;
pub mod http;
pub mod instance;
pub mod logging;
pub mod metrics;
pub mod render;
pub mod request;
pub mod resolve;
pub mod run;
pub mod secret;
pub mod serve;
pub mod tokens;
pub mod value;

pub use error::{Error, ErrorKind, Result};

/// Reads a connector or instance file, at most one byte more than the compiler accepts
/// ([`compiler::MAX_FILE_BYTES`]): a huge file is refused by the compiler's `file-too-large`
/// without being read whole into memory.
pub fn read_capped(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(compiler::MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

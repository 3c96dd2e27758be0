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

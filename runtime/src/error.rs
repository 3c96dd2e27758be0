//! The runtime's error: one line that says what went wrong and where.

use std::fmt;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The instance or the call is not usable as given (a bad input, an unknown endpoint).
    Usage,
    /// The host could not be reached.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// No answer within the timeout.
    Timeout,
    /// The token or auth endpoint refused the credentials (RFC 6749 §5.2 and the like).
    AuthRejected,
    /// The token or auth response could not be used.
    AuthResponse,
    /// The API answered with an error status.
    Status,
    /// The API's response could not be used (not JSON, records not a list, too large).
    Response,
    /// A feature of the connector that this runtime does not run.
    Unsupported,
}

impl ErrorKind {
    /// A stable code for machines.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Usage => "usage",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::AuthRejected => "auth_rejected",
            ErrorKind::AuthResponse => "auth_response",
            ErrorKind::Status => "status",
            ErrorKind::Response => "response",
            ErrorKind::Unsupported => "unsupported",
        }
    }
}

/// A runtime failure. It never carries a secret: messages name variables, keys and URLs
/// without their query strings, and text taken from a server passes through
/// [`crate::secret::scrub`] first.
#[derive(Debug, Clone)]
pub struct Error(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
}

impl Error {
    /// A new error.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            status: None,
        }))
    }

    /// Records the HTTP status that caused the error.
    pub fn with_status(mut self, status: u16) -> Self {
        self.0.status = Some(status);
        self
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The HTTP status that caused it, if one did.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The same error with `; hint` after its message.
    pub fn hint(mut self, hint: impl fmt::Display) -> Self {
        self.0.message = format!("{}; {hint}", self.0.message);
        self
    }

    /// The same error with `context: ` before its message.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.0.message = format!("{context}: {}", self.0.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;

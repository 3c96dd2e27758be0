//! Errors as JSON: `{"error": {"code", "message"}}`, with a stable code.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::{Error, ErrorKind};

/// An error answer.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The status the upstream API answered, when it caused the error.
    upstream_status: Option<u16>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            upstream_status: None,
        }
    }

    /// 400 `bad_request`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 400 `invalid_input`.
    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
    }
}

impl From<Error> for ApiError {
    /// A runtime error: a usage error is the caller's (400 `invalid_input`), a timeout 504
    /// `timeout`, anything else the upstream's (502, the kind's code). Runtime messages never
    /// carry a secret.
    fn from(e: Error) -> Self {
        let (status, code) = match e.kind() {
            ErrorKind::Usage => (StatusCode::BAD_REQUEST, "invalid_input"),
            ErrorKind::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            kind => (StatusCode::BAD_GATEWAY, kind.code()),
        };
        ApiError {
            status,
            code,
            message: e.message().to_owned(),
            upstream_status: e.status(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(s) = self.upstream_status {
            error["upstream_status"] = s.into();
        }
        json(self.status, &serde_json::json!({ "error": error }))
    }
}

/// A JSON answer, never cached.
pub(crate) fn json(status: StatusCode, doc: &serde_json::Value) -> Response {
    json_bytes(status, serde_json::to_vec(doc).unwrap_or_default())
}

/// A JSON answer already serialized.
pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

//! The API key: `Authorization: Bearer KEY` on every route but `/healthz`, compared in
//! constant time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::error::ApiError;

/// The challenge of a 401.
const CHALLENGE: &str = r#"Bearer realm="connector""#;

/// The key callers must present. Only its SHA-256 digest is kept: a presented key is hashed
/// and the two digests compared with [`subtle::ConstantTimeEq`], so neither the bytes nor the
/// length of the key show in the time a comparison takes. `Debug` never shows it.
#[derive(Clone)]
pub struct ApiKey {
    digest: [u8; 32],
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl ApiKey {
    /// The key; `None` when it is empty.
    pub fn new(key: &str) -> Option<ApiKey> {
        if key.is_empty() {
            return None;
        }
        Some(ApiKey {
            digest: digest(key.as_bytes()),
        })
    }

    /// Whether `presented` is the key, in constant time.
    pub fn matches(&self, presented: &[u8]) -> bool {
        bool::from(digest(presented).ct_eq(&self.digest))
    }

    /// Whether the request's `Authorization` header carries the key as a bearer token.
    fn admits(&self, req: &Request) -> bool {
        req.headers()
            .get(AUTHORIZATION)
            .and_then(|v| bearer(v.as_bytes()))
            .is_some_and(|k| self.matches(k))
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Sha256::digest(bytes));
    out
}

/// The credentials of `Bearer CREDENTIALS` (the scheme in any case, RFC 9110 §11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Middleware: every route but `/healthz` answers 401 without the key.
pub(crate) async fn require(
    State(state): State<Arc<super::State>>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path() == "/healthz" || state.api_key.admits(&req) {
        return next.run(req).await;
    }
    let mut resp = ApiError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a valid API key is required: send `Authorization: Bearer KEY`",
    )
    .into_response();
    resp.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_credentials() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer   abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"BEARER abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bearerabc"), None);
        assert_eq!(bearer(b"Basic abc"), None);
    }

    #[test]
    fn keys_compare() {
        let k = ApiKey::new("secret-key").unwrap();
        assert!(k.matches(b"secret-key"));
        assert!(!k.matches(b"secret-kez"));
        assert!(!k.matches(b"secret-key "));
        assert!(!k.matches(b""));
        assert!(ApiKey::new("").is_none());
        assert_eq!(format!("{k:?}"), "ApiKey(<redacted>)");
    }
}

//! Discovery: the authorization server metadata (RFC 8414), the same document as OpenID
//! Connect Discovery's `openid-configuration`, and the JWKS of the registered keys.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::http::{json_response, method_not_allowed, no_route, Req};
use crate::oauth::KNOWN_SCOPES;
use crate::token::GRANT_TYPES;
use crate::{DiscoveryMode, PkceMode, Shared};

/// Which well-known document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Document {
    /// `/.well-known/oauth-authorization-server`.
    OAuth,
    /// `/.well-known/openid-configuration`.
    OpenId,
}

/// `GET` of a well-known document; 404 when [`Config::discovery`](crate::Config::discovery)
/// leaves it out.
pub(crate) fn metadata(shared: &Shared, req: &Req, document: Document) -> Response {
    let served = match shared.config.discovery {
        DiscoveryMode::Both => true,
        DiscoveryMode::OpenIdOnly => document == Document::OpenId,
        DiscoveryMode::None => false,
    };
    if !served {
        return no_route(req);
    }
    if req.method != Method::GET {
        return method_not_allowed(req, "GET");
    }
    json_response(StatusCode::OK, &Value::Object(document_of(shared)))
}

/// The metadata, the same for both documents.
fn document_of(shared: &Shared) -> Map<String, Value> {
    let config = &shared.config;
    let base = shared.base_url();
    let signing_algs = ["RS256", "PS256", "ES256"];
    let mut doc = Map::new();
    let mut put = |name: &str, value: Value| {
        doc.insert(name.to_owned(), value);
    };
    put("issuer", json!(shared.issuer()));
    put(
        "authorization_endpoint",
        json!(format!("{base}/oauth/authorize")),
    );
    put("token_endpoint", json!(format!("{base}/oauth/token")));
    put("revocation_endpoint", json!(format!("{base}/oauth/revoke")));
    put("jwks_uri", json!(format!("{base}/oauth/jwks")));
    put(
        "token_endpoint_auth_methods_supported",
        json!(config.auth_methods),
    );
    put(
        "token_endpoint_auth_signing_alg_values_supported",
        json!(signing_algs),
    );
    put(
        "revocation_endpoint_auth_methods_supported",
        json!(config.auth_methods),
    );
    put("grant_types_supported", json!(GRANT_TYPES));
    put("response_types_supported", json!(["code"]));
    if config.pkce != PkceMode::Rejected {
        put("code_challenge_methods_supported", json!(["S256"]));
    }
    put("scopes_supported", json!(KNOWN_SCOPES));
    doc
}

/// `GET /oauth/jwks`: the public keys of [`Config::jwt_keys`](crate::Config::jwt_keys) as a
/// JWK Set (RFC 7517 §5). They verify what clients sign; the sandbox itself signs nothing.
pub(crate) fn jwks(shared: &Shared, req: &Req) -> Response {
    if req.method != Method::GET {
        return method_not_allowed(req, "GET");
    }
    let keys: Vec<Value> = shared.keys.iter().map(|key| key.jwk()).collect();
    json_response(StatusCode::OK, &json!({ "keys": keys }))
}

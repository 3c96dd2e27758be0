//! What the sandbox accepts and serves: [`Config`] and the types of its fields.

use serde::{Deserialize, Serialize};

use crate::Fault;

/// The private key of `keys/rsa.key.pem` (RSA 2048, PKCS#8): a public test key, registered
/// by default as [`TEST_RSA_KID`] for the client and as [`TEST_SERVICE_ACCOUNT_KID`] for the
/// service account.
pub const TEST_RSA_PRIVATE_KEY: &str = include_str!("../keys/rsa.key.pem");
/// The public key of [`TEST_RSA_PRIVATE_KEY`] (SPKI PEM).
pub const TEST_RSA_PUBLIC_KEY: &str = include_str!("../keys/rsa.pub.pem");
/// The private key of `keys/ec.key.pem` (P-256, PKCS#8): a public test key, registered by
/// default as [`TEST_EC_KID`] for the client.
pub const TEST_EC_PRIVATE_KEY: &str = include_str!("../keys/ec.key.pem");
/// The public key of [`TEST_EC_PRIVATE_KEY`] (SPKI PEM).
pub const TEST_EC_PUBLIC_KEY: &str = include_str!("../keys/ec.pub.pem");
/// An RSA private key (PKCS#8) that is registered nowhere: what signs "wrong key" tests.
pub const TEST_UNREGISTERED_RSA_PRIVATE_KEY: &str = include_str!("../keys/other-rsa.key.pem");
/// The kid of [`TEST_RSA_PRIVATE_KEY`] for the client `sandbox-client`.
pub const TEST_RSA_KID: &str = "sandbox-rsa";
/// The kid of [`TEST_EC_PRIVATE_KEY`] for the client `sandbox-client`.
pub const TEST_EC_KID: &str = "sandbox-ec";
/// The kid of [`TEST_RSA_PRIVATE_KEY`] for the service account (its `private_key_id`).
pub const TEST_SERVICE_ACCOUNT_KID: &str = "sandbox-sa";

/// What the sandbox accepts and serves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The OAuth 2 client id.
    pub client_id: String,
    /// The OAuth 2 client secret.
    pub client_secret: String,
    /// The user name for the `password` grant, `/login` and HTTP Basic on the API.
    pub username: String,
    /// The password for the `password` grant, `/login` and HTTP Basic on the API.
    pub password: String,
    /// The API key accepted in `X-API-Key` or the `api_key` query parameter.
    pub api_key: String,
    /// A bearer token that is always valid (never expires, never revoked).
    pub static_token: String,
    /// Lifetime of issued access tokens and sessions, in seconds.
    pub token_lifetime_s: u64,
    /// How many items `/items` serves.
    pub items: usize,
    /// How many events `/events` serves.
    pub events: usize,
    /// How many log lines `/logs` serves.
    pub logs: usize,
    /// Faults installed at start, as if added with [`Sandbox::add_fault`](crate::Sandbox::add_fault).
    pub faults: Vec<Fault>,
    /// Public keys trusted for signed JWTs: client assertions (`private_key_jwt`, issuer = the
    /// client id) and JWT-bearer grant assertions (issuer = e.g. the service account email).
    /// RSA keys verify RS256 and PS256, EC P-256 keys ES256.
    pub jwt_keys: Vec<JwtKey>,
    /// The service account of [`Sandbox::service_account_json`](crate::Sandbox::service_account_json).
    pub service_account_email: String,
    /// A refresh token that is valid from the start, bound to [`Config::client_id`].
    pub refresh_token: String,
    /// Whether each `refresh_token` grant spends the refresh token and issues a new one; when
    /// false the response has no `refresh_token` and the old one stays valid.
    pub rotate_refresh_tokens: bool,
    /// How the authorization endpoint treats PKCE (RFC 7636).
    pub pkce: PkceMode,
    /// The `issuer` of the discovery documents; `None` is the sandbox URL, e.g.
    /// `http://127.0.0.1:8080`. Set it to something else to test issuer mismatches.
    pub issuer: Option<String>,
    /// Which discovery documents are served (the others are 404).
    pub discovery: DiscoveryMode,
    /// The client authentication methods allowed at the token and revocation endpoints, and
    /// advertised as `token_endpoint_auth_methods_supported`: any of `client_secret_basic`,
    /// `client_secret_post` and `private_key_jwt`. Public clients (method `none`) are not
    /// governed by this list: they are allowed only with PKCE codes and their refresh tokens.
    pub auth_methods: Vec<String>,
    /// The RFC 8707 `resource` values the endpoints accept (others are `invalid_target`).
    pub resources: Vec<String>,
    /// Seconds added to the sandbox's clock when it checks `exp` and `iat` of signed JWTs: a
    /// skew of 600 makes a fresh 5-minute assertion look expired.
    pub clock_skew_s: i64,
    /// Text put before every access token, refresh token, session and code issued: leak
    /// tests set a marker and look for it in every output.
    pub token_prefix: String,
}

impl Default for Config {
    fn default() -> Self {
        let service_account_email = "service-account@sandbox.test".to_owned();
        Config {
            client_id: "sandbox-client".to_owned(),
            // Every character after `secret` is changed by the form-urlencoding of RFC 6749
            // §2.3.1, so a client that skips it fails to authenticate.
            client_secret: "sandbox-secret/+=%:".to_owned(),
            username: "demo".to_owned(),
            password: "demo-password".to_owned(),
            api_key: "sandbox-api-key".to_owned(),
            static_token: "sandbox-static-token".to_owned(),
            token_lifetime_s: 3600,
            items: 120,
            events: 55,
            logs: 120,
            faults: Vec::new(),
            jwt_keys: vec![
                JwtKey::new(TEST_RSA_KID, "sandbox-client", TEST_RSA_PUBLIC_KEY),
                JwtKey::new(TEST_EC_KID, "sandbox-client", TEST_EC_PUBLIC_KEY),
                JwtKey::new(
                    TEST_SERVICE_ACCOUNT_KID,
                    &service_account_email,
                    TEST_RSA_PUBLIC_KEY,
                ),
            ],
            service_account_email,
            refresh_token: "sandbox-refresh-token".to_owned(),
            rotate_refresh_tokens: true,
            pkce: PkceMode::Required,
            issuer: None,
            discovery: DiscoveryMode::Both,
            auth_methods: vec![
                "client_secret_basic".to_owned(),
                "client_secret_post".to_owned(),
                "private_key_jwt".to_owned(),
            ],
            resources: vec!["https://api.sandbox.test".to_owned()],
            clock_skew_s: 0,
            token_prefix: String::new(),
        }
    }
}

/// A public key trusted for the JWTs of one issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtKey {
    /// The key id, matched against the JWT header's `kid` when it has one.
    pub kid: String,
    /// The `iss` whose JWTs the key verifies: a client id or a service account email.
    pub issuer: String,
    /// The public key, PEM `PUBLIC KEY` (SPKI): RSA, or EC on P-256.
    pub public_pem: String,
}

impl JwtKey {
    /// A key from its parts.
    pub fn new(kid: &str, issuer: &str, public_pem: &str) -> JwtKey {
        JwtKey {
            kid: kid.to_owned(),
            issuer: issuer.to_owned(),
            public_pem: public_pem.to_owned(),
        }
    }
}

/// How the authorization endpoint treats PKCE (RFC 7636).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PkceMode {
    /// A `code_challenge` (S256) is required.
    #[default]
    Required,
    /// A `code_challenge` is accepted but not required.
    Optional,
    /// A `code_challenge` is refused (`error=invalid_request`, `PKCE is not supported`), like
    /// providers that do not implement PKCE.
    Rejected,
}

/// Which discovery documents the sandbox serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryMode {
    /// `/.well-known/oauth-authorization-server` (RFC 8414) and
    /// `/.well-known/openid-configuration`.
    #[default]
    Both,
    /// Only `/.well-known/openid-configuration`.
    OpenIdOnly,
    /// Neither.
    None,
}

/// How `GET /oauth/authorize` answers once the request is valid (it never shows a page).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizeMode {
    /// Approve: redirect with a `code` and the `state` received.
    #[default]
    Approve,
    /// Deny: redirect with `error=access_denied`.
    Deny,
    /// Approve, but redirect with a `state` other than the one received (a CSRF to detect).
    WrongState,
}

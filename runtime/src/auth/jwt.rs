//! JWTs the client signs: `private_key_jwt` client assertions (RFC 7523 §2.2, OpenID Connect
//! Core §9) and JWT bearer grant assertions (RFC 7523 §2.1), with keys from PEM text or a
//! Google service-account key file. Signing is done by `jsonwebtoken` on `ring`.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use compiler::ir::{Jwt, JwtAlgorithm};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value as Json};

use crate::error::{Error, ErrorKind, Result};
use crate::render;
use crate::secret::Secret;
use crate::value::Scope;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The fields of a Google service-account key file this runtime uses.
#[derive(Debug)]
pub struct ServiceAccount {
    /// `client_email`: the assertion's issuer.
    pub client_email: String,
    /// `private_key`: PEM.
    pub private_key: Secret,
    /// `private_key_id`: the `kid` header.
    pub private_key_id: Option<String>,
    /// `token_uri`: the token endpoint, and the assertion's audience.
    pub token_uri: Option<String>,
}

impl ServiceAccount {
    /// Reads a service-account key file's JSON. The error never quotes the file.
    pub fn parse(text: &str, what: &str) -> Result<Self> {
        let bad = |detail: &str| {
            Error::new(
                ErrorKind::Usage,
                format!(
                    "{what} is not a Google service-account key file: {detail}; download a JSON key from IAM > Service accounts > Keys"
                ),
            )
        };
        let doc: Json = serde_json::from_str(text.trim()).map_err(|e| {
            bad(&format!(
                "not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let field = |name: &str| doc.get(name).and_then(Json::as_str).map(str::to_owned);
        if let Some(t) = field("type") {
            if t != "service_account" {
                return Err(bad(&format!(
                    "its `type` is `{}`, not `service_account`",
                    crate::auth::response::clean(&t)
                )));
            }
        }
        let client_email = field("client_email").ok_or_else(|| bad("no `client_email`"))?;
        let private_key = field("private_key").ok_or_else(|| bad("no `private_key`"))?;
        Ok(ServiceAccount {
            client_email,
            private_key: Secret::new(private_key),
            private_key_id: field("private_key_id"),
            token_uri: field("token_uri"),
        })
    }
}

/// What the signer fills in when the connector leaves a claim out.
#[derive(Debug, Default)]
pub struct Defaults<'a> {
    /// `iss` (and `sub`, for a client assertion): the client id or service-account email.
    pub issuer: Option<&'a str>,
    /// `sub` when not configured; `None` leaves it out.
    pub subject: Option<&'a str>,
    /// `aud`: the token endpoint.
    pub audience: &'a str,
    /// `kid` when not configured.
    pub kid: Option<&'a str>,
}

/// Signs `jwt` with `key` (PEM): the header names the algorithm and `kid`, the claims are
/// `iss`, `sub`, `aud`, `iat`, `exp`, a unique `jti`, then the configured ones (those that
/// render empty left out). `what` names the assertion in errors.
pub fn sign(
    jwt: &Jwt,
    key: &Secret,
    scope: &Scope<'_>,
    defaults: &Defaults<'_>,
    what: &str,
) -> Result<Secret> {
    let text = |t: &Option<compiler::ir::Template>| {
        Some(render::opt_text(t, scope)).filter(|s| !s.is_empty())
    };
    let issuer = text(&jwt.issuer).or(defaults.issuer.map(str::to_owned));
    let Some(issuer) = issuer.filter(|s| !s.is_empty()) else {
        return Err(Error::new(
            ErrorKind::Usage,
            format!(
                "{what} has no issuer (`iss`): set the client id, or `issuer:` of the assertion"
            ),
        ));
    };
    let subject = text(&jwt.subject).or(defaults.subject.map(str::to_owned));
    let audience = text(&jwt.audience).unwrap_or_else(|| defaults.audience.to_owned());
    let now = unix_now();
    let mut claims = Map::new();
    claims.insert("iss".into(), Json::String(issuer));
    if let Some(s) = subject {
        claims.insert("sub".into(), Json::String(s));
    }
    claims.insert("aud".into(), Json::String(audience));
    claims.insert("iat".into(), Json::from(now));
    claims.insert("exp".into(), Json::from(now + jwt.lifetime_s));
    claims.insert("jti".into(), Json::String(jti()?));
    for (name, t) in &jwt.claims {
        let v = render::text(t, scope);
        if !v.is_empty() {
            claims.insert(name.clone(), Json::String(v));
        }
    }
    let algorithm = match jwt.algorithm {
        JwtAlgorithm::RS256 => Algorithm::RS256,
        JwtAlgorithm::PS256 => Algorithm::PS256,
        JwtAlgorithm::ES256 => Algorithm::ES256,
    };
    let mut header = Header::new(algorithm);
    header.kid = text(&jwt.kid).or(defaults.kid.map(str::to_owned));
    let encoding = encoding_key(key, jwt.algorithm, what)?;
    let token = jsonwebtoken::encode(&header, &Json::Object(claims), &encoding).map_err(|e| {
        Error::new(
            ErrorKind::Usage,
            format!("{what} could not be signed: {}", e.into_kind_text()),
        )
    })?;
    Ok(Secret::new(token))
}

/// The signing key of a PEM text. A key pasted into an environment variable often has its
/// line breaks written `\n`: those are turned back into line breaks.
fn encoding_key(key: &Secret, algorithm: JwtAlgorithm, what: &str) -> Result<EncodingKey> {
    let pem = key.expose().trim();
    let unescaped;
    let pem = if !pem.contains('\n') && pem.contains("\\n") {
        unescaped = pem.replace("\\n", "\n");
        unescaped.as_str()
    } else {
        pem
    };
    if pem.is_empty() {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("{what} has no private key: give the PEM file (`{{ file: key.pem }}`) or an environment variable"),
        ));
    }
    if !pem.starts_with("-----BEGIN ") {
        return Err(Error::new(
            ErrorKind::Usage,
            format!("{what}: the private key is not PEM (it should start with `-----BEGIN PRIVATE KEY-----`)"),
        ));
    }
    let (parsed, kind) = match algorithm {
        JwtAlgorithm::RS256 | JwtAlgorithm::PS256 => {
            (EncodingKey::from_rsa_pem(pem.as_bytes()), "an RSA")
        }
        JwtAlgorithm::ES256 => (EncodingKey::from_ec_pem(pem.as_bytes()), "a P-256 EC"),
    };
    parsed.map_err(|e| {
        Error::new(
            ErrorKind::Usage,
            format!(
                "{what}: the private key is not {kind} private key in PEM, as {} needs ({}); for ES256 the key must be PKCS#8 (`openssl pkcs8 -topk8 -nocrypt`)",
                algorithm_name(algorithm),
                e.into_kind_text()
            ),
        )
    })
}

fn algorithm_name(a: JwtAlgorithm) -> &'static str {
    match a {
        JwtAlgorithm::RS256 => "RS256",
        JwtAlgorithm::PS256 => "PS256",
        JwtAlgorithm::ES256 => "ES256",
    }
}

/// A description of a `jsonwebtoken` error that never carries key material.
trait KindText {
    fn into_kind_text(self) -> String;
}

impl KindText for jsonwebtoken::errors::Error {
    fn into_kind_text(self) -> String {
        use jsonwebtoken::errors::ErrorKind as K;
        match self.kind() {
            K::InvalidKeyFormat => "invalid key format".into(),
            K::InvalidRsaKey(_) => "invalid RSA key".into(),
            K::InvalidEcdsaKey => "invalid ECDSA key".into(),
            K::InvalidAlgorithm | K::InvalidAlgorithmName => {
                "the key does not fit the algorithm".into()
            }
            K::Crypto(_) => "signing failed".into(),
            _ => "unreadable key".into(),
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A unique `jti`: 16 random bytes, base64url.
fn jti() -> Result<String> {
    random_b64(16)
}

/// `n` random bytes from the operating system, base64url without padding.
pub fn random_b64(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        Error::new(
            ErrorKind::Usage,
            format!("no randomness from the operating system: {e}"),
        )
    })?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

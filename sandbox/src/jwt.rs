//! Signed JWTs from clients (RFC 7523): client assertions and JWT-bearer grant assertions.
//!
//! The header and claims are read by hand, so that every refusal can say precisely why;
//! `jsonwebtoken` (ring) checks the signature.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::keys::{KeyKind, RegisteredKey};

/// Seconds a JWT is still accepted after its `exp`, or before its `nbf`.
const LEEWAY_S: i64 = 5;
/// How far in the future an `iat` may be (clock skew).
const IAT_SKEW_S: i64 = 60;
/// The longest lifetime of an assertion, `exp - iat`.
pub(crate) const MAX_LIFETIME_S: i64 = 3600;

/// Why a JWT was refused; [`JwtError::describe`] words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JwtError {
    NotJwt(&'static str),
    Alg(String),
    NoIssuer,
    UnknownIssuer(String),
    UnknownKid {
        kid: String,
        iss: String,
    },
    AlgMismatch {
        alg: String,
        kid: String,
        kty: &'static str,
    },
    Signature(String),
    NoAud,
    Audience(String),
    NoExp,
    Expired,
    NotYetValid,
    NoIat,
    IatInFuture,
    TooLong,
}

impl JwtError {
    /// The error description, about `what` ("client assertion" or "assertion").
    pub(crate) fn describe(&self, what: &str) -> String {
        match self {
            JwtError::NotJwt(why) => format!("The {what} is not a JWT: {why}"),
            JwtError::Alg(alg) => {
                format!("The {what}'s alg `{alg}` is not accepted; use RS256, PS256 or ES256")
            }
            JwtError::NoIssuer => format!("The {what} has no iss"),
            JwtError::UnknownIssuer(iss) => {
                format!("The {what}'s issuer `{iss}` is unknown: no key is registered for it")
            }
            JwtError::UnknownKid { kid, iss } => {
                format!("The {what}'s kid `{kid}` is not a key registered for `{iss}`")
            }
            JwtError::AlgMismatch { alg, kid, kty } => {
                format!("The {what}'s alg `{alg}` does not fit the {kty} key `{kid}`")
            }
            JwtError::Signature(iss) => format!(
                "The {what}'s signature does not verify with the keys registered for `{iss}`"
            ),
            JwtError::NoAud => format!("The {what} has no aud"),
            JwtError::Audience(aud) => {
                format!("The {what}'s aud `{aud}` is not this token endpoint")
            }
            JwtError::NoExp => format!("The {what} has no exp"),
            JwtError::Expired => format!("The {what} has expired"),
            JwtError::NotYetValid => format!("The {what} is not valid yet: its nbf is ahead"),
            JwtError::NoIat => format!("The {what} has no iat"),
            JwtError::IatInFuture => format!("The {what}'s iat is in the future"),
            JwtError::TooLong => format!(
                "The {what} is valid for more than {MAX_LIFETIME_S} s (exp - iat); the limit is \
                 an hour"
            ),
        }
    }
}

/// A JWT read but not verified yet.
pub(crate) struct Jwt<'a> {
    alg: Algorithm,
    alg_name: String,
    kid: Option<String>,
    claims: Map<String, Value>,
    signing_input: &'a str,
    signature: &'a str,
}

/// What [`Jwt::verify`] checks besides the signature.
pub(crate) struct Rules<'a> {
    /// The accepted `aud` values (one of them must be in the claim).
    pub(crate) audiences: &'a [String],
    /// Whether `iat` is required (it is checked whenever present).
    pub(crate) require_iat: bool,
    /// Now, in seconds since the epoch.
    pub(crate) now: i64,
}

impl<'a> Jwt<'a> {
    /// Reads the header and the claims of a compact JWS.
    pub(crate) fn parse(token: &'a str) -> Result<Jwt<'a>, JwtError> {
        let token = token.trim();
        let (signing_input, signature) = token
            .rsplit_once('.')
            .ok_or(JwtError::NotJwt("it does not have three parts"))?;
        let (header, claims) = signing_input
            .split_once('.')
            .filter(|(_, claims)| !claims.contains('.'))
            .ok_or(JwtError::NotJwt("it does not have three parts"))?;
        let header = json_object(header).ok_or(JwtError::NotJwt(
            "its header is not a base64url JSON object",
        ))?;
        let claims = json_object(claims).ok_or(JwtError::NotJwt(
            "its claims are not a base64url JSON object",
        ))?;
        let alg_name = match header.get("alg") {
            Some(Value::String(alg)) => alg.clone(),
            _ => return Err(JwtError::NotJwt("its header has no alg")),
        };
        let alg = match alg_name.as_str() {
            "RS256" => Algorithm::RS256,
            "PS256" => Algorithm::PS256,
            "ES256" => Algorithm::ES256,
            _ => return Err(JwtError::Alg(alg_name)),
        };
        let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
        Ok(Jwt {
            alg,
            alg_name,
            kid,
            claims,
            signing_input,
            signature,
        })
    }

    /// A string claim.
    pub(crate) fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// The `iss` claim.
    pub(crate) fn issuer(&self) -> Result<&str, JwtError> {
        self.claim("iss")
            .filter(|iss| !iss.is_empty())
            .ok_or(JwtError::NoIssuer)
    }

    /// A numeric date claim, in whole seconds.
    pub(crate) fn date(&self, name: &str) -> Option<i64> {
        let value = self.claims.get(name)?;
        value
            .as_i64()
            .or_else(|| value.as_f64().map(|f| f.floor() as i64))
    }

    /// Checks the signature with the keys `keys` (those of the issuer), then the audience
    /// and the dates.
    pub(crate) fn verify(
        &self,
        keys: &[&RegisteredKey],
        rules: &Rules<'_>,
    ) -> Result<(), JwtError> {
        self.verify_signature(keys)?;
        self.check_audience(rules.audiences)?;
        self.check_dates(rules)
    }

    fn verify_signature(&self, keys: &[&RegisteredKey]) -> Result<(), JwtError> {
        let iss = self.issuer()?;
        if keys.is_empty() {
            return Err(JwtError::UnknownIssuer(iss.to_owned()));
        }
        let fits = |key: &RegisteredKey| match key.kind {
            KeyKind::Rsa { .. } => matches!(self.alg, Algorithm::RS256 | Algorithm::PS256),
            KeyKind::Ec { .. } => self.alg == Algorithm::ES256,
        };
        let candidates: Vec<&RegisteredKey> = match &self.kid {
            Some(kid) => {
                let key = keys.iter().find(|key| key.kid == *kid).ok_or_else(|| {
                    JwtError::UnknownKid {
                        kid: kid.clone(),
                        iss: iss.to_owned(),
                    }
                })?;
                if !fits(key) {
                    return Err(JwtError::AlgMismatch {
                        alg: self.alg_name.clone(),
                        kid: kid.clone(),
                        kty: key.kind.kty(),
                    });
                }
                vec![key]
            }
            None => keys.iter().copied().filter(|key| fits(key)).collect(),
        };
        let verified = candidates.iter().any(|key| {
            jsonwebtoken::crypto::verify(
                self.signature,
                self.signing_input.as_bytes(),
                &key.decoding,
                self.alg,
            )
            .unwrap_or(false)
        });
        if verified {
            Ok(())
        } else {
            Err(JwtError::Signature(iss.to_owned()))
        }
    }

    fn check_audience(&self, audiences: &[String]) -> Result<(), JwtError> {
        let accepted = |aud: &str| audiences.iter().any(|a| a == aud);
        match self.claims.get("aud") {
            None | Some(Value::Null) => Err(JwtError::NoAud),
            Some(Value::String(aud)) if accepted(aud) => Ok(()),
            Some(Value::String(aud)) => Err(JwtError::Audience(aud.clone())),
            Some(Value::Array(list)) => {
                let auds: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                if auds.iter().any(|aud| accepted(aud)) {
                    Ok(())
                } else {
                    Err(JwtError::Audience(auds.join(" ")))
                }
            }
            Some(other) => Err(JwtError::Audience(other.to_string())),
        }
    }

    fn check_dates(&self, rules: &Rules<'_>) -> Result<(), JwtError> {
        let now = rules.now;
        let exp = self.date("exp").ok_or(JwtError::NoExp)?;
        if now >= exp.saturating_add(LEEWAY_S) {
            return Err(JwtError::Expired);
        }
        if self
            .date("nbf")
            .is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_S))
        {
            return Err(JwtError::NotYetValid);
        }
        let iat = self.date("iat");
        if rules.require_iat && iat.is_none() {
            return Err(JwtError::NoIat);
        }
        if iat.is_some_and(|iat| iat > now.saturating_add(IAT_SKEW_S)) {
            return Err(JwtError::IatInFuture);
        }
        let start = iat.unwrap_or(now);
        if exp.saturating_sub(start) > MAX_LIFETIME_S {
            return Err(JwtError::TooLong);
        }
        Ok(())
    }
}

/// A base64url (unpadded, or padded) JSON object.
fn json_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = BASE64URL.decode(part.trim_end_matches('=')).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Seconds since the epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{JwtKey, TEST_EC_PRIVATE_KEY, TEST_RSA_PRIVATE_KEY, TEST_RSA_PUBLIC_KEY};
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    fn rsa_key() -> RegisteredKey {
        RegisteredKey::parse(&JwtKey::new("k1", "me", TEST_RSA_PUBLIC_KEY)).unwrap()
    }

    fn sign(alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        let key = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(TEST_EC_PRIVATE_KEY.as_bytes()),
            _ => EncodingKey::from_rsa_pem(TEST_RSA_PRIVATE_KEY.as_bytes()),
        };
        encode(&header, claims, &key.unwrap()).unwrap()
    }

    fn check(token: &str, now: i64) -> Result<(), JwtError> {
        let key = rsa_key();
        let audiences = ["aud1".to_owned()];
        let rules = Rules {
            audiences: &audiences,
            require_iat: true,
            now,
        };
        Jwt::parse(token)?.verify(&[&key], &rules)
    }

    #[test]
    fn verifies_and_explains() {
        let now = 1_000_000;
        let claims = json!({"iss": "me", "aud": ["x", "aud1"], "exp": now + 60, "iat": now});
        for alg in [Algorithm::RS256, Algorithm::PS256] {
            assert_eq!(check(&sign(alg, None, &claims), now), Ok(()));
            assert_eq!(check(&sign(alg, Some("k1"), &claims), now), Ok(()));
        }
        let token = sign(Algorithm::RS256, Some("k2"), &claims);
        assert!(matches!(
            check(&token, now),
            Err(JwtError::UnknownKid { .. })
        ));
        let token = sign(Algorithm::ES256, Some("k1"), &claims);
        assert!(matches!(
            check(&token, now),
            Err(JwtError::AlgMismatch { .. })
        ));
        let token = sign(Algorithm::ES256, None, &claims);
        assert_eq!(check(&token, now), Err(JwtError::Signature("me".into())));
        let token = sign(Algorithm::RS256, None, &claims);
        assert_eq!(check(&token, now + 65), Err(JwtError::Expired));
        assert_eq!(check(&token, now - 61), Err(JwtError::IatInFuture));
        let token = sign(Algorithm::RS384, None, &claims);
        assert_eq!(check(&token, now), Err(JwtError::Alg("RS384".into())));
        let long = json!({"iss": "me", "aud": "aud1", "exp": now + 3601, "iat": now});
        assert_eq!(
            check(&sign(Algorithm::RS256, None, &long), now),
            Err(JwtError::TooLong)
        );
        let no_iat = json!({"iss": "me", "aud": "aud1", "exp": now + 60});
        assert_eq!(
            check(&sign(Algorithm::RS256, None, &no_iat), now),
            Err(JwtError::NoIat)
        );
        let wrong_aud = json!({"iss": "me", "aud": "nope", "exp": now + 60, "iat": now});
        assert_eq!(
            check(&sign(Algorithm::RS256, None, &wrong_aud), now),
            Err(JwtError::Audience("nope".into()))
        );
        assert!(matches!(check("a.b", now), Err(JwtError::NotJwt(_))));
        assert!(matches!(check("a.b.c.d", now), Err(JwtError::NotJwt(_))));
    }

    #[test]
    fn a_tampered_token_does_not_verify() {
        let now = 1_000_000;
        let claims = json!({"iss": "me", "aud": "aud1", "exp": now + 60, "iat": now});
        let token = sign(Algorithm::RS256, None, &claims);
        let forged = json!({"iss": "me", "aud": "aud1", "exp": now + 600, "iat": now});
        let forged = BASE64URL.encode(forged.to_string());
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = &forged;
        assert_eq!(
            check(&parts.join("."), now),
            Err(JwtError::Signature("me".into()))
        );
    }
}

//! The public keys of [`Config::jwt_keys`](crate::Config::jwt_keys), parsed once at start: for
//! verifying signatures and for the JWKS.

use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use base64::Engine as _;
use jsonwebtoken::DecodingKey;
use serde_json::{json, Value};

use crate::JwtKey;

/// DER of the OID rsaEncryption (1.2.840.113549.1.1.1).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// DER of the OID id-ecPublicKey (1.2.840.10045.2.1).
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER of the OID prime256v1 (1.2.840.10045.3.1.7).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OBJECT_ID: u8 = 0x06;

/// The kind of a public key, with what a JWK needs.
#[derive(Clone)]
pub(crate) enum KeyKind {
    /// RSA: the modulus and the exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// EC on P-256: the coordinates, 32 bytes each.
    Ec { x: Vec<u8>, y: Vec<u8> },
}

impl KeyKind {
    /// `RSA` or `EC`, as in a JWK's `kty`.
    pub(crate) fn kty(&self) -> &'static str {
        match self {
            KeyKind::Rsa { .. } => "RSA",
            KeyKind::Ec { .. } => "EC",
        }
    }
}

/// A registered public key, ready to verify.
#[derive(Clone)]
pub(crate) struct RegisteredKey {
    pub(crate) kid: String,
    pub(crate) issuer: String,
    pub(crate) kind: KeyKind,
    pub(crate) decoding: DecodingKey,
}

impl RegisteredKey {
    /// Parses a configured key.
    pub(crate) fn parse(key: &JwtKey) -> Result<RegisteredKey, String> {
        let der = pem_public_key(&key.public_pem)?;
        let kind = spki(&der).ok_or("it is not an RSA or P-256 SPKI public key")?;
        let decoding = match &kind {
            KeyKind::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
            KeyKind::Ec { x, y } => {
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                DecodingKey::from_ec_der(&point)
            }
        };
        Ok(RegisteredKey {
            kid: key.kid.clone(),
            issuer: key.issuer.clone(),
            kind,
            decoding,
        })
    }

    /// The key as a JWK (RFC 7517).
    pub(crate) fn jwk(&self) -> Value {
        match &self.kind {
            KeyKind::Rsa { n, e } => json!({
                "kty": "RSA",
                "kid": self.kid,
                "use": "sig",
                "n": BASE64URL.encode(n),
                "e": BASE64URL.encode(e),
            }),
            KeyKind::Ec { x, y } => json!({
                "kty": "EC",
                "kid": self.kid,
                "use": "sig",
                "alg": "ES256",
                "crv": "P-256",
                "x": BASE64URL.encode(x),
                "y": BASE64URL.encode(y),
            }),
        }
    }
}

/// Parses every configured key; the error names the first bad one.
pub(crate) fn parse_all(keys: &[JwtKey]) -> Result<Vec<RegisteredKey>, String> {
    keys.iter()
        .map(|key| {
            RegisteredKey::parse(key).map_err(|message| {
                format!(
                    "the JWT key `{}` of `{}` is not usable: {message}",
                    key.kid, key.issuer
                )
            })
        })
        .collect()
}

/// The DER inside a PEM `PUBLIC KEY`.
fn pem_public_key(pem: &str) -> Result<Vec<u8>, String> {
    const BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
    const END: &str = "-----END PUBLIC KEY-----";
    let start = pem
        .find(BEGIN)
        .ok_or("it has no `-----BEGIN PUBLIC KEY-----` line")?
        + BEGIN.len();
    let end = pem[start..]
        .find(END)
        .ok_or("it has no `-----END PUBLIC KEY-----` line")?
        + start;
    let text: String = pem[start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    BASE64
        .decode(text)
        .map_err(|e| format!("its base64 is broken: {e}"))
}

/// Reads one DER element: its tag, its content and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// Reads a DER element that must have `tag`.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, content, rest) = tlv(input)?;
    (found == tag).then_some((content, rest))
}

/// Parses a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) of an RSA or P-256 key.
fn spki(der: &[u8]) -> Option<KeyKind> {
    let (info, _) = expect(der, SEQUENCE)?;
    let (algorithm, rest) = expect(info, SEQUENCE)?;
    let (bits, _) = expect(rest, BIT_STRING)?;
    let (&unused, key) = bits.split_first()?;
    if unused != 0 {
        return None;
    }
    let (oid, params) = expect(algorithm, OBJECT_ID)?;
    if oid == OID_RSA {
        let (fields, _) = expect(key, SEQUENCE)?;
        let (n, rest) = expect(fields, INTEGER)?;
        let (e, _) = expect(rest, INTEGER)?;
        return Some(KeyKind::Rsa {
            n: unsigned(n),
            e: unsigned(e),
        });
    }
    if oid == OID_EC && expect(params, OBJECT_ID)?.0 == OID_P256 {
        let point = key.strip_prefix(&[0x04])?;
        if point.len() != 64 {
            return None;
        }
        let (x, y) = point.split_at(32);
        return Some(KeyKind::Ec {
            x: x.to_vec(),
            y: y.to_vec(),
        });
    }
    None
}

/// A DER INTEGER's bytes without the sign byte.
fn unsigned(integer: &[u8]) -> Vec<u8> {
    let start = integer
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(integer.len());
    integer[start..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{TEST_EC_PUBLIC_KEY, TEST_RSA_PUBLIC_KEY};

    #[test]
    fn test_keys_parse() {
        let rsa = RegisteredKey::parse(&JwtKey::new("r", "i", TEST_RSA_PUBLIC_KEY)).unwrap();
        let KeyKind::Rsa { n, e } = &rsa.kind else {
            panic!("not RSA")
        };
        assert_eq!(n.len(), 256);
        assert_eq!(e, &[1, 0, 1]);
        assert_eq!(rsa.jwk()["kty"], "RSA");
        let ec = RegisteredKey::parse(&JwtKey::new("e", "i", TEST_EC_PUBLIC_KEY)).unwrap();
        assert_eq!(ec.kind.kty(), "EC");
        assert_eq!(ec.jwk()["crv"], "P-256");
    }

    #[test]
    fn bad_keys_are_refused() {
        for pem in [
            "",
            "-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----",
            crate::TEST_RSA_PRIVATE_KEY,
        ] {
            assert!(parse_all(&[JwtKey::new("k", "i", pem)]).is_err(), "{pem}");
        }
    }
}

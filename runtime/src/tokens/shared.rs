//! Credentials shared across processes through Redis.
//!
//! - `connector:token:KEY` holds a key's credentials, with a TTL that ends before they expire.
//!   With an encryption key they are sealed with AES-256-GCM (a random 96-bit nonce each time,
//!   the Redis key as associated data); without one they are stored as they are, and anyone who
//!   can read Redis can use them as bearer credentials.
//! - `connector:lock:KEY` is a lease (`SET NX PX`, 10 s by default): the process that holds it
//!   fetches, the others read its result or keep using credentials that are still valid. It is
//!   released (compare and delete) on success and on failure, and expires if its holder dies.
//! - Every operation has a timeout. When Redis is down or slow, callers fall back to the
//!   in-process cache and a warning is logged (at most every 30 s); Redis is tried again a
//!   second later.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::Aes256Gcm;
use base64::Engine as _;

use super::{timed_fetch, Fetcher};
use crate::auth::Credentials;
use crate::error::{Error, ErrorKind, Result};
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::value::{Value, Values};

/// Compare-and-delete: releases a lease only if this process still holds it.
const RELEASE: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Settings of the shared cache.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long a lease lasts if its holder never releases it.
    pub lease: Duration,
    /// Timeout of each Redis operation.
    pub timeout: Duration,
    /// Prefix of every Redis key.
    pub prefix: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lease: Duration::from_secs(10),
            timeout: Duration::from_millis(250),
            prefix: "connector:".to_owned(),
        }
    }
}

/// A 256-bit key for AES-256-GCM.
#[derive(Clone)]
pub struct EncryptionKey([u8; 32]);

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionKey(<redacted>)")
    }
}

impl EncryptionKey {
    /// Reads a key written as 64 hexadecimal characters or as base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
            (0..32)
                .map(|i| u8::from_str_radix(&t[2 * i..2 * i + 2], 16).unwrap_or(0))
                .collect::<Vec<u8>>()
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .unwrap_or_default()
        };
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            Error::new(
                ErrorKind::Usage,
                "the token cache key must be 32 bytes, written as 64 hexadecimal characters or in base64 (e.g. `openssl rand -hex 32`)",
            )
        })?;
        Ok(EncryptionKey(key))
    }
}

/// What a read of the shared cache found.
enum Found {
    Credentials(Box<Credentials>),
    Missing,
    /// Sealed with a key this process does not have (or damaged): never overwritten.
    Unreadable,
}

#[derive(Default)]
struct Health {
    down_until: Option<Instant>,
    last_warning: Option<Instant>,
    down: bool,
}

/// The Redis side of the token cache.
pub struct Shared {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<redis::aio::ConnectionManager>>,
    shown_url: String,
    cipher: Option<Arc<Aes256Gcm>>,
    options: Options,
    health: Mutex<Health>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("url", &self.shown_url)
            .field("encrypted", &self.cipher.is_some())
            .finish()
    }
}

impl Shared {
    /// A shared cache at `url` (`redis://HOST:PORT/DB`). Redis need not be up yet: it is
    /// connected to on first use, and again after every failure.
    pub fn new(url: &str, key: Option<EncryptionKey>, options: Options) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|e| {
            Error::new(
                ErrorKind::Usage,
                format!("`{}` is not a Redis URL: {e}", shown(url)),
            )
        })?;
        let cipher = key.map(|k| {
            Arc::new(Aes256Gcm::new_from_slice(&k.0).expect("a 32-byte key fits AES-256"))
        });
        Ok(Shared {
            client,
            conn: tokio::sync::Mutex::new(None),
            shown_url: shown(url),
            cipher,
            options,
            health: Mutex::new(Health::default()),
        })
    }

    /// Whether tokens are sealed.
    pub fn encrypted(&self) -> bool {
        self.cipher.is_some()
    }

    /// The Redis key of a cache key's credentials.
    pub fn token_key(&self, key: &str) -> String {
        format!("{}token:{key}", self.options.prefix)
    }

    fn lock_key(&self, key: &str) -> String {
        format!("{}lock:{key}", self.options.prefix)
    }

    /// Whether Redis may be tried now (not within a second of a failure).
    fn available(&self) -> bool {
        let h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        h.down_until.is_none_or(|t| Instant::now() >= t)
    }

    fn failed(&self, what: &str, e: &str, metrics: &Metrics) {
        metrics.shared_errors.fetch_add(1, Ordering::Relaxed);
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        h.down_until = Some(now + Duration::from_secs(1));
        h.down = true;
        if h.last_warning
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(30))
        {
            h.last_warning = Some(now);
            tracing::warn!(
                "the shared token cache at {} is unavailable ({what}: {e}); using the in-process cache",
                self.shown_url
            );
        }
    }

    fn succeeded(&self) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if h.down {
            h.down = false;
            h.down_until = None;
            tracing::info!("the shared token cache at {} is back", self.shown_url);
        }
    }

    /// Runs one Redis command with the timeout, connecting first when needed.
    async fn run<T: redis::FromRedisValue>(
        &self,
        what: &str,
        cmd: &redis::Cmd,
        metrics: &Metrics,
    ) -> Option<T> {
        let mut conn = self.connection(metrics).await?;
        match tokio::time::timeout(self.options.timeout, cmd.query_async::<T>(&mut conn)).await {
            Ok(Ok(v)) => {
                self.succeeded();
                Some(v)
            }
            Ok(Err(e)) => {
                self.failed(what, &e.to_string(), metrics);
                None
            }
            Err(_) => {
                self.failed(what, "timed out", metrics);
                None
            }
        }
    }

    async fn connection(&self, metrics: &Metrics) -> Option<redis::aio::ConnectionManager> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Some(c.clone());
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.options.timeout))
            .set_response_timeout(Some(self.options.timeout))
            .set_number_of_retries(1);
        match tokio::time::timeout(
            self.options.timeout * 2,
            redis::aio::ConnectionManager::new_with_config(self.client.clone(), config),
        )
        .await
        {
            Ok(Ok(c)) => {
                *guard = Some(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                self.failed("connect", &e.to_string(), metrics);
                None
            }
            Err(_) => {
                self.failed("connect", "timed out", metrics);
                None
            }
        }
    }

    /// The credentials of `key`: read from Redis when another process fetched fresh ones,
    /// else fetched by the one process that holds the lease (this one, or another whose
    /// result is awaited). `Ok(None)` when another process is fetching and `have_valid`
    /// says the caller can go on with what it has. Falls back to `fetcher` alone when Redis
    /// cannot be used.
    pub async fn get_or_fetch(
        &self,
        key: &str,
        fetcher: &Arc<dyn Fetcher>,
        force: bool,
        have_valid: bool,
        metrics: &Metrics,
    ) -> Result<Option<Credentials>> {
        if !self.available() {
            return timed_fetch(fetcher, metrics).await.map(Some);
        }
        let mut writable = true;
        if !force {
            match self.read(key, metrics).await {
                Some(Found::Credentials(c)) if c.fresh(Instant::now()) => {
                    metrics.shared_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(*c));
                }
                Some(Found::Unreadable) => writable = false,
                Some(_) => {}
                None => return timed_fetch(fetcher, metrics).await.map(Some),
            }
        }
        let deadline = Instant::now() + self.options.lease * 2;
        let holder = crate::auth::new_id();
        let mut wait = Duration::from_millis(10);
        loop {
            let mut set = redis::cmd("SET");
            set.arg(self.lock_key(key))
                .arg(&holder)
                .arg("NX")
                .arg("PX")
                .arg(self.options.lease.as_millis() as u64);
            let Some(acquired) = self.run::<Option<String>>("lock", &set, metrics).await else {
                return timed_fetch(fetcher, metrics).await.map(Some);
            };
            if acquired.is_some() {
                let result = self
                    .fetch_holding(key, fetcher, force, writable, metrics)
                    .await;
                let mut release = redis::cmd("EVAL");
                release
                    .arg(RELEASE)
                    .arg(1)
                    .arg(self.lock_key(key))
                    .arg(&holder);
                let _ = self.run::<i64>("unlock", &release, metrics).await;
                return result.map(Some);
            }
            if have_valid {
                return Ok(None);
            }
            // Another process holds the lease: wait for its result.
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(100));
            match self.read(key, metrics).await {
                Some(Found::Credentials(c)) if c.fresh(Instant::now()) => {
                    metrics.shared_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(*c));
                }
                None => return timed_fetch(fetcher, metrics).await.map(Some),
                _ => {}
            }
            if Instant::now() >= deadline {
                tracing::warn!("the token cache lease is held too long; fetching without it");
                return timed_fetch(fetcher, metrics).await.map(Some);
            }
        }
    }

    /// Holding the lease: reads once more (another process may have just finished), else
    /// fetches and stores.
    async fn fetch_holding(
        &self,
        key: &str,
        fetcher: &Arc<dyn Fetcher>,
        force: bool,
        writable: bool,
        metrics: &Metrics,
    ) -> Result<Credentials> {
        if !force {
            if let Some(Found::Credentials(c)) = self.read(key, metrics).await {
                if c.fresh(Instant::now()) {
                    metrics.shared_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(*c);
                }
            }
        }
        let c = timed_fetch(fetcher, metrics).await?;
        if writable {
            self.write(key, &c, metrics).await;
        }
        Ok(c)
    }

    /// Reads a key's credentials; `None` when Redis failed.
    async fn read(&self, key: &str, metrics: &Metrics) -> Option<Found> {
        let mut get = redis::cmd("GET");
        get.arg(self.token_key(key));
        let raw = self.run::<Option<Vec<u8>>>("read", &get, metrics).await?;
        let Some(raw) = raw else {
            return Some(Found::Missing);
        };
        Some(match self.open(key, &raw) {
            Some(c) => Found::Credentials(Box::new(c)),
            None => {
                tracing::warn!(
                    "the shared token cache holds credentials this process cannot read (sealed with another key, or none configured); using its own"
                );
                Found::Unreadable
            }
        })
    }

    /// Stores credentials with a TTL that ends before they expire.
    async fn write(&self, key: &str, c: &Credentials, metrics: &Metrics) {
        let Some(expires) = c.expires_at else {
            return;
        };
        let left = expires.saturating_duration_since(Instant::now());
        let safety = (left / 10).min(Duration::from_secs(5));
        let ttl = left.saturating_sub(safety);
        if ttl < Duration::from_millis(10) {
            return;
        }
        let Some(value) = self.seal(key, c) else {
            return;
        };
        let mut set = redis::cmd("SET");
        set.arg(self.token_key(key))
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis() as u64);
        let _ = self.run::<()>("write", &set, metrics).await;
    }

    /// Drops a key's credentials if they are still the ones with `id`.
    pub async fn invalidate(&self, key: &str, id: &str, metrics: &Metrics) {
        if !self.available() {
            return;
        }
        if let Some(Found::Credentials(c)) = self.read(key, metrics).await {
            if c.id == id {
                let mut del = redis::cmd("DEL");
                del.arg(self.token_key(key));
                let _ = self.run::<i64>("invalidate", &del, metrics).await;
            }
        }
    }

    fn seal(&self, key: &str, c: &Credentials) -> Option<Vec<u8>> {
        let json = serde_json::to_vec(&to_record(c)).ok()?;
        self.seal_bytes(&self.token_key(key), &json)
    }

    fn open(&self, key: &str, raw: &[u8]) -> Option<Credentials> {
        let json = self.open_bytes(&self.token_key(key), raw)?;
        from_record(serde_json::from_slice(&json).ok()?)
    }

    /// `v0:` + the bytes, or `v1:` + base64(nonce ‖ AES-256-GCM ciphertext), bound to the
    /// Redis key `aad` so a sealed value cannot be moved to another key.
    fn seal_bytes(&self, aad: &str, plain: &[u8]) -> Option<Vec<u8>> {
        match &self.cipher {
            None => Some([b"v0:".as_slice(), plain].concat()),
            Some(cipher) => {
                let mut nonce = [0u8; 12];
                getrandom::getrandom(&mut nonce).ok()?;
                let sealed = cipher
                    .encrypt(
                        (&nonce).into(),
                        Payload {
                            msg: plain,
                            aad: aad.as_bytes(),
                        },
                    )
                    .ok()?;
                let body = base64::engine::general_purpose::STANDARD
                    .encode([nonce.as_slice(), &sealed].concat());
                Some(format!("v1:{body}").into_bytes())
            }
        }
    }

    /// The bytes [`Shared::seal_bytes`] sealed; `None` when unreadable with this key.
    fn open_bytes(&self, aad: &str, raw: &[u8]) -> Option<Vec<u8>> {
        if let Some(plain) = raw.strip_prefix(b"v0:") {
            return Some(plain.to_vec());
        }
        let sealed = raw.strip_prefix(b"v1:")?;
        let cipher = self.cipher.as_ref()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .ok()?;
        if bytes.len() < 12 {
            return None;
        }
        let (nonce, body) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        cipher
            .decrypt(
                (&nonce).into(),
                Payload {
                    msg: body,
                    aad: aad.as_bytes(),
                },
            )
            .ok()
    }

    fn state_key(&self, key: &str) -> String {
        format!("{}state:{key}", self.options.prefix)
    }

    /// The grant state stored for `key` (a refresh token record, sealed like tokens):
    /// `None` when Redis cannot be used, `Some(None)` when there is none or it cannot be read
    /// with this process's key.
    pub async fn read_state(&self, key: &str, metrics: &Metrics) -> Option<Option<Vec<u8>>> {
        if !self.available() {
            return None;
        }
        let k = self.state_key(key);
        let mut get = redis::cmd("GET");
        get.arg(&k);
        let raw = self
            .run::<Option<Vec<u8>>>("read state", &get, metrics)
            .await?;
        Some(raw.and_then(|r| self.open_bytes(&k, &r)))
    }

    /// Stores the grant state of `key` (no TTL: a refresh token outlives access tokens).
    /// Whether it was stored.
    pub async fn write_state(&self, key: &str, plain: &[u8], metrics: &Metrics) -> bool {
        if !self.available() {
            return false;
        }
        let k = self.state_key(key);
        let Some(value) = self.seal_bytes(&k, plain) else {
            return false;
        };
        let mut set = redis::cmd("SET");
        set.arg(&k).arg(value);
        self.run::<()>("write state", &set, metrics).await.is_some()
    }

    /// Drops the grant state and the cached credentials of `key`. Whether Redis answered.
    pub async fn forget(&self, key: &str, metrics: &Metrics) -> bool {
        if !self.available() {
            return false;
        }
        let mut del = redis::cmd("DEL");
        del.arg(self.state_key(key)).arg(self.token_key(key));
        self.run::<i64>("forget", &del, metrics).await.is_some()
    }

    /// The credentials of `key` cached in Redis, if any and readable.
    pub async fn cached(&self, key: &str, metrics: &Metrics) -> Option<Credentials> {
        match self.read(key, metrics).await? {
            Found::Credentials(c) => Some(*c),
            _ => None,
        }
    }
}

/// The URL without its password.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("redacted"));
            }
            u.to_string()
        }
        Err(_) => "<the Redis URL>".to_owned(),
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// An instant as Unix milliseconds.
fn to_unix(t: Instant) -> u64 {
    let now = Instant::now();
    let base = unix_ms();
    if t >= now {
        base + t.duration_since(now).as_millis() as u64
    } else {
        base.saturating_sub(now.duration_since(t).as_millis() as u64)
    }
}

/// Unix milliseconds as an instant.
fn from_unix(ms: u64) -> Instant {
    let now = Instant::now();
    let base = unix_ms();
    if ms >= base {
        now + Duration::from_millis(ms - base)
    } else {
        now.checked_sub(Duration::from_millis(base - ms))
            .unwrap_or(now)
    }
}

fn to_record(c: &Credentials) -> serde_json::Value {
    let fields: serde_json::Map<String, serde_json::Value> = c
        .fields
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                match v {
                    Value::Plain(p) => serde_json::json!({ "p": p }),
                    Value::Secret(s) => serde_json::json!({ "s": s.expose() }),
                },
            )
        })
        .collect();
    serde_json::json!({
        "id": c.id,
        "fields": fields,
        "lifetime_ms": c.lifetime.map(|l| l.as_millis() as u64),
        "refresh_at": c.refresh_at.map(to_unix),
        "expires_at": c.expires_at.map(to_unix),
        "warnings": c.warnings,
    })
}

fn from_record(r: serde_json::Value) -> Option<Credentials> {
    let mut fields = Values::default();
    for (k, v) in r.get("fields")?.as_object()? {
        let value = if let Some(p) = v.get("p") {
            Value::Plain(p.clone())
        } else {
            Value::Secret(Secret::new(v.get("s")?.as_str()?))
        };
        fields.insert(k.clone(), value);
    }
    let expires_at = r.get("expires_at").and_then(|v| v.as_u64()).map(from_unix);
    Some(Credentials {
        id: r.get("id")?.as_str()?.to_owned(),
        fields,
        obtained: Instant::now(),
        lifetime: r
            .get("lifetime_ms")
            .and_then(|v| v.as_u64())
            .map(Duration::from_millis),
        refresh_at: r.get("refresh_at").and_then(|v| v.as_u64()).map(from_unix),
        expires_at,
        requests: 0,
        warnings: r
            .get("warnings")
            .and_then(|w| serde_json::from_value(w.clone()).ok())
            .unwrap_or_default(),
        response: None,
        basic: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_hex_or_base64() {
        let hex = "00".repeat(31) + "ff";
        assert_eq!(EncryptionKey::parse(&hex).unwrap().0[31], 0xff);
        let b64 = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(EncryptionKey::parse(&b64).unwrap().0, [7u8; 32]);
        assert!(EncryptionKey::parse("short").is_err());
    }

    #[test]
    fn sealed_records_open_only_with_the_key() {
        let k = EncryptionKey::parse(&"11".repeat(32)).unwrap();
        let s = Shared::new("redis://127.0.0.1:1/0", Some(k), Options::default()).unwrap();
        let mut fields = Values::default();
        fields.insert(
            "access_token".into(),
            Value::Secret(Secret::new("tok-very-secret")),
        );
        let c = Credentials {
            id: "abc".into(),
            fields,
            obtained: Instant::now(),
            lifetime: Some(Duration::from_secs(60)),
            refresh_at: Some(Instant::now() + Duration::from_secs(30)),
            expires_at: Some(Instant::now() + Duration::from_secs(60)),
            warnings: vec![],
            requests: 0,
            response: None,
            basic: None,
        };
        let sealed = s.seal("k", &c).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("tok-very-secret"));
        let back = s.open("k", &sealed).unwrap();
        assert_eq!(back.id, "abc");
        assert!(
            s.open("other-key", &sealed).is_none(),
            "bound to its Redis key"
        );
        let other = EncryptionKey::parse(&"22".repeat(32)).unwrap();
        let s2 = Shared::new("redis://127.0.0.1:1/0", Some(other), Options::default()).unwrap();
        assert!(s2.open("k", &sealed).is_none());
        let plain = Shared::new("redis://127.0.0.1:1/0", None, Options::default()).unwrap();
        assert!(plain.open("k", &sealed).is_none());
    }
}

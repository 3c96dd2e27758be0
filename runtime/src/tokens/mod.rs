//! The token cache: one set of credentials per key, fetched once per expiry however many
//! callers ask, refreshed before it expires, optionally shared across processes through Redis
//! ([`shared`]).
//!
//! A key is (connector, auth method, token URL, client id, scope, resource, and every other
//! non-secret value of the method), hashed. For each key:
//!
//! - **fresh** credentials (before their refresh point) are returned at once;
//! - **due** credentials (past the refresh point, not expired) are returned at once to every
//!   caller, and one refresh starts in the background; a failed refresh leaves them in use;
//! - **missing or expired** credentials make callers wait on one lock: the first fetches, the
//!   others find its result when they get the lock;
//! - a **failure** is remembered for a cooldown (default 5 s): callers in that time get the same
//!   error (or the still-valid credentials) instead of hammering the token endpoint.
//!
//! [`TokenCache::spawn_refresher`] refreshes the credentials of keys used in the last ten
//! minutes when they fall due, so that callers of a long-running service never wait.

pub mod shared;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::auth::Credentials;
use crate::error::Result;
use crate::metrics::Metrics;

/// A boxed future, for [`Fetcher`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Something that obtains credentials (an instance's auth method).
pub trait Fetcher: Send + Sync + 'static {
    /// Sends the token or auth request and reads the response.
    fn fetch(&self) -> BoxFuture<'_, Result<Credentials>>;
}

/// How long a key stays "active" for the background refresher after its last use.
const ACTIVE_FOR: Duration = Duration::from_secs(600);

/// One key's state.
struct Entry {
    /// Held while fetching: single flight.
    fetch_lock: Arc<tokio::sync::Mutex<()>>,
    current: RwLock<Option<Arc<Credentials>>>,
    failure: Mutex<Option<(Instant, crate::Error)>>,
    /// Milliseconds since the cache's start at the last use.
    last_used: AtomicU64,
    fetcher: OnceLock<Arc<dyn Fetcher>>,
}

impl Entry {
    fn current(&self) -> Option<Arc<Credentials>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, c: Option<Arc<Credentials>>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = c;
    }

    fn failure(&self, now: Instant) -> Option<crate::Error> {
        let f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        f.as_ref()
            .filter(|(until, _)| now < *until)
            .map(|(_, e)| e.clone())
    }
}

/// Where one key's credentials live in a [`TokenCache`] (see [`TokenCache::slot`]).
#[derive(Clone)]
pub struct Slot(Arc<Entry>);

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

/// The token cache of a process.
pub struct TokenCache {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    shared: Option<shared::Shared>,
    metrics: Arc<Metrics>,
    cooldown: Duration,
    started: Instant,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("keys", &self.entries.lock().map(|e| e.len()).unwrap_or(0))
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl TokenCache {
    /// An in-process cache.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        TokenCache {
            entries: Mutex::new(HashMap::new()),
            shared: None,
            metrics,
            cooldown: Duration::from_secs(5),
            started: Instant::now(),
        }
    }

    /// A cache whose credentials are also shared with other processes through `shared`.
    pub fn with_shared(metrics: Arc<Metrics>, shared: shared::Shared) -> Self {
        TokenCache {
            shared: Some(shared),
            ..TokenCache::new(metrics)
        }
    }

    /// How long a failure is remembered.
    pub fn set_cooldown(&mut self, cooldown: Duration) {
        self.cooldown = cooldown;
    }

    /// The metrics this cache counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The shared store, if there is one.
    pub fn shared(&self) -> Option<&shared::Shared> {
        self.shared.as_ref()
    }

    fn entry(&self, key: &str, fetcher: &Arc<dyn Fetcher>) -> Arc<Entry> {
        let existing = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned();
        let e = existing.unwrap_or_else(|| {
            self.entries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(key.to_owned())
                .or_insert_with(|| {
                    Arc::new(Entry {
                        fetch_lock: Arc::new(tokio::sync::Mutex::new(())),
                        current: RwLock::new(None),
                        failure: Mutex::new(None),
                        last_used: AtomicU64::new(0),
                        fetcher: OnceLock::new(),
                    })
                })
                .clone()
        });
        e.fetcher.get_or_init(|| fetcher.clone());
        e
    }

    /// Marks the entry used now (for the background refresher). Written at most once per
    /// millisecond, so that concurrent callers do not all write the same cache line.
    fn touch(&self, e: &Entry, now: Instant) {
        let now = now.saturating_duration_since(self.started).as_millis() as u64;
        if e.last_used.load(Ordering::Relaxed) != now {
            e.last_used.store(now, Ordering::Relaxed);
        }
    }

    /// The place of `key` in the cache, made once by its user (an instance's authenticator)
    /// so that each call skips looking it up.
    pub fn slot(&self, key: &str, fetcher: &Arc<dyn Fetcher>) -> Slot {
        Slot(self.entry(key, fetcher))
    }

    /// Valid credentials for `key` (whose [`Slot`] the caller holds), fetched with `fetcher`
    /// when needed, and whether this caller fetched them itself (its call then owes
    /// [`Credentials::requests`] token requests).
    pub async fn get_counted(
        self: &Arc<Self>,
        key: &str,
        slot: &Slot,
        fetcher: &Arc<dyn Fetcher>,
    ) -> Result<(Arc<Credentials>, bool)> {
        let entry = &slot.0;
        let now = Instant::now();
        self.touch(entry, now);
        if let Some(c) = entry.current() {
            if c.fresh(now) {
                self.metrics.cache_hits.add(1);
                return Ok((c, false));
            }
            if c.valid(now) {
                // Due: refreshed in the background while every caller goes on with what is
                // still valid.
                self.metrics.cache_hits.add(1);
                if let Ok(guard) = entry.fetch_lock.clone().try_lock_owned() {
                    if entry.failure(now).is_none() {
                        let (this, entry, key, fetcher) =
                            (self.clone(), entry.clone(), key.to_owned(), fetcher.clone());
                        tokio::spawn(async move {
                            let _guard = guard;
                            this.refresh_held(&key, &entry, &fetcher).await;
                        });
                    }
                }
                return Ok((c, false));
            }
        }
        self.metrics.cache_misses.fetch_add(1, Ordering::Relaxed);
        // Boxed: the future of a fetch (with Redis and every grant in it) is large, and
        // would otherwise be part of every call's future.
        Box::pin(self.wait_or_fetch(key, entry, fetcher)).await
    }

    /// The credentials are missing or expired: waits for the fetch lock, then fetches
    /// unless the caller before did.
    async fn wait_or_fetch(
        &self,
        key: &str,
        entry: &Entry,
        fetcher: &Arc<dyn Fetcher>,
    ) -> Result<(Arc<Credentials>, bool)> {
        let _guard = entry.fetch_lock.lock().await;
        let now = Instant::now();
        if let Some(c) = entry.current().filter(|c| c.fresh(now)) {
            return Ok((c, false));
        }
        if let Some(e) = entry.failure(now) {
            return match entry.current().filter(|c| c.valid(now)) {
                Some(c) => Ok((c, false)),
                None => Err(e),
            };
        }
        let c = self.fetch(key, entry, fetcher, false).await?;
        Ok((c, true))
    }

    /// Fetches new credentials for `key` now, whatever the cache holds.
    pub async fn refresh(&self, key: &str, fetcher: &Arc<dyn Fetcher>) -> Result<Arc<Credentials>> {
        let entry = self.entry(key, fetcher);
        self.touch(&entry, Instant::now());
        let _guard = entry.fetch_lock.lock().await;
        self.fetch(key, &entry, fetcher, true).await
    }

    /// Drops `used` (the API refused it), unless it was already replaced.
    pub async fn invalidate(&self, key: &str, used: &Arc<Credentials>) {
        let entry = {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            entries.get(key).cloned()
        };
        let Some(entry) = entry else {
            return;
        };
        let same = entry
            .current()
            .is_some_and(|c| Arc::ptr_eq(&c, used) || c.id == used.id);
        if same {
            entry.set(None);
        }
        if let Some(s) = &self.shared {
            s.invalidate(key, &used.id, &self.metrics).await;
        }
    }

    async fn fetch(
        &self,
        key: &str,
        entry: &Entry,
        fetcher: &Arc<dyn Fetcher>,
        force: bool,
    ) -> Result<Arc<Credentials>> {
        let have_valid = !force && entry.current().is_some_and(|c| c.valid(Instant::now()));
        let result = match &self.shared {
            Some(s) => {
                s.get_or_fetch(key, fetcher, force, have_valid, &self.metrics)
                    .await
            }
            None => timed_fetch(fetcher, &self.metrics).await.map(Some),
        };
        match result {
            // Another process is refreshing: go on with what is still valid.
            Ok(None) => entry
                .current()
                .ok_or_else(|| crate::Error::new(crate::ErrorKind::AuthResponse, "no credentials")),
            Ok(Some(c)) => {
                // The cache keeps the credentials without the raw response (only `connector
                // auth` shows it, from the value returned here): a third of their memory.
                let kept = Credentials {
                    response: None,
                    ..c.clone()
                };
                entry.set(Some(Arc::new(kept)));
                *entry.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Ok(Arc::new(c))
            }
            Err(e) => {
                *entry.failure.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now() + self.cooldown, e.clone()));
                Err(e)
            }
        }
    }

    /// Starts a task that refreshes, every `every`, the credentials of active keys that have
    /// fallen due. It stops when the cache is dropped.
    pub fn spawn_refresher(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(cache) = weak.upgrade() else {
                    return;
                };
                cache.refresh_due().await;
            }
        })
    }

    /// Refreshes the active keys whose credentials are due (or missing after a use).
    pub async fn refresh_due(&self) {
        let now = Instant::now();
        let now_ms = self.started.elapsed().as_millis() as u64;
        let due: Vec<(String, Arc<Entry>)> = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, e)| {
                now_ms.saturating_sub(e.last_used.load(Ordering::Relaxed))
                    < ACTIVE_FOR.as_millis() as u64
                    && e.current().is_some_and(|c| !c.fresh(now))
                    && e.failure(now).is_none()
            })
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect();
        for (key, entry) in due {
            let Some(fetcher) = entry.fetcher.get().cloned() else {
                continue;
            };
            let Ok(_guard) = entry.fetch_lock.try_lock() else {
                continue;
            };
            self.refresh_held(&key, &entry, &fetcher).await;
        }
    }

    /// A background refresh, the fetch lock held: unless another caller already refreshed,
    /// fetches; a failure is logged (and remembered by `fetch`), the old credentials stay.
    async fn refresh_held(&self, key: &str, entry: &Entry, fetcher: &Arc<dyn Fetcher>) {
        if entry.current().is_some_and(|c| c.fresh(Instant::now())) {
            return;
        }
        if let Err(e) = self.fetch(key, entry, fetcher, false).await {
            tracing::warn!("background token refresh failed: {e}");
        }
    }
}

/// Fetches with `fetcher`, counting the outcome and the latency.
pub(crate) async fn timed_fetch(
    fetcher: &Arc<dyn Fetcher>,
    metrics: &Metrics,
) -> Result<Credentials> {
    let t = Instant::now();
    let r = fetcher.fetch().await;
    metrics.token_latency.observe(t.elapsed());
    match &r {
        Ok(_) => metrics.token_success.fetch_add(1, Ordering::Relaxed),
        Err(_) => metrics.token_failure.fetch_add(1, Ordering::Relaxed),
    };
    r
}

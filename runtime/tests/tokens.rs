//! The token cache at scale: 1,000 concurrent callers across an expiry make one token request;
//! caches sharing one real Redis (started by the test) make one token request between them;
//! Redis killed and restarted mid-run fails no call; a dead holder's lease expires; sealed
//! tokens cannot be read without the key.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use runtime::run::Connection;
use runtime::tokens::shared::{EncryptionKey, Options, Shared};
use runtime::tokens::TokenCache;
use support::redis::RedisServer;
use support::Env;

/// A sandbox whose tokens live 2 s (refreshed after 1 s).
fn short_lived() -> Env {
    Env::with(sandbox::Config {
        token_lifetime_s: 2,
        ..Default::default()
    })
}

/// A token cache shared through `redis`.
fn shared_cache(redis: &RedisServer, key: Option<&str>, lease: Duration) -> Arc<TokenCache> {
    let metrics = Arc::new(runtime::metrics::Metrics::default());
    let key = key.map(|k| EncryptionKey::parse(k).unwrap());
    let shared = Shared::new(
        &redis.url(),
        key,
        Options {
            lease,
            ..Options::default()
        },
    )
    .unwrap();
    Arc::new(TokenCache::with_shared(metrics, shared))
}

fn in_process() -> Arc<TokenCache> {
    Arc::new(TokenCache::new(Arc::new(
        runtime::metrics::Metrics::default(),
    )))
}

#[test]
fn a_thousand_concurrent_callers_across_an_expiry_make_one_token_request() {
    let env = short_lived();
    let conn = Arc::new(env.connect_through(in_process()));
    assert_eq!(env.burst(std::slice::from_ref(&conn), 1), 0);
    assert_eq!(env.sandbox.stats().token_requests, 1);
    // Past expiry: nobody has a valid token, all 1,000 wait for one request.
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(env.burst(std::slice::from_ref(&conn), 1000), 0);
    let s = env.sandbox.stats();
    assert_eq!(s.token_requests, 2, "one token request for 1,000 callers");
    assert_eq!(s.unauthorized, 0);
    // In the refresh window (due, still valid): one refreshes, the others go on.
    let t = Instant::now();
    let creds = env.rt.block_on(conn.authenticator().credentials()).unwrap();
    let due = creds.refresh_at.unwrap();
    std::thread::sleep(due.saturating_duration_since(Instant::now()) + Duration::from_millis(50));
    assert!(
        creds.valid(Instant::now()),
        "still valid: {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    assert_eq!(env.burst(std::slice::from_ref(&conn), 1000), 0);
    let burst_took = t.elapsed();
    // The refresh runs in the background: wait for it to land, then check it was the only one.
    let deadline = Instant::now() + Duration::from_secs(2);
    let fresh = loop {
        let c = env.rt.block_on(conn.authenticator().credentials()).unwrap();
        if c.id != creds.id || Instant::now() >= deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(fresh.id != creds.id, "the cache holds the refreshed token");
    let s = env.sandbox.stats();
    assert_eq!(s.token_requests, 3, "one refresh for 1,000 callers");
    assert_eq!(s.unauthorized, 0);
    assert_eq!(s.api_requests, 2001);
    println!("1,000 calls in the refresh window took {burst_took:?}");
}

#[test]
fn caches_sharing_redis_make_one_token_request_between_them() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let env = short_lived();
    // Four caches stand for four processes: nothing shared but Redis.
    let conns: Vec<Arc<Connection>> = (0..4)
        .map(|_| Arc::new(env.connect_through(shared_cache(&redis, None, Duration::from_secs(10)))))
        .collect();
    for round in 1..=3 {
        assert_eq!(env.burst(&conns, 250), 0, "round {round}");
        let s = env.sandbox.stats();
        assert_eq!(
            s.token_requests, round,
            "one token request per expiry for 4 caches × 250 callers"
        );
        assert_eq!(s.unauthorized, 0);
        let keys = redis.keys("connector:token:*");
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert!(redis.keys("connector:lock:*").is_empty(), "leases released");
        std::thread::sleep(Duration::from_millis(2100));
    }
}

#[test]
fn redis_killed_mid_run_fails_no_call_and_is_used_again_when_back() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let env = short_lived();
    let cache = shared_cache(&redis, None, Duration::from_secs(10));
    let conn = Arc::new(env.connect_through(cache.clone()));
    assert_eq!(env.burst(std::slice::from_ref(&conn), 10), 0);
    assert_eq!(redis.keys("connector:token:*").len(), 1);
    redis.kill();
    // Across an expiry without Redis: calls go on with the in-process cache.
    let deadline = Instant::now() + Duration::from_millis(2600);
    while Instant::now() < deadline {
        assert_eq!(env.burst(std::slice::from_ref(&conn), 5), 0);
        std::thread::sleep(Duration::from_millis(50));
    }
    let errors = cache
        .metrics()
        .shared_errors
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(errors >= 1, "the outage was noticed");
    redis.restart();
    assert!(
        redis.keys("connector:token:*").is_empty(),
        "a new, empty Redis"
    );
    // Back: the next refresh is stored there again.
    let deadline = Instant::now() + Duration::from_secs(6);
    while redis.keys("connector:token:*").is_empty() {
        assert!(Instant::now() < deadline, "Redis was not used again");
        assert_eq!(env.burst(std::slice::from_ref(&conn), 5), 0);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(env.sandbox.stats().unauthorized, 0);
}

#[test]
fn the_lease_of_a_dead_holder_expires() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let env = Env::new();
    let conn = env.connect_through(shared_cache(&redis, None, Duration::from_secs(10)));
    // A holder that took the lease for 1.5 s and died without releasing it.
    let lock = format!("connector:lock:{}", conn.authenticator().key());
    assert_eq!(
        redis.cmd(&["SET", &lock, "dead-holder", "NX", "PX", "1500"]),
        Some(b"OK".to_vec())
    );
    let t = Instant::now();
    let (records, stats) = env.call(&conn, "list_items", &[]).unwrap();
    let waited = t.elapsed();
    assert_eq!(records.len(), 120);
    assert_eq!(stats.token_requests, 1);
    assert!(
        waited >= Duration::from_millis(1400),
        "waited for the lease to expire: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(env.sandbox.stats().token_requests, 1);
}

#[test]
fn a_sealed_token_cannot_be_read_back_without_the_key() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let key = "ab".repeat(32);
    let env = Env::new();
    let a = env.connect_through(shared_cache(&redis, Some(&key), Duration::from_secs(10)));
    env.call(&a, "get_item", &[("id", "1")]).unwrap();
    let token = env.sandbox.issued()[0].clone();
    let stored = redis.keys("connector:token:*");
    assert_eq!(stored.len(), 1);
    let raw = redis.cmd(&["GET", &stored[0]]).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("v1:"), "{text}");
    assert!(!text.contains(&token), "the token is sealed");
    assert!(!text.contains("access_token"), "the whole record is sealed");

    // The same key reads it: no second token request.
    let b = env.connect_through(shared_cache(&redis, Some(&key), Duration::from_secs(10)));
    env.call(&b, "get_item", &[("id", "2")]).unwrap();
    assert_eq!(env.sandbox.stats().token_requests, 1);

    // No key, or another key: it cannot be read, so each fetches its own and leaves it.
    let none = env.connect_through(shared_cache(&redis, None, Duration::from_secs(10)));
    env.call(&none, "get_item", &[("id", "3")]).unwrap();
    let other = env.connect_through(shared_cache(
        &redis,
        Some(&"cd".repeat(32)),
        Duration::from_secs(10),
    ));
    env.call(&other, "get_item", &[("id", "4")]).unwrap();
    assert_eq!(env.sandbox.stats().token_requests, 3);
    assert_eq!(
        redis.cmd(&["GET", &stored[0]]).unwrap(),
        raw,
        "left as it was"
    );
}

#[test]
fn without_a_key_the_token_is_stored_as_a_bearer_credential() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let env = Env::new();
    let a = env.connect_through(shared_cache(&redis, None, Duration::from_secs(10)));
    env.call(&a, "get_item", &[("id", "1")]).unwrap();
    let token = env.sandbox.issued()[0].clone();
    let stored = redis.keys("connector:token:*");
    let raw = String::from_utf8(redis.cmd(&["GET", &stored[0]]).unwrap()).unwrap();
    assert!(raw.starts_with("v0:"));
    assert!(
        raw.contains(&token),
        "readable by anyone who can read Redis"
    );
    // Its TTL ends before the token expires (3600 s, less a safety margin).
    let ttl: u64 = String::from_utf8(redis.cmd(&["PTTL", &stored[0]]).unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert!(ttl < 3_600_000 && ttl > 3_500_000, "{ttl}");
}

#[test]
fn a_failed_fetch_is_remembered_for_the_cooldown_and_then_retried() {
    let env = Env::new();
    let mut cache = TokenCache::new(Arc::new(runtime::metrics::Metrics::default()));
    cache.set_cooldown(Duration::from_millis(800));
    let conn = Arc::new(env.connect_through(Arc::new(cache)));
    // The token endpoint refuses the client once (a permanent error: not retried).
    env.sandbox.add_fault(sandbox::Fault {
        status: Some(401),
        body: Some(r#"{"error":"invalid_client","error_description":"nope"}"#.into()),
        ..sandbox::Fault::new("/oauth/token")
    });
    // 200 concurrent callers: one token request, every caller gets its error.
    assert_eq!(env.burst(std::slice::from_ref(&conn), 200), 200);
    assert_eq!(env.sandbox.stats().token_requests, 1, "no hammering");
    // Within the cooldown: the remembered error, no request.
    let e = env.call(&conn, "get_item", &[("id", "1")]).unwrap_err();
    assert!(e.message().contains("invalid_client"), "{e}");
    assert_eq!(env.sandbox.stats().token_requests, 1);
    // After it: tried again (the fault is gone), and the cache is not poisoned.
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(env.burst(std::slice::from_ref(&conn), 50), 0);
    assert_eq!(env.sandbox.stats().token_requests, 2);
}

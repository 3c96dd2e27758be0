//! Several `connector serve` processes sharing one real Redis: one token request per expiry
//! between them, and a lease that expires when the process holding it is killed.

mod support;

use std::time::{Duration, Instant};

use support::redis::RedisServer;
use support::Env;

use support::serve::{call, Serve};

#[test]
fn four_replicas_make_one_token_request_per_expiry() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    // Tokens live 4 s and are refreshed after about 2 s.
    let (env, replicas) = support::serve::four_replicas(&redis.url());
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let started = Instant::now();
    let statuses = env.rt.block_on(async {
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        while started.elapsed() < Duration::from_millis(7000) {
            let round = support::serve::call_all(&client, &urls).await;
            statuses.extend(round);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        statuses
    });
    let elapsed = started.elapsed();
    assert!(statuses.len() >= 200, "{} calls", statuses.len());
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every call succeeds: {:?}",
        statuses.iter().filter(|s| **s != 200).collect::<Vec<_>>()
    );
    let s = env.sandbox.stats();
    // About one token per 2 s refresh period over the run, shared by the four replicas
    // (without sharing it would be four per period).
    let periods = elapsed.as_secs_f64() / 1.8;
    assert!(
        (s.token_requests as f64) <= periods.ceil() + 1.0,
        "{} token requests in {elapsed:?} for 4 replicas",
        s.token_requests
    );
    assert!(
        s.token_requests >= 3,
        "tokens were refreshed: {}",
        s.token_requests
    );
    assert_eq!(s.token_requests, s.tokens_issued);
    assert_eq!(s.unauthorized, 0);
    drop(replicas);
}

#[test]
fn the_lease_expires_when_its_holder_is_killed() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let env = Env::new();
    env.client_credentials();
    // The first token request hangs for 10 s: its sender holds the lease when it is killed.
    env.sandbox.add_fault(sandbox::Fault {
        delay_ms: 10_000,
        ..sandbox::Fault::new("/oauth/token")
    });
    let mut holder = Serve::start(&env, &["--token-cache", &redis.url(), "--lease-ms", "1500"]);
    let other = Serve::start(&env, &["--token-cache", &redis.url(), "--lease-ms", "1500"]);
    let holder_url = holder.url.clone();
    let hanging = env.rt.spawn(async move {
        let client = reqwest::Client::new();
        call(&client, &holder_url).await
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while redis.keys("connector:lock:*").is_empty() {
        assert!(Instant::now() < deadline, "the holder never took the lease");
        std::thread::sleep(Duration::from_millis(20));
    }
    holder.kill();
    let t = Instant::now();
    let status = env.rt.block_on(async {
        let client = reqwest::Client::new();
        call(&client, &other.url).await
    });
    let waited = t.elapsed();
    assert_eq!(
        status, 200,
        "the other replica gets a token once the lease expires"
    );
    assert!(waited >= Duration::from_millis(800), "{waited:?}");
    assert!(waited < Duration::from_secs(6), "{waited:?}");
    assert_eq!(
        env.rt.block_on(hanging).unwrap(),
        0,
        "the killed replica never answered"
    );
    assert_eq!(
        env.sandbox.stats().token_requests,
        2,
        "the dead holder's and the other's"
    );
}

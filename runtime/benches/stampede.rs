//! `cargo bench --bench stampede`: token requests when many callers cross a token expiry.
//!
//! 1. In one process: 1,000 concurrent endpoint calls right after the token expired.
//! 2. Four `connector serve` processes sharing one `redis-server` (started here on a free
//!    loopback port), called continuously across three refresh periods.
//!
//! Ends with one JSON line: `in_process_token_requests`, `shared_token_requests`, `expiries`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::redis::RedisServer;
use support::serve::{call_all, four_replicas};
use support::Env;

fn main() {
    // 1. In process.
    let env = Env::with(sandbox::Config {
        token_lifetime_s: 2,
        ..Default::default()
    });
    let tokens = Arc::new(runtime::tokens::TokenCache::new(Arc::new(
        runtime::metrics::Metrics::default(),
    )));
    let conn = Arc::new(env.connect_through(tokens));
    assert_eq!(env.burst(std::slice::from_ref(&conn), 1), 0);
    std::thread::sleep(Duration::from_millis(2100));
    let before = env.sandbox.stats().token_requests;
    let t = Instant::now();
    let failed = env.burst(std::slice::from_ref(&conn), 1000);
    let in_process = env.sandbox.stats().token_requests - before;
    println!(
        "in process: 1000 concurrent calls across an expiry: {in_process} token request(s), {failed} failed, {} ms",
        t.elapsed().as_millis()
    );

    // 2. Four processes sharing Redis.
    let (shared, expiries) = match RedisServer::start() {
        None => {
            println!("shared: skipped (no redis-server)");
            (None, 0)
        }
        Some(redis) => {
            let (env, replicas) = four_replicas(&redis.url());
            let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
            let client = reqwest::Client::new();
            // Warm up: the first token.
            let warm = env.rt.block_on(call_all(&client, &urls));
            assert!(warm.iter().all(|s| *s == 200), "{warm:?}");
            let before = env.sandbox.stats().token_requests;
            // Tokens of 4 s are refreshed about 2 s after they are issued: three refreshes
            // in a little over 6 s.
            let expiries = 3u64;
            let run_for = Duration::from_millis(6300);
            let t = Instant::now();
            let (calls, failures) = env.rt.block_on(async {
                let (mut calls, mut failures) = (0u64, 0u64);
                while t.elapsed() < run_for {
                    for s in call_all(&client, &urls).await {
                        calls += 1;
                        failures += u64::from(s != 200);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                (calls, failures)
            });
            let n = env.sandbox.stats().token_requests - before;
            println!(
                "shared: 4 processes, {calls} calls over {} ms: {n} token request(s), {failures} failed",
                t.elapsed().as_millis()
            );
            drop(replicas);
            (Some(n), expiries)
        }
    };
    println!(
        "{}",
        serde_json::json!({
            "in_process_token_requests": in_process,
            "shared_token_requests": shared,
            "expiries": expiries,
        })
    );
}

//! `cargo bench --bench memory`: the resident memory of `connector serve` with 10,000
//! instances, each with its own cached token after one call.
//!
//! The instances are generated: one connector (the sandbox's client credentials method, with a
//! `tenant` variable so that every instance has its own token) and 10,000 instance files. The
//! sandbox provider runs in this process; `serve` is the release binary.
//!
//! Ends with one JSON line: `instances`, `rss_mib` (after one call each), `rss_loaded_mib`
//! (before any call).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use support::serve::{Serve, API_KEY};
use support::Env;

const INSTANCES: usize = 10_000;
const CONCURRENCY: usize = 32;

/// Resident set size of a process, in MiB, from `/proc/PID/status`.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    let env = Env::new();
    let connector = format!(
        r#"connector: tenants
name: Tenants
base_url: "{{{{ vars.base_url }}}}"
variables:
  base_url: {{ label: Base URL, default: "{}" }}
  tenant: {{ label: Tenant, required: true }}
auth:
  cc:
    type: oauth2_client_credentials
    request: {{ url: "{{{{ vars.base_url }}}}/oauth/token" }}
endpoints:
  get_item:
    url: "/items/{{{{ input.id }}}}"
    headers: {{ X-Tenant: "{{{{ vars.tenant }}}}" }}
    inputs: {{ id: {{ required: true }} }}
"#,
        env.url()
    );
    env.write("tenants.connector", &connector);
    env.write(
        "secret.txt",
        &format!("{}\n", env.sandbox.config().client_secret),
    );
    let t = Instant::now();
    for i in 0..INSTANCES {
        env.write(
            &format!("t{i:05}.yaml"),
            &format!(
                "connector: ./tenants.connector\nauth: cc\nvalues:\n  tenant: tenant-{i}\n  client_id: sandbox-client\n  client_secret: {{ file: secret.txt }}\n"
            ),
        );
    }
    println!(
        "{INSTANCES} instance files written in {} ms",
        t.elapsed().as_millis()
    );
    let t = Instant::now();
    let serve = Serve::start(&env, &[]);
    let pid = serve.pid();
    println!("serve loaded them in {} ms", t.elapsed().as_millis());
    let rss_loaded = rss_mib(pid);

    let t = Instant::now();
    let failures = env.rt.block_on(async {
        let client = reqwest::Client::new();
        let next = Arc::new(AtomicUsize::new(0));
        let failures = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENCY {
            let (client, next, failures, url) = (
                client.clone(),
                next.clone(),
                failures.clone(),
                serve.url.clone(),
            );
            tasks.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= INSTANCES {
                        return;
                    }
                    let ok = client
                        .post(format!("{url}/v1/instances/t{i:05}/endpoints/get_item"))
                        .bearer_auth(API_KEY)
                        .body(r#"{"id": "7"}"#)
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200);
                    if !ok {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        while tasks.join_next().await.is_some() {}
        failures.load(Ordering::Relaxed)
    });
    let stats = env.sandbox.stats();
    println!(
        "{INSTANCES} calls in {} ms: {failures} failed, {} tokens issued",
        t.elapsed().as_millis(),
        stats.tokens_issued
    );
    let rss = rss_mib(pid);
    println!("serve RSS: {rss_loaded:.1} MiB loaded, {rss:.1} MiB with {INSTANCES} cached tokens");
    println!(
        "{}",
        serde_json::json!({
            "instances": INSTANCES,
            "rss_mib": (rss * 10.0).round() / 10.0,
            "rss_loaded_mib": (rss_loaded * 10.0).round() / 10.0,
            "tokens_issued": stats.tokens_issued,
            "failures": failures,
        })
    );
}

//! `cargo bench --bench overhead`: endpoint calls through the runtime with a cached token,
//! against a bare reqwest loop sending the same requests (same method, URL, headers) to the
//! same local upstream, both at concurrency 64, alternated in one run.
//!
//! Ends with one JSON line: `runtime_rps`, `baseline_rps`, `ratio` (medians of the rounds), and
//! the same figures against the bare loop given the runtime's per-request timeout
//! (`baseline_with_timeout_rps`, `ratio_with_timeout`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};

/// The allocator of the `connector` binary (see `src/main.rs`), for both loops.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 64;
const REQUESTS: usize = 20_000;
const ROUNDS: usize = 5;
const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The upstream: a token endpoint and a small JSON resource, on its own threads.
fn upstream() -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new()
                .route(
                    "/oauth/token",
                    post(|| async {
                        (
                            [("content-type", "application/json")],
                            format!(
                                r#"{{"access_token":"{TOKEN}","token_type":"Bearer","expires_in":86400}}"#
                            ),
                        )
                    }),
                )
                .route(
                    "/items/{id}",
                    get(|| async {
                        (
                            [("content-type", "application/json")],
                            r#"{"id":7,"name":"Item 7","price":10.5,"active":true}"#,
                        )
                    }),
                );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// `REQUESTS` calls of `call` by `CONCURRENCY` workers; requests per second.
async fn drive<F, Fut>(call: F) -> f64
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (call, next) = (call.clone(), next.clone());
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < REQUESTS {
                assert!(call().await, "a call failed");
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    REQUESTS as f64 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let addr = upstream();
    let base = format!("http://{addr}");
    let dir = std::env::temp_dir().join(format!("connector-overhead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("c.yaml"),
        r#"connector: bench
name: Bench
base_url: "{{ vars.base_url }}"
variables:
  base_url: { label: Base URL, default: http://127.0.0.1:1 }
auth:
  cc:
    type: oauth2_client_credentials
    request: { url: "{{ vars.base_url }}/oauth/token" }
endpoints:
  get_item:
    url: "/items/{{ input.id }}"
    inputs: { id: { required: true } }
"#,
    )
    .unwrap();
    std::fs::write(dir.join("secret"), "s3cret\n").unwrap();
    std::fs::write(
        dir.join("i.yaml"),
        format!(
            "connector: c.yaml\nauth: cc\nvalues:\n  base_url: {base}\n  client_id: bench\n  client_secret: {{ file: secret }}\n"
        ),
    )
    .unwrap();
    let instance = runtime::instance::load(&dir.join("i.yaml"), &[]).unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let conn = Arc::new(runtime::run::Connection::new(instance).unwrap());
    let inputs = Arc::new(vec![(
        "id".to_owned(),
        runtime::resolve::Given::Text("7".into()),
    )]);
    // The token is fetched once, then cached.
    rt.block_on(conn.authenticate()).unwrap();

    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("connector/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap();
    let url = format!("{base}/items/7");
    let auth = format!("Bearer {TOKEN}");

    let runtime_round = || {
        let (conn, inputs) = (conn.clone(), inputs.clone());
        rt.block_on(drive(move || {
            let (conn, inputs) = (conn.clone(), inputs.clone());
            async move {
                conn.call("get_item", &inputs, &mut |_| Ok(()), &mut |_| {})
                    .await
                    .is_ok_and(|s| s.records == 1)
            }
        }))
    };
    // The bare loop, optionally with the per-request timeout the runtime always sets (the
    // endpoint's `timeout_ms`): a tokio timer per request, the one cost of the runtime's that
    // changes no byte on the wire.
    let timeout = Duration::from_millis(conn.instance().ir.endpoints["get_item"].timeout_ms);
    let baseline_round = |timeout: Option<Duration>| {
        let (client, url, auth) = (client.clone(), url.clone(), auth.clone());
        rt.block_on(drive(move || {
            let (client, url, auth) = (client.clone(), url.clone(), auth.clone());
            async move {
                let mut req = client.get(&url).header("authorization", &auth);
                if let Some(t) = timeout {
                    req = req.timeout(t);
                }
                match req.send().await {
                    Ok(r) => r.status() == 200 && r.bytes().await.is_ok(),
                    Err(_) => false,
                }
            }
        }))
    };
    // Warm up all (connections, allocator).
    runtime_round();
    baseline_round(None);
    baseline_round(Some(timeout));
    let (mut ours, mut bare, mut timed) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let r = runtime_round();
        let b = baseline_round(None);
        let t = baseline_round(Some(timeout));
        println!(
            "round {round}: runtime {r:.0} req/s, bare reqwest {b:.0} req/s, bare reqwest with the timeout {t:.0} req/s"
        );
        ours.push(r);
        bare.push(b);
        timed.push(t);
    }
    let (runtime_rps, baseline_rps, timed_rps) = (median(ours), median(bare), median(timed));
    let ratio = |a: f64, b: f64| (a / b * 1000.0).round() / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "runtime_rps": runtime_rps.round(),
            "baseline_rps": baseline_rps.round(),
            "ratio": ratio(runtime_rps, baseline_rps),
            "baseline_with_timeout_rps": timed_rps.round(),
            "ratio_with_timeout": ratio(runtime_rps, timed_rps),
            "concurrency": CONCURRENCY,
            "requests": REQUESTS,
        })
    );
}

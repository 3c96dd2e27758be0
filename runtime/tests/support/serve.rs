//! `connector serve` as a child process.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::Env;

/// The API key the child processes are started with.
pub const API_KEY: &str = "replica-test-api-key-0123456789";

/// A `connector serve --instances ENV_DIR --listen 127.0.0.1:0` child, killed when dropped.
pub struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT`, from its `serving N instances on …` line.
    pub url: String,
}

impl Serve {
    /// Starts one over the instances of the env's scratch folder, with `extra` arguments.
    pub fn start(env: &Env, extra: &[&str]) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_connector"))
            .args([
                "serve",
                "--instances",
                env.dir.0.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("CONNECTOR_API_KEY", API_KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.starts_with("serving ") {
                    if let Some(url) = line.rsplit(" on ").next() {
                        let _ = tx.send(url.trim().to_owned());
                    }
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("serve printed its address");
        Serve { child, url }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A sandbox whose tokens live 4 s (refreshed about 2 s after they are issued), and four
/// replicas serving its client credentials instance, sharing the Redis at `redis_url`.
pub fn four_replicas(redis_url: &str) -> (Env, Vec<Serve>) {
    let env = Env::with(sandbox::Config {
        token_lifetime_s: 4,
        ..Default::default()
    });
    env.client_credentials();
    let replicas = (0..4)
        .map(|_| Serve::start(&env, &["--token-cache", redis_url]))
        .collect();
    (env, replicas)
}

/// Calls `get_item` of the instance `cc` on one replica; the HTTP status (0: no answer).
pub async fn call(client: &reqwest::Client, base: &str) -> u16 {
    client
        .post(format!("{base}/v1/instances/cc/endpoints/get_item"))
        .bearer_auth(API_KEY)
        .body(r#"{"id": "1"}"#)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// One call to each replica, concurrently; their statuses.
pub async fn call_all(client: &reqwest::Client, urls: &[String]) -> Vec<u16> {
    let mut set = tokio::task::JoinSet::new();
    for u in urls {
        let client = client.clone();
        let u = u.clone();
        set.spawn(async move { call(&client, &u).await });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap_or(0));
    }
    out
}

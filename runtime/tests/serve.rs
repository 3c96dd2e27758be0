//! `connector serve` end to end: the binary started on a free loopback port over instances of
//! the sandbox connector and talked to over real HTTP: the API key, every route and error code,
//! bad instance files, metrics, one shared token, background refresh, no secret in the logs,
//! graceful shutdown, usage errors, the Redis token cache with and without a key.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::redis::RedisServer;
use support::Env;

const API_KEY: &str = "serve-test-api-key-5c0f2a9e71b4d836";
const WRONG_KEY: &str = "serve-test-wrong-key-0a1b2c3d4e5f";

/// A `connector serve` child process, killed when dropped.
struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    url: String,
    log: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Serve {
    /// Starts `serve` over the scratch folder of `env` with `CONNECTOR_API_KEY` set, and waits
    /// for its `serving N instances on http://ADDR` line.
    fn start(env: &Env, args: &[&str], envs: &[(&str, &str)]) -> Serve {
        let mut c = Command::new(env!("CARGO_BIN_EXE_connector"));
        c.arg("serve")
            .arg("--instances")
            .arg(&env.dir.0)
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(&env.dir.0)
            .env_remove("RUST_LOG")
            .env("CONNECTOR_API_KEY", API_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                {
                    let mut l = sink.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
                if let Some(rest) = line.strip_prefix("serving ") {
                    if let Some((_, url)) = rest.split_once(" on ") {
                        let _ = tx.send(url.trim().to_owned());
                    }
                }
            }
        });
        let mut serve = Serve {
            child,
            url: String::new(),
            log,
            reader: Some(reader),
        };
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(url) => serve.url = url,
            Err(_) => {
                serve.kill();
                panic!("serve did not start:\n{}", serve.log());
            }
        }
        serve
    }

    /// What it printed on stderr so far.
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Sends SIGTERM.
    fn term(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.pid()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Sends SIGTERM and waits for the exit; the status and everything printed on stderr.
    fn stop(mut self) -> (ExitStatus, String) {
        self.term();
        let status = wait(&mut self.child, Duration::from_secs(15)).expect("serve exits");
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (status, self.log())
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits at most `limit` for `child` to exit.
fn wait(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    challenge: Option<String>,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The `code` of an error answer.
    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error: {}", self.text))
            .to_owned()
    }
}

/// A client of one server.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(serve: &Serve) -> Api {
        Api {
            client: reqwest::Client::new(),
            base: serve.url.clone(),
        }
    }

    /// Sends `method path` with `Authorization: Bearer key` (if any) and `body` (if any).
    async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let content_type = header("content-type").unwrap_or_default();
        let challenge = header("www-authenticate");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        Answer {
            status,
            content_type,
            challenge,
            text,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send("GET", path, Some(API_KEY), None).await
    }

    async fn post(&self, path: &str, body: &str) -> Answer {
        self.send("POST", path, Some(API_KEY), Some(body)).await
    }

    /// Calls an endpoint with the key; panics unless it answers 200.
    async fn call(&self, instance: &str, endpoint: &str, inputs: Value) -> Value {
        let a = self
            .post(
                &format!("/v1/instances/{instance}/endpoints/{endpoint}"),
                &inputs.to_string(),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        a.json()
    }
}

/// A second instance of the same client as `cc` (same cache key: one token for both).
fn second_client_instance(env: &Env, name: &str) {
    env.sandbox_instance(
        name,
        "client_credentials",
        "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n",
    );
}

#[test]
fn every_route_but_healthz_needs_the_api_key() {
    let env = Env::new();
    env.client_credentials();
    let serve = Serve::start(&env, &[], &[]);
    let api = Api::new(&serve);
    env.rt.block_on(async {
        let routes = [
            ("GET", "/v1/instances"),
            ("GET", "/metrics"),
            ("POST", "/v1/instances/cc/endpoints/list_items"),
            ("POST", "/v1/instances/cc/auth/test"),
            ("POST", "/v1/instances/nope/endpoints/list_items"),
            ("GET", "/no/such/route"),
        ];
        for (method, path) in routes {
            for key in [None, Some(WRONG_KEY), Some(""), Some(&API_KEY[1..])] {
                let a = api.send(method, path, key, Some("{}")).await;
                assert_eq!(a.status, 401, "{method} {path} with {key:?}: {}", a.text);
                assert_eq!(a.code(), "unauthorized");
                assert_eq!(a.challenge.as_deref(), Some(r#"Bearer realm="connector""#));
                assert!(a.content_type.starts_with("application/json"));
            }
            // The key in another scheme.
            let a = api
                .client
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{}{path}", api.base),
                )
                .header("Authorization", format!("Basic {API_KEY}"))
                .send()
                .await
                .unwrap();
            assert_eq!(a.status().as_u16(), 401, "{method} {path} with Basic");
        }
        // Nothing reached the provider or the API.
        let s = env.sandbox.stats();
        assert_eq!((s.token_requests, s.api_requests), (0, 0));

        // With the key.
        for (method, path) in routes {
            let a = api.send(method, path, Some(API_KEY), None).await;
            assert_ne!(a.status, 401, "{method} {path}: {}", a.text);
        }
        // `bearer` in any case, extra spaces.
        let a = api
            .client
            .get(format!("{}/v1/instances", api.base))
            .header("Authorization", format!("bearer   {API_KEY}"))
            .send()
            .await
            .unwrap();
        assert_eq!(a.status().as_u16(), 200);

        // /healthz: no key needed.
        let a = api.send("GET", "/healthz", None, None).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.json(), json!({"status": "ok", "instances": 1}));
    });
}

#[test]
fn lists_instances_calls_endpoints_and_answers_errors_with_codes() {
    let env = Env::new();
    env.client_credentials();
    let serve = Serve::start(&env, &[], &[]);
    assert!(serve
        .log()
        .contains("serving 1 instances on http://127.0.0.1:"));
    let api = Api::new(&serve);
    env.rt.block_on(async {
        let list = api.get("/v1/instances").await;
        assert_eq!(list.status, 200);
        let list = list.json();
        let one = &list["instances"][0];
        assert_eq!(list["instances"].as_array().unwrap().len(), 1);
        assert_eq!(one["id"], "cc");
        assert_eq!(one["connector"], "sandbox");
        assert_eq!(one["auth"], "client_credentials");
        assert_eq!(one["type"], "oauth2_client_credentials");
        let endpoints: Vec<&str> = one["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert!(endpoints.contains(&"list_items") && endpoints.contains(&"echo"));

        // An empty body: no inputs. 120 records over 5 pages with one token.
        let a = api.post("/v1/instances/cc/endpoints/list_items", "").await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert!(a.content_type.starts_with("application/json"));
        let doc = a.json();
        let records = doc["records"].as_array().unwrap();
        assert_eq!(records.len(), 120);
        assert_eq!(records[0]["id"], 1);
        assert_eq!(records[119]["id"], 120);
        let s = &doc["summary"];
        assert_eq!(
            (
                &s["records"],
                &s["pages"],
                &s["requests"],
                &s["token_requests"]
            ),
            (&json!(120), &json!(5), &json!(5), &json!(1))
        );
        assert!(s["elapsed_ms"].is_u64());
        assert_eq!(doc["warnings"], json!([]));

        // Inputs: text encoded for the query, an integer as a JSON number, a boolean.
        let doc = api
            .call(
                "cc",
                "echo",
                json!({"message": "a&b=c d/é", "count": 3, "loud": true, "tag": null}),
            )
            .await;
        let query = &doc["records"][0]["query"];
        assert_eq!(
            query,
            &json!([["message", "a&b=c d/é"], ["count", "3"], ["loud", "true"]]),
            "{doc}"
        );
        assert_eq!(doc["summary"]["token_requests"], 0, "the token is reused");

        // Input errors: 400 invalid_input, nothing sent.
        let before = env.sandbox.stats().api_requests;
        for (body, needle) in [
            (json!({"mesage": "hi"}), "did you mean `message`?"),
            (json!({"message": "hi", "count": "three"}), "count"),
            (json!({"message": "hi", "count": 1.5}), "count"),
            (json!({"message": "hi", "tag": "purple"}), "tag"),
            (json!({}), "message"),
            (json!({"message": ["a"]}), "message"),
        ] {
            let a = api
                .post("/v1/instances/cc/endpoints/echo", &body.to_string())
                .await;
            assert_eq!(a.status, 400, "{body}: {}", a.text);
            assert_eq!(a.code(), "invalid_input", "{body}");
            let message = a.json()["error"]["message"].as_str().unwrap().to_owned();
            assert!(message.contains(needle), "{body}: {message}");
        }
        assert_eq!(env.sandbox.stats().api_requests, before);

        // Bodies that are not a JSON object: 400 bad_request.
        for body in ["{", "[1, 2]", "\"text\"", "null"] {
            let a = api.post("/v1/instances/cc/endpoints/echo", body).await;
            assert_eq!((a.status, a.code()), (400, "bad_request".into()), "{body}");
        }
        // Over 1 MiB: 413.
        let big = format!("{{\"message\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
        let a = api.post("/v1/instances/cc/endpoints/echo", &big).await;
        assert_eq!((a.status, a.code()), (413, "payload_too_large".into()));

        // Unknown instance, endpoint, route; wrong method.
        let a = api.post("/v1/instances/ccc/endpoints/list_items", "").await;
        assert_eq!((a.status, a.code()), (404, "unknown_instance".into()));
        assert!(a.text.contains("did you mean `cc`?"), "{}", a.text);
        let a = api.post("/v1/instances/ccc/auth/test", "").await;
        assert_eq!((a.status, a.code()), (404, "unknown_instance".into()));
        let a = api.post("/v1/instances/cc/endpoints/list_itemz", "").await;
        assert_eq!((a.status, a.code()), (404, "unknown_endpoint".into()));
        assert!(a.text.contains("did you mean `list_items`?"), "{}", a.text);
        let a = api.get("/v1/nothing").await;
        assert_eq!((a.status, a.code()), (404, "not_found".into()));
        let a = api.get("/v1/instances/cc/endpoints/list_items").await;
        assert_eq!((a.status, a.code()), (405, "method_not_allowed".into()));

        // The API failing: 502 with the runtime error's code and the upstream status.
        let a = api
            .post("/v1/instances/cc/endpoints/get_item", r#"{"id": "9999"}"#)
            .await;
        assert_eq!((a.status, a.code()), (502, "status".into()), "{}", a.text);
        assert_eq!(a.json()["error"]["upstream_status"], 404);
        assert!(a.text.contains("There is no item"), "{}", a.text);
        // The provider refusing the token request: 502 auth_rejected.
        env.sandbox.add_fault(sandbox::Fault {
            status: Some(401),
            body: Some(r#"{"error":"invalid_client"}"#.into()),
            ..sandbox::Fault::new("/oauth/token")
        });
        let a = api.post("/v1/instances/cc/auth/test", "").await;
        assert_eq!(
            (a.status, a.code()),
            (502, "auth_rejected".into()),
            "{}",
            a.text
        );
    });
}

#[test]
fn auth_test_shows_credentials_redacted() {
    let env = Env::new();
    env.client_credentials();
    let serve = Serve::start(&env, &[], &[]);
    let api = Api::new(&serve);
    let a = env
        .rt
        .block_on(async { api.post("/v1/instances/cc/auth/test", "").await });
    assert_eq!(a.status, 200, "{}", a.text);
    let doc = a.json();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["instance"], "cc");
    assert_eq!(doc["connector"], "sandbox");
    assert_eq!(doc["auth"], "client_credentials");
    assert_eq!(doc["type"], "oauth2_client_credentials");
    assert_eq!(doc["lifetime_s"], 3600);
    let token = doc["fields"]["access_token"].as_str().unwrap();
    assert!(token.starts_with("<redacted string("), "{token}");
    let issued = env.sandbox.issued();
    assert_eq!(issued.len(), 1);
    for t in &issued {
        assert!(!a.text.contains(t.as_str()), "a token in {}", a.text);
    }
    assert!(!a.text.contains(&env.sandbox.config().client_secret));
}

#[test]
fn a_bad_instance_file_does_not_stop_the_others() {
    let env = Env::new();
    env.client_credentials();
    second_client_instance(&env, "cc2");
    env.sandbox_instance("bad", "client_credential", "  client_id: x\n");
    env.write("broken.yml", "connector: [sandbox\n");
    env.write(
        "dup.yaml",
        &std::fs::read_to_string(env.dir.0.join("cc2.yaml"))
            .unwrap()
            .replacen("connector:", "instance: cc\nconnector:", 1),
    );
    env.write("notes.txt", "not an instance\n");
    env.write("sub/deeper.yaml", "not: [even yaml\n");
    env.write("key.txt", &format!("{API_KEY}\n"));
    let serve = Serve::start(
        &env,
        &["--api-key-file", "key.txt"],
        &[("CONNECTOR_API_KEY", "")],
    );
    let log = serve.log();
    let serving = log.find("serving 2 instances on http://").expect(&log);
    for needle in [
        "error[unknown-auth]",
        "bad.yaml",
        "did you mean `client_credentials`?",
        "broken.yml",
        "error[duplicate-instance]",
        "dup.yaml",
        "warning: 3 of 5 instance files did not load",
    ] {
        let at = log
            .find(needle)
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{log}"));
        assert!(at < serving, "`{needle}` after the serving line:\n{log}");
    }
    assert!(
        !log.contains("deeper.yaml") && !log.contains("notes.txt"),
        "{log}"
    );
    let api = Api::new(&serve);
    env.rt.block_on(async {
        let list = api.get("/v1/instances").await.json();
        let ids: Vec<&str> = list["instances"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["cc", "cc2"]);
        let doc = api.call("cc2", "get_item", json!({"id": 7})).await;
        assert_eq!(doc["records"][0]["id"], 7);
        let a = api.send("GET", "/healthz", None, None).await;
        assert_eq!(a.json()["instances"], 2);
    });
}

#[test]
fn metrics_count_tokens_cache_and_upstream_requests() {
    let env = Env::new();
    env.client_credentials();
    let serve = Serve::start(&env, &[], &[]);
    let api = Api::new(&serve);
    let text = env.rt.block_on(async {
        for _ in 0..3 {
            api.call("cc", "list_items", json!({})).await;
        }
        let a = api
            .post("/v1/instances/cc/endpoints/get_item", r#"{"id": "0"}"#)
            .await;
        assert_eq!(a.status, 502);
        let m = api.get("/metrics").await;
        assert_eq!(m.status, 200);
        assert_eq!(m.content_type, "text/plain; version=0.0.4");
        m.text
    });
    for line in [
        "connector_token_requests_total{outcome=\"success\"} 1",
        "connector_token_requests_total{outcome=\"failure\"} 0",
        // 16 requests for credentials: the first one missed, the others hit.
        "connector_token_cache_misses_total 1",
        "connector_token_cache_hits_total 15",
        "connector_upstream_requests_total{status=\"200\"} 15",
        "connector_upstream_requests_total{status=\"404\"} 1",
        "connector_upstream_requests_total{status=\"error\"} 0",
        "connector_upstream_request_duration_seconds_count 16",
        "connector_token_request_duration_seconds_count 1",
        "connector_http_request_duration_seconds_count{route=\"endpoint\"} 4",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no `{line}` in the metrics:\n{text}"
        );
    }
    assert!(text.contains("# TYPE connector_upstream_request_duration_seconds histogram"));
}

#[test]
fn concurrent_calls_across_instances_share_one_token() {
    let env = Env::new();
    env.client_credentials();
    second_client_instance(&env, "cc2");
    second_client_instance(&env, "cc3");
    let serve = Serve::start(&env, &[], &[]);
    let api = Api::new(&serve);
    let docs = env.rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..60u64 {
            let api = api.clone();
            set.spawn(async move {
                let instance = ["cc", "cc2", "cc3"][(i % 3) as usize];
                api.call(instance, "get_item", json!({"id": i % 120 + 1}))
                    .await
            });
        }
        let mut docs = Vec::new();
        while let Some(d) = set.join_next().await {
            docs.push(d.unwrap());
        }
        docs
    });
    assert_eq!(docs.len(), 60);
    let s = env.sandbox.stats();
    assert_eq!(s.token_requests, 1, "{s:?}");
    assert_eq!(s.unauthorized, 0);
    assert_eq!(s.api_requests, 60);
    // A summary counts the token requests of a fetch its own call made: exactly one call did.
    let fetched: u64 = docs
        .iter()
        .map(|d| d["summary"]["token_requests"].as_u64().unwrap())
        .sum();
    assert_eq!(fetched, 1);
}

#[test]
fn tokens_are_refreshed_in_the_background() {
    // Tokens live 2 s and fall due after 1 s; the refresher looks every 500 ms.
    let env = Env::with(sandbox::Config {
        token_lifetime_s: 2,
        ..Default::default()
    });
    env.client_credentials();
    let serve = Serve::start(&env, &[], &[]);
    let api = Api::new(&serve);
    env.rt.block_on(async {
        let first = api.call("cc", "get_item", json!({"id": "1"})).await;
        assert_eq!(first["summary"]["token_requests"], 1);
        let started = Instant::now();
        let mut refreshes = 0;
        // No call is made while the token falls due: only the refresher can fetch the next
        // one. Right after each refresh, calls find a fresh token and never wait for one.
        while started.elapsed() < Duration::from_millis(3000) {
            let before = env.sandbox.stats().token_requests;
            let deadline = Instant::now() + Duration::from_millis(2500);
            while env.sandbox.stats().token_requests == before {
                assert!(Instant::now() < deadline, "no background refresh");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            refreshes += 1;
            // The sandbox counts the request when it arrives: let the answer reach the cache.
            tokio::time::sleep(Duration::from_millis(50)).await;
            for id in 1..=3 {
                let doc = api.call("cc", "get_item", json!({"id": id})).await;
                assert_eq!(
                    doc["summary"]["token_requests"], 0,
                    "a call waited for a token"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        assert!(refreshes >= 2, "{refreshes} refreshes");
    });
    let s = env.sandbox.stats();
    assert_eq!(s.unauthorized, 0, "{s:?}");
    assert_eq!(s.token_requests, s.tokens_issued);
}

#[test]
fn no_api_key_token_or_secret_in_the_logs_at_trace_level() {
    let env = Env::new();
    env.client_credentials();
    env.write("password.txt", "demo-password\n");
    env.sandbox_instance(
        "pw",
        "password",
        "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n  username: demo\n  password: { file: password.txt }\n",
    );
    let serve = Serve::start(&env, &[], &[("RUST_LOG", "trace")]);
    let api = Api::new(&serve);
    env.rt.block_on(async {
        api.get("/v1/instances").await;
        api.call("cc", "list_items", json!({})).await;
        api.call("pw", "echo", json!({"message": "hello"})).await;
        assert_eq!(api.post("/v1/instances/cc/auth/test", "").await.status, 200);
        assert_eq!(api.post("/v1/instances/pw/auth/test", "").await.status, 200);
        let a = api.send("GET", "/metrics", Some(WRONG_KEY), None).await;
        assert_eq!(a.status, 401);
        api.get("/metrics").await;
    });
    let (status, log) = serve.stop();
    assert!(status.success(), "{status:?}");
    let c = env.sandbox.config();
    let mut forbidden = vec![
        API_KEY.to_owned(),
        WRONG_KEY.to_owned(),
        c.client_secret.clone(),
        url::form_urlencoded::byte_serialize(c.client_secret.as_bytes()).collect(),
        c.password.clone(),
    ];
    forbidden.extend(env.sandbox.issued());
    for r in env.sandbox.requests() {
        if let Some(v) = r.header("authorization") {
            forbidden.push(v.split_once(' ').map_or(v, |(_, v)| v).to_owned());
        }
    }
    assert!(env.sandbox.issued().len() >= 4);
    for f in &forbidden {
        assert!(!log.contains(f.as_str()), "`{f}` in the logs:\n{log}");
    }
    // One line per request, with the route pattern, never the path.
    assert!(log.contains("/v1/instances/{id}/endpoints/{name}"), "{log}");
    assert!(log.contains("status=401"), "{log}");
    assert!(!log.contains("/v1/instances/cc/"), "{log}");
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let env = Env::new();
    env.client_credentials();
    env.sandbox.add_fault(sandbox::Fault {
        delay_ms: 1000,
        ..sandbox::Fault::new("/items")
    });
    let serve = Serve::start(&env, &[], &[]);
    let api = Api::new(&serve);
    let t = Instant::now();
    let call = env
        .rt
        .spawn(async move { api.post("/v1/instances/cc/endpoints/list_items", "").await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !env.sandbox.requests().iter().any(|r| r.path == "/items") {
        assert!(Instant::now() < deadline, "the call never reached the API");
        std::thread::sleep(Duration::from_millis(10));
    }
    let (status, log) = serve.stop();
    let a = env.rt.block_on(call).unwrap();
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json()["records"].as_array().unwrap().len(), 120);
    assert!(t.elapsed() >= Duration::from_millis(1000));
    assert_eq!(status.code(), Some(0), "{log}");
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let env = Env::new();
    env.client_credentials();
    let dir = env.dir.0.to_str().unwrap().to_owned();
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_connector"));
        c.arg("serve");
        if !args.contains(&"--instances") {
            c.args(["--instances", &dir]);
        }
        c.args(args)
            .current_dir(&env.dir.0)
            .env_remove("RUST_LOG")
            .env_remove("CONNECTOR_API_KEY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            c.env(k, v);
        }
        let mut child = c.spawn().unwrap();
        let status = wait(&mut child, Duration::from_secs(15)).expect("serve exits");
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
        (status.code(), err)
    };
    let key = [("CONNECTOR_API_KEY", API_KEY)];

    let (code, err) = run(&["--listen", "0.0.0.0:0"], &key);
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: ") && err.contains("--allow-remote"),
        "{err}"
    );

    for envs in [&[][..], &[("CONNECTOR_API_KEY", "")][..]] {
        let (code, err) = run(&["--listen", "127.0.0.1:0"], envs);
        assert_eq!(code, Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("error: no API key") && err.contains("CONNECTOR_API_KEY"),
            "{err}"
        );
    }
    let (code, err) = run(
        &["--listen", "127.0.0.1:0", "--api-key-env", "MY_SERVE_KEY"],
        &key,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("MY_SERVE_KEY"), "{err}");
    let (code, err) = run(
        &["--listen", "127.0.0.1:0", "--api-key-file", "missing.txt"],
        &key,
    );
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("missing.txt"), "{err}");

    // The token cache key: unset, not a key, or without a token cache.
    let redis = [
        "--listen",
        "127.0.0.1:0",
        "--token-cache",
        "redis://127.0.0.1:1/0",
    ];
    let (code, err) = run(
        &[&redis[..], &["--token-cache-key-env", "SERVE_SEAL"]].concat(),
        &key,
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("SERVE_SEAL"), "{err}");
    let (code, err) = run(
        &[&redis[..], &["--token-cache-key-env", "SERVE_SEAL"]].concat(),
        &[key[0], ("SERVE_SEAL", "not-a-key")],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("32 bytes") && !err.contains("not-a-key"),
        "{err}"
    );
    let (code, err) = run(&["--token-cache-key-env", "SERVE_SEAL"], &key);
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(
        &["--listen", "127.0.0.1:0", "--token-cache", "http://nope"],
        &key,
    );
    assert_eq!(code, Some(2), "{err}");

    // A folder that does not exist.
    let (code, err) = run(&["--instances", "no-such-dir"], &key);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn a_redis_token_cache_warns_without_a_key_and_seals_with_one() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let env = Env::new();
    env.client_credentials();
    let tokens_in_redis = || -> Vec<String> {
        redis
            .keys("connector:token:*")
            .iter()
            .map(|k| String::from_utf8_lossy(&redis.cmd(&["GET", k]).unwrap()).into_owned())
            .collect()
    };

    // Without a key: one warning, tokens stored as they are.
    let serve = Serve::start(&env, &["--token-cache", &redis.url()], &[]);
    let api = Api::new(&serve);
    env.rt
        .block_on(async { api.call("cc", "get_item", json!({"id": "1"})).await });
    let log = serve.log();
    assert_eq!(
        log.matches("stored in Redis as bearer credentials").count(),
        1,
        "{log}"
    );
    let stored = tokens_in_redis();
    assert_eq!(stored.len(), 1);
    assert!(stored[0].contains(env.sandbox.issued()[0].as_str()));
    drop(serve);
    redis.cmd(&["FLUSHALL"]);

    // With a key: no warning, the token sealed; another process reads it.
    env.write("seal.key", &format!("{}\n", "ab".repeat(32)));
    let args = [
        "--token-cache",
        &redis.url(),
        "--token-cache-key-file",
        "seal.key",
    ];
    let first = Serve::start(&env, &args, &[]);
    let second = Serve::start(&env, &args, &[]);
    let (a, b) = (Api::new(&first), Api::new(&second));
    env.rt.block_on(async {
        a.call("cc", "get_item", json!({"id": "1"})).await;
        let doc = b.call("cc", "get_item", json!({"id": "2"})).await;
        assert_eq!(doc["summary"]["token_requests"], 0, "read from Redis");
    });
    assert!(
        !first.log().contains("bearer credentials"),
        "{}",
        first.log()
    );
    let stored = tokens_in_redis();
    assert_eq!(stored.len(), 1);
    for t in env.sandbox.issued() {
        assert!(!stored[0].contains(t.as_str()));
    }
    assert_eq!(env.sandbox.stats().token_requests, 2, "one per cache");
}

#[test]
fn records_are_answered_as_the_api_sent_them() {
    let env = Env::new();
    env.client_credentials();
    let serve = Serve::start(&env, &[], &[]);
    let api = Api::new(&serve);
    env.sandbox.add_fault(sandbox::Fault {
        status: Some(200),
        body: Some(
            "{\"items\": [\n  {\"id\": 12345678901234567890123, \"price\": 1.50},\n  {\"id\": 2}\n], \"total\": 2}"
                .into(),
        ),
        ..sandbox::Fault::new("/items")
    });
    env.rt.block_on(async {
        let path = "/v1/instances/cc/endpoints/list_items";
        let a = api.post(path, "{}").await;
        assert_eq!(a.status, 200, "{}", a.text);
        // Numbers no 64-bit type holds, and trailing zeros, are not rewritten.
        assert!(
            a.text.starts_with(
                r#"{"records":[{"id":12345678901234567890123,"price":1.50},{"id":2}],"summary":{"#
            ),
            "{}",
            a.text
        );
        let doc = a.json();
        assert_eq!(doc["summary"]["records"], 2);
        assert_eq!(doc["warnings"], json!([]));

        env.sandbox.add_fault(sandbox::Fault {
            status: Some(200),
            body: Some(r#"{"items": [], "total": 0}"#.into()),
            ..sandbox::Fault::new("/items")
        });
        let a = api.post(path, "{}").await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert!(
            a.text.starts_with(r#"{"records":[],"summary":{"#),
            "{}",
            a.text
        );
        assert_eq!(a.json()["summary"]["records"], 0);
    });
}

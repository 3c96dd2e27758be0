//! `connector serve` under load and abuse, over real HTTP on loopback against the real binary:
//! a bounded load while the provider's token endpoint fails intermittently (every request
//! answered, every error JSON, memory bounded), oversized, malformed, mistyped and misrouted
//! requests (JSON errors, answered without reading forever), and slow clients (a slowloris
//! head, a promised body that never comes, an idle connection: none blocks the others, each
//! is closed or answered 408 within a bounded wait).
//!
//! No assertion is on a duration: the waits are liveness bounds.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::Fault;
use serde_json::Value;
use support::serve::{Serve, API_KEY};
use support::Env;

/// Calls made by the load test.
const LOAD_REQUESTS: usize = 2_000;
/// Concurrent callers of the load test.
const LOAD_CALLERS: usize = 32;
/// The most resident memory `serve` may have after the load (a generous bound, not a target).
const RSS_BOUND_KIB: u64 = 200 * 1024;
/// The serve limits, as `runtime::serve` exports them.
const BODY_LIMIT: usize = runtime::serve::BODY_LIMIT;
const HEAD_TIMEOUT: Duration = runtime::serve::HEAD_TIMEOUT;
const BODY_TIMEOUT: Duration = runtime::serve::BODY_TIMEOUT;
/// How much longer than a serve timeout a test waits for its effect (a liveness bound).
const SLACK: Duration = Duration::from_secs(5);

/// A sandbox with the client credentials instance `cc`, tokens living `lifetime_s`, and a
/// `connector serve` over it.
fn setup(lifetime_s: u64) -> (Env, Serve) {
    let env = Env::with(sandbox::Config {
        token_lifetime_s: lifetime_s,
        ..Default::default()
    });
    env.client_credentials();
    let serve = Serve::start(&env, &[]);
    (env, serve)
}

/// `127.0.0.1:PORT` of a serve URL.
fn addr(serve: &Serve) -> String {
    serve.url.trim_start_matches("http://").to_owned()
}

/// The resident set size of a process in KiB (`VmRSS` of `/proc/PID/status`); `None` where
/// there is no procfs.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the load test saw.
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    ok: usize,
    /// Non-2xx answers with a JSON error, by status and code.
    errors: BTreeMap<(u16, String), usize>,
    /// Answers that were neither a 2xx with records nor a JSON error.
    malformed: Vec<String>,
    /// Requests that got no HTTP answer at all.
    dropped: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.ok += other.ok;
        for (k, n) in other.errors {
            *self.errors.entry(k).or_default() += n;
        }
        self.malformed.extend(other.malformed);
        self.dropped.extend(other.dropped);
    }

    fn json_errors(&self) -> usize {
        self.errors.values().sum()
    }
}

/// The `error.code` of a JSON error body.
fn error_code(text: &str) -> Option<String> {
    let doc: Value = serde_json::from_str(text).ok()?;
    let code = doc["error"]["code"].as_str()?;
    (!code.is_empty() && doc["error"]["message"].is_string()).then(|| code.to_owned())
}

/// One caller of the load test: takes request numbers from `next` until `LOAD_REQUESTS`.
async fn caller(client: reqwest::Client, base: String, next: Arc<AtomicUsize>) -> Tally {
    let mut t = Tally::default();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= LOAD_REQUESTS {
            return t;
        }
        t.sent += 1;
        let sent = client
            .post(format!("{base}/v1/instances/cc/endpoints/get_item"))
            .bearer_auth(API_KEY)
            .header("content-type", "application/json")
            .body(format!(r#"{{"id": "{}"}}"#, n % 100 + 1))
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                t.dropped.push(format!("#{n}: {e:?}"));
                continue;
            }
        };
        let status = resp.status();
        let text = match resp.text().await {
            Ok(text) => text,
            Err(e) => {
                t.dropped.push(format!("#{n} ({status}), body: {e:?}"));
                continue;
            }
        };
        if status.is_success() {
            let records = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|d| d["records"].as_array().map(Vec::len));
            if records == Some(1) {
                t.ok += 1;
            } else {
                t.malformed.push(format!("#{n} {status}: {text}"));
            }
        } else if let Some(code) = error_code(&text) {
            *t.errors.entry((status.as_u16(), code)).or_default() += 1;
        } else {
            t.malformed.push(format!("#{n} {status}: {text}"));
        }
    }
}

/// Requests sent before the token endpoint goes down for the rest of the load.
const OUTAGE_AFTER: usize = LOAD_REQUESTS * 4 / 5;

/// Abuses the token endpoint while the load runs (until `done`), by the load's progress
/// (`next`, the requests started) rather than by time:
/// - up to [`OUTAGE_AFTER`] requests, every other token request fails (503, 500, 503, …):
///   the runtime's retries ride that out;
/// - after that, every token request fails with a non-JSON body: fetches fail, and calls that
///   need a token fail with a 502 (the runtime remembers the failure for its cooldown);
/// - all along, every token is revoked every 100 ms (the API answers 401, callers drop the
///   token and fetch a new one), on top of tokens that live 1 s.
async fn chaos(sandbox: &sandbox::Sandbox, next: &AtomicUsize, done: &AtomicBool) -> usize {
    for i in 0..200 {
        sandbox.add_fault(Fault {
            skip: 1,
            times: 1,
            status: Some(if i % 2 == 0 { 503 } else { 500 }),
            ..Fault::new("/oauth/token")
        });
    }
    let mut down = false;
    let mut revocations = 0;
    while !done.load(Ordering::Relaxed) {
        if !down && next.load(Ordering::Relaxed) >= OUTAGE_AFTER {
            sandbox.clear_faults();
            sandbox.add_fault(Fault {
                times: 0,
                status: Some(503),
                body: Some("<html>down for maintenance</html>".into()),
                content_type: Some("text/html".into()),
                ..Fault::new("/oauth/token")
            });
            down = true;
        }
        sandbox.expire_tokens();
        revocations += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sandbox.clear_faults();
    revocations
}

#[test]
fn a_bounded_load_with_a_flaky_token_endpoint_answers_every_request() {
    // Tokens live 1 s: the background refresher and the callers re-fetch them during the run,
    // on top of the revocations.
    let (env, serve) = setup(1);
    let base = serve.url.clone();
    let rss_before = rss_kib(serve.pid());
    let (tally, revocations) = env.rt.block_on(async {
        let client = reqwest::Client::builder()
            // A safety net against a hung request (counted as dropped), not a measure.
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let next = Arc::new(AtomicUsize::new(0));
        let done = AtomicBool::new(false);
        let load = async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..LOAD_CALLERS {
                set.spawn(caller(client.clone(), base.clone(), next.clone()));
            }
            let mut tally = Tally::default();
            while let Some(t) = set.join_next().await {
                tally.merge(t.expect("a caller panicked"));
            }
            done.store(true, Ordering::Relaxed);
            tally
        };
        tokio::join!(load, chaos(&env.sandbox, &next, &done))
    });
    let stats = env.sandbox.stats();
    let rss_after = rss_kib(serve.pid());
    eprintln!(
        "load: {} requests by {LOAD_CALLERS} callers: {} ok, {} JSON errors {:?}, {} malformed, \
         {} dropped; {revocations} revocations; sandbox: {} token requests, {} tokens issued, {} \
         API requests, {} 401s; serve RSS {:?} KiB before, {:?} KiB after",
        tally.sent,
        tally.ok,
        tally.json_errors(),
        tally.errors,
        tally.malformed.len(),
        tally.dropped.len(),
        stats.token_requests,
        stats.tokens_issued,
        stats.api_requests,
        stats.unauthorized,
        rss_before,
        rss_after,
    );
    assert_eq!(tally.sent, LOAD_REQUESTS);
    assert!(
        tally.dropped.is_empty(),
        "requests without an HTTP answer: {:?}",
        &tally.dropped[..tally.dropped.len().min(10)]
    );
    assert!(
        tally.malformed.is_empty(),
        "answers neither records nor a JSON error: {:?}",
        &tally.malformed[..tally.malformed.len().min(10)]
    );
    assert_eq!(tally.ok + tally.json_errors(), LOAD_REQUESTS);
    assert!(tally.ok > 0, "no call succeeded: {:?}", tally.errors);
    for (status, code) in tally.errors.keys() {
        assert!(
            (400..600).contains(status),
            "a JSON error with status {status} ({code})"
        );
    }
    // The faults and revocations did happen during the run.
    assert!(
        stats.token_requests > 1 && stats.unauthorized > 0,
        "{stats:?}"
    );

    // Still serving, and memory bounded.
    let health = env.rt.block_on(async {
        reqwest::get(format!("{}/healthz", serve.url))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(health, 200);
    match rss_after {
        Some(kib) => assert!(kib < RSS_BOUND_KIB, "serve RSS {kib} KiB after the load"),
        None => eprintln!("no /proc/PID/status here: RSS not checked"),
    }
}

/// An HTTP answer read off a raw connection.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `error.code`; panics unless the answer is a JSON error.
    fn code(&self) -> String {
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "not JSON: {self:?}"
        );
        error_code(&self.body).unwrap_or_else(|| panic!("not a JSON error: {self:?}"))
    }
}

/// Reads one answer (a head and a `Content-Length` body) off `stream`; `None` when the
/// connection is closed, reset or silent for `limit` before a whole answer came.
fn read_answer(stream: &mut TcpStream, limit: Duration) -> Option<Raw> {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    Some(Raw {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Sends `head` (and `body`) on a new connection and reads the answer (at most 10 s). The
/// server may answer before it has read the whole body (a 404 does not read it) and close
/// the connection: writing the rest then fails, and the answer is read all the same.
fn raw(addr: &str, head: &str, body: &[u8]) -> Raw {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    read_answer(&mut s, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no answer to {}", head.lines().next().unwrap_or_default()))
}

/// A `POST path` with the API key, `content_type` and `body`.
fn post(addr: &str, path: &str, content_type: &str, body: &[u8]) -> Raw {
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    raw(addr, &head, body)
}

/// Whether the server closes `stream` (EOF or reset) within `limit`, reading and discarding
/// what it sends meanwhile; the answer's status line, if it sent one.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> (bool, Option<String>) {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (false, None);
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (false, None)
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&seen);
    (true, text.lines().next().map(str::to_owned))
}

#[test]
fn oversized_malformed_mistyped_and_misrouted_requests_answer_json_errors() {
    let (env, serve) = setup(3600);
    let addr = addr(&serve);
    let endpoint = "/v1/instances/cc/endpoints/get_item";

    // A declared length far over the limit, and only a little of it sent: 413 at once, the
    // server does not wait for the rest.
    let mut s = TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST {endpoint} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"id\": \"",
        64 * BODY_LIMIT
    );
    s.write_all(head.as_bytes()).unwrap();
    let a = read_answer(&mut s, Duration::from_secs(10)).expect("an answer to a 64 MiB promise");
    assert_eq!((a.status, a.code()), (413, "payload_too_large".into()));
    drop(s);

    // A chunked body without a length that grows past the limit: 413 once the limit is
    // passed, while the client is still sending.
    let mut s = TcpStream::connect(&addr).unwrap();
    let head = format!(
        "POST {endpoint} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0;
        // Up to 4 times the limit; the server stops reading (and closes) long before.
        while sent < 4 * BODY_LIMIT {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if writer.write_all(&framed).is_err() {
                break;
            }
            sent += chunk.len();
        }
        sent
    });
    let a = read_answer(&mut s, Duration::from_secs(10)).expect("an answer to a chunked flood");
    assert_eq!((a.status, a.code()), (413, "payload_too_large".into()));
    let _ = s.shutdown(Shutdown::Both);
    let sent = sender.join().unwrap();
    eprintln!("chunked flood: 413 after the client sent at most {sent} bytes");

    // Bodies that are not JSON, or not an object: 400 bad_request. (serve.rs has `{`,
    // `[1, 2]`, `"text"` and `null`.)
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let malformed: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", br#"{"id": "1"#.to_vec()),
        ("trailing comma", br#"{"id": "1",}"#.to_vec()),
        ("single quotes", br#"{'id': '1'}"#.to_vec()),
        ("two documents", br#"{"id": "1"} {"id": "2"}"#.to_vec()),
        ("invalid UTF-8", b"{\"id\": \"\xff\xfe\"}".to_vec()),
        ("a NUL byte", b"{\"id\": \"1\"}\0".to_vec()),
        ("a byte order mark", b"\xef\xbb\xbf{\"id\": \"1\"}".to_vec()),
        ("100,000 nested arrays", deep.into_bytes()),
        ("a number out of range", br#"{"id": 1e400}"#.to_vec()),
    ];
    for (what, body) in &malformed {
        let a = post(&addr, endpoint, "application/json", body);
        assert_eq!((a.status, a.code()), (400, "bad_request".into()), "{what}");
    }
    // 100,000 nested objects as an input's value: refused, not recursed into.
    let deep_object = format!(
        "{{\"id\": {}1{}}}",
        "{\"a\":".repeat(100_000),
        "}".repeat(100_000)
    );
    let a = post(&addr, endpoint, "application/json", deep_object.as_bytes());
    assert!(
        a.status == 400 && ["bad_request", "invalid_input"].contains(&a.code().as_str()),
        "{a:?}"
    );

    // Another content type: a body that is not JSON is a 400 JSON error whatever it claims
    // to be; a JSON object is accepted whatever the type (`curl -d` sends form-urlencoded).
    let mistyped: [(&str, &[u8]); 4] = [
        ("application/x-www-form-urlencoded", b"id=1"),
        ("text/plain", b"id is 1"),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data; name=\"id\"\r\n\r\n1\r\n--x--\r\n",
        ),
        ("application/octet-stream", b"\x00\x01\x02\x03"),
    ];
    for (content_type, body) in mistyped {
        let a = post(&addr, endpoint, content_type, body);
        assert_eq!(
            (a.status, a.code()),
            (400, "bad_request".into()),
            "{content_type}"
        );
    }
    let a = post(
        &addr,
        endpoint,
        "application/x-www-form-urlencoded",
        br#"{"id": "7"}"#,
    );
    assert_eq!(a.status, 200, "{a:?}");

    // Unknown instances, endpoints and routes beyond serve.rs's: an oversized body to an
    // unknown instance, odd ids, a long path, dot segments, a trailing slash, an unknown
    // version. Every one a 4xx JSON error.
    // The instance is looked up before the body is read: 404, not 413.
    let big = vec![b' '; BODY_LIMIT + 1];
    let a = post(
        &addr,
        "/v1/instances/nope/endpoints/get_item",
        "application/json",
        &big,
    );
    assert_eq!((a.status, a.code()), (404, "unknown_instance".into()));
    let long_id = "x".repeat(4000);
    let routes: Vec<(String, u16, &str)> = vec![
        (
            "/v1/instances/%F0%9F%92%A9/endpoints/get_item".into(),
            404,
            "unknown_instance",
        ),
        (
            "/v1/instances/%FF%FE/endpoints/get_item".into(),
            400,
            "bad_request",
        ),
        (
            format!("/v1/instances/{long_id}/endpoints/get_item"),
            404,
            "unknown_instance",
        ),
        (
            format!("/v1/instances/cc/endpoints/{long_id}"),
            404,
            "unknown_endpoint",
        ),
        (
            "/v1/instances/cc/endpoints/get_item/".into(),
            404,
            "not_found",
        ),
        ("/v1/instances/cc/endpoints/".into(), 404, "not_found"),
        ("/v1/instances/../../healthz".into(), 404, "not_found"),
        (
            "/v1/instances/cc/endpoints/..%2f..%2fhealthz".into(),
            404,
            "unknown_endpoint",
        ),
        (
            "/v2/instances/cc/endpoints/get_item".into(),
            404,
            "not_found",
        ),
        ("/".into(), 404, "not_found"),
    ];
    for (path, status, code) in &routes {
        let a = post(&addr, path, "application/json", br#"{"id": "1"}"#);
        assert_eq!(
            (a.status, a.code().as_str()),
            (*status, *code),
            "{}",
            &path[..path.len().min(80)]
        );
    }
    // The server is fine afterwards.
    let a = post(&addr, endpoint, "application/json", br#"{"id": "3"}"#);
    assert_eq!(a.status, 200, "{a:?}");
    drop(env);
}

/// A request to `get_item` made on a fresh connection while slow clients hold theirs: it must
/// complete normally.
fn normal_call(addr: &str) {
    let a = post(
        addr,
        "/v1/instances/cc/endpoints/get_item",
        "application/json",
        br#"{"id": "2"}"#,
    );
    assert_eq!(a.status, 200, "{a:?}");
}

#[test]
fn slow_clients_do_not_block_others_and_are_cut_off() {
    let (env, serve) = setup(3600);
    let addr = addr(&serve);
    let head = format!(
        "POST /v1/instances/cc/endpoints/get_item HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n\
         X-Padding: {}\r\n\r\n",
        "p".repeat(200)
    );

    // Slowloris: 16 connections sending the head one byte every 100 ms, never finishing it
    // within the head timeout.
    let stop = Arc::new(AtomicBool::new(false));
    let mut drips = Vec::new();
    for _ in 0..16 {
        let s = TcpStream::connect(&addr).unwrap();
        let mut writer = s.try_clone().unwrap();
        let bytes = head.clone().into_bytes();
        let stop = stop.clone();
        let thread = std::thread::spawn(move || {
            for b in bytes {
                if stop.load(Ordering::Relaxed) || writer.write_all(&[b]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        drips.push((s, thread));
    }
    // A head sent whole, promising a body that never comes.
    let mut starved = TcpStream::connect(&addr).unwrap();
    starved
        .write_all(
            format!(
                "POST /v1/instances/cc/endpoints/get_item HTTP/1.1\r\nHost: {addr}\r\n\
                 Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n\
                 Content-Length: 20\r\n\r\n{{\"id\""
            )
            .as_bytes(),
        )
        .unwrap();
    // A connection that sends nothing at all.
    let mut silent = TcpStream::connect(&addr).unwrap();

    // Meanwhile other clients are served normally, several times over.
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        normal_call(&addr);
    }
    let served_in = started.elapsed();

    // The slow head connections are closed by the server (hyper answers nothing to a head
    // that times out: it closes the connection).
    let limit = HEAD_TIMEOUT + SLACK;
    for (s, _) in &mut drips {
        let (closed, status) = closed_within(s, limit.saturating_sub(started.elapsed()));
        assert!(closed, "a slowloris connection still open after {limit:?}");
        if let Some(line) = status {
            assert!(line.starts_with("HTTP/1.1 4"), "{line}");
        }
    }
    stop.store(true, Ordering::Relaxed);
    for (_, t) in drips {
        t.join().unwrap();
    }
    let (closed, _) = closed_within(&mut silent, limit.saturating_sub(started.elapsed()));
    assert!(closed, "a silent connection still open after {limit:?}");

    // The starved body is answered 408 with a JSON error, and the connection closed.
    let limit = BODY_TIMEOUT + SLACK;
    let a = read_answer(&mut starved, limit.saturating_sub(started.elapsed()))
        .unwrap_or_else(|| panic!("no answer to a starved body after {limit:?}"));
    assert_eq!(
        (a.status, a.code()),
        (408, "request_timeout".into()),
        "{a:?}"
    );
    let (closed, _) = closed_within(&mut starved, SLACK);
    assert!(closed, "a starved connection still open after its 408");
    eprintln!(
        "slow clients: 5 normal calls served in {served_in:?} beside 16 slowloris heads, a \
         starved body and a silent connection; all cut off within {:?}",
        started.elapsed()
    );

    // And the server still serves.
    normal_call(&addr);
    drop(env);
}

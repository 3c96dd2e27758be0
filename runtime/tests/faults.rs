//! The fault matrix: every fault of DESIGN §5 / `docs/runtime.md` ("Endpoints", "Errors",
//! "Token responses are read leniently"), once against the token endpoint and once against an
//! API endpoint, each case an end-to-end test over loopback.
//!
//! - The **token** target: `list_items` of a fresh connection, whose first token request meets
//!   the fault. The token endpoint retries 429, 500, 502, 503 and 504 (3 attempts, honouring
//!   `Retry-After`), and connection errors; it never follows redirects, times out after 10 s and
//!   accepts at most 1 MiB.
//! - The **API** target: `list_items`, offset pagination, 120 items at 50 per page (3 pages),
//!   the fault on page 3 (`skip: 2` on `/items`). Endpoints retry 429, 502, 503 and 504 (the
//!   default `retry.statuses`), connection errors and timeouts of a GET, 3 attempts in all.
//!   A failed run must not lose the caller's data: the 100 records of pages 1–2 were handed
//!   to the callback and printed by `connector run`, which exits non-zero.
//!
//! Attempts are counted where the requests land: the sandbox's request log, or the log of the
//! raw TCP server of this file (for what the sandbox cannot do: reset a connection mid-body, a
//! body that never ends, a chunked body without a length, a port that stops listening). Every
//! run also counts the runtime's own `retrying` log events, which must agree.
//!
//! Every failing case is also run through `connector run` (concurrently, against its own
//! sandbox), and `serve_answers_json_errors` checks `connector serve` for the same failures.

mod support;

use std::path::PathBuf;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use runtime::run::{Connection, Stats};
use runtime::ErrorKind;
use sandbox::Fault;
use serde_json::Value;
use support::{stderr, stdout, Env};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------------------------------------
// The matrix

/// One test per case.
macro_rules! matrix {
    ($($name:ident: $case:expr;)*) => {
        $(
            #[test]
            fn $name() {
                run($case);
            }
        )*
    };
}

// Every `api_*` case that ends in an error also checks, with `assert_failed_page_is_named`
// (below), that the error and `connector run` say page 3 failed after 2 pages (100 records).
matrix! {
    // 429 with `Retry-After: 1` once: the wait is honoured, the second attempt succeeds.
    // (auth.rs `a_429_waits_for_retry_after`, endpoints.rs `retry_after_429_is_honoured`.)
    token_429_retry_after_seconds:
        token(|| sandbox(with_header(once(429), "Retry-After", "1")), ok(2, 900));
    api_429_retry_after_seconds:
        api(|| sandbox(with_header(once(429), "Retry-After", "1")), ok(2, 900));
    // 429 with `Retry-After: <HTTP date ~2 s ahead>` once: more than any backoff is waited
    // (the date has a 1 s resolution, so between 1 and 2 s).
    token_429_retry_after_http_date:
        token(|| sandbox(with_header(once(429), "Retry-After", &http_date_in(2))), ok(2, 500));
    api_429_retry_after_http_date:
        api(|| sandbox(with_header(once(429), "Retry-After", &http_date_in(2))), ok(2, 500));
    // 429 without `Retry-After`, for ever: backoff, then the error after 3 attempts.
    token_429_without_retry_after:
        token(
            || sandbox(always(429)),
            fails(3, TOKEN_STATUS, Some(429), &["token request", "429 Too Many Requests"]),
        );
    api_429_without_retry_after:
        api(
            || sandbox(always(429)),
            fails(
                3,
                &[ErrorKind::Status],
                Some(429),
                &["GET http://", "/items", "429 Too Many Requests"],
            ),
        );
    // 500 for ever: retried by the token endpoint; not by endpoints, whose default
    // `retry.statuses` is [429, 502, 503, 504] (docs/runtime.md; DESIGN §5 says "5xx").
    token_500:
        token(
            || sandbox(always(500)),
            fails(3, TOKEN_STATUS, Some(500), &["token request", "500 Internal Server Error"]),
        );
    api_500:
        api(
            || sandbox(always(500)),
            fails(1, &[ErrorKind::Status], Some(500), &["/items", "500 Internal Server Error"]),
        );
    token_502:
        token(
            || sandbox(always(502)),
            fails(3, TOKEN_STATUS, Some(502), &["token request", "502 Bad Gateway"]),
        );
    api_502:
        api(
            || sandbox(always(502)),
            fails(3, &[ErrorKind::Status], Some(502), &["/items", "502 Bad Gateway"]),
        );
    token_503:
        token(
            || sandbox(always(503)),
            fails(3, TOKEN_STATUS, Some(503), &["token request", "503 Service Unavailable"]),
        );
    api_503:
        api(
            || sandbox(always(503)),
            fails(3, &[ErrorKind::Status], Some(503), &["/items", "503 Service Unavailable"]),
        );
    token_504:
        token(
            || sandbox(always(504)),
            fails(3, TOKEN_STATUS, Some(504), &["token request", "504 Gateway Timeout"]),
        );
    api_504:
        api(
            || sandbox(always(504)),
            fails(3, &[ErrorKind::Status], Some(504), &["/items", "504 Gateway Timeout"]),
        );
    // 503 twice, then the real answer: the third and last attempt succeeds, after a backoff
    // (token: 200 ms doubled with jitter, ≥ 300 ms; the endpoint here: 50 ms, ≥ 75 ms).
    token_503_twice_then_ok: token(|| sandbox(times(503, 2)), ok(3, 280));
    api_503_twice_then_ok: api(|| sandbox(times(503, 2)), ok(3, 70));
    // Connection refused: the token URL is a port nobody listens on; the API server stops
    // listening after page 2. Retried (nothing was sent), 3 attempts.
    token_connection_refused:
        token(
            || Inject::Closed,
            fails(
                3,
                &[ErrorKind::Connect],
                None,
                &["token request failed", "cannot connect to 127.0.0.1:", "Connection refused"],
            ),
        );
    api_connection_refused:
        api(
            || Inject::Raw(Misbehave::Refuse),
            fails(
                3,
                &[ErrorKind::Connect],
                None,
                &["GET http://", "/items", "cannot connect to 127.0.0.1:", "Connection refused"],
            ),
        );
    // The connection is reset (RST) in the middle of the body: a connection error, retried.
    token_connection_reset_mid_body:
        token(
            || Inject::Raw(Misbehave::ResetMidBody),
            fails(
                3,
                &[ErrorKind::Connect],
                None,
                &["token request failed", "/oauth/token", "reset"],
            ),
        );
    api_connection_reset_mid_body:
        api(
            || Inject::Raw(Misbehave::ResetMidBody),
            fails(3, &[ErrorKind::Connect], None, &["GET http://", "/items", "reset"]),
        );
    // Headers, then a body that trickles for ever: the timeout covers the whole exchange.
    // Token requests (POST) time out after 10 s and are not retried; a GET is, after its
    // `timeout_ms` (600 here).
    token_response_never_ends:
        token(
            || Inject::Raw(Misbehave::Trickle),
            fails(
                1,
                &[ErrorKind::Timeout],
                None,
                &["token request failed", "/oauth/token", "no response within 10000 ms"],
            ),
        );
    api_response_never_ends:
        api(
            || Inject::Raw(Misbehave::Trickle),
            fails(
                3,
                &[ErrorKind::Timeout],
                None,
                &["GET http://", "/items", "no response within 600 ms"],
            ),
        );
    // A body over the cap (1 MiB for tokens, `max_response_bytes: 65536` here), with a
    // `Content-Length`: refused at once, not retried.
    token_body_larger_than_the_cap:
        token(
            || sandbox(body(200, "application/json", &"x".repeat(1024 * 1024 + 1))),
            fails(
                1,
                &[ErrorKind::Response],
                None,
                &["token request failed", "larger than 1048576 bytes"],
            ),
        );
    api_body_larger_than_the_cap:
        api(
            || sandbox(body(200, "application/json", &" ".repeat(70_000))),
            fails(
                1,
                &[ErrorKind::Response],
                None,
                &["/items", "larger than 65536 bytes", "max_response_bytes"],
            ),
        );
    // The same, chunked, without a length: the cap applies while the body streams in.
    token_chunked_body_larger_than_the_cap:
        token(
            || Inject::Raw(Misbehave::Chunked(1024 * 1024 + 64 * 1024)),
            fails(
                1,
                &[ErrorKind::Response],
                None,
                &["token request failed", "larger than 1048576 bytes"],
            ),
        );
    api_chunked_body_larger_than_the_cap:
        api(
            || Inject::Raw(Misbehave::Chunked(100 * 1024)),
            fails(1, &[ErrorKind::Response], None, &["/items", "larger than 65536 bytes"]),
        );
    // A 200 whose JSON is cut short: an error naming what came back, not retried.
    token_truncated_json:
        token(
            || sandbox(body(200, "application/json", TRUNCATED_TOKEN)),
            fails(
                1,
                &[ErrorKind::AuthResponse],
                Some(200),
                &["token request", "200 OK", "not JSON", "application/json"],
            ),
        );
    api_truncated_json:
        api(
            || sandbox(body(200, "application/json", TRUNCATED_PAGE)),
            fails(
                1,
                &[ErrorKind::Response],
                None,
                &["/items", "200 OK", "not JSON", "application/json"],
            ),
        );
    // HTML where JSON was expected (a login page, a proxy's error page).
    token_html_instead_of_json:
        token(
            || sandbox(body(200, "text/html; charset=utf-8", HTML)),
            fails(
                1,
                &[ErrorKind::AuthResponse],
                Some(200),
                &["token request", "200 OK", "not JSON", "text/html"],
            ),
        );
    api_html_instead_of_json:
        api(
            || sandbox(body(200, "text/html; charset=utf-8", HTML)),
            fails(1, &[ErrorKind::Response], None, &["/items", "200 OK", "not JSON", "text/html"]),
        );
    // A 200 with an `error` member. The token endpoint: a rejection quoting the server
    // (auth.rs `a_200_with_an_error_member_is_a_rejection`).
    token_200_with_error:
        token(
            || sandbox(body(200, "application/json", ERROR_200)),
            fails(
                1,
                &[ErrorKind::AuthRejected],
                Some(200),
                &["token request", "temporarily_unavailable", "(Try again later)"],
            ),
        );
    // The API endpoint: page 3 is `{"error": ...}` with a 200 and no `/items`: an error (it
    // was once read as an empty last page, a "success" with 100 of the 120 records).
    api_200_with_error:
        api(|| sandbox(body(200, "application/json", ERROR_200)), Expect::FailsOrWarns(&["error"]));
    // A 200 without the token (auth.rs
    // `a_200_without_the_token_names_the_key_and_the_keys_present`).
    token_200_without_the_token:
        token(
            || sandbox(body(200, "application/json", r#"{"token": "abc", "expires_in": 3600}"#)),
            fails(
                1,
                &[ErrorKind::AuthResponse],
                None,
                &[
                    "token request",
                    "200 OK",
                    "without `access_token`",
                    "keys in the response: `token`, `expires_in`",
                ],
            ),
        );
    // `expires_in` read leniently: an unusable one is the method's `default_lifetime_s` (900
    // here) and a warning; a huge one is accepted (capped, no overflow); a numeric string is
    // accepted; a missing one is the default, silently. The token is then reused by the next
    // run: no token request per call, whatever the lifetime said.
    token_expires_in_negative:
        token(
            || token_response(r#""expires_in": -60"#),
            lenient(900, 900, &["`expires_in` is not a positive number", "assuming 900 s"]),
        );
    token_expires_in_zero:
        token(
            || token_response(r#""expires_in": 0"#),
            lenient(900, 900, &["`expires_in` is not a positive number", "assuming 900 s"]),
        );
    token_expires_in_huge:
        token(
            || token_response(r#""expires_in": 1000000000000"#),
            lenient(365 * 86_400, 10 * 366 * 86_400, &[]),
        );
    token_expires_in_numeric_string:
        token(|| token_response(r#""expires_in": "3600""#), lenient(3600, 3600, &[]));
    token_expires_in_text:
        token(
            || token_response(r#""expires_in": "soon""#),
            lenient(900, 900, &["`expires_in` is not a positive number", "assuming 900 s"]),
        );
    token_expires_in_missing:
        token(|| token_response(r#""scope": "items:read""#), lenient(900, 900, &[]));
    // `token_type` other than Bearer: a warning naming it (auth.rs
    // `a_non_bearer_token_type_is_a_warning`); the connector's `apply` still decides the header.
    token_type_not_bearer:
        token(
            || sandbox(body(200, "application/json", MAC_TOKEN)),
            lenient(3600, 3600, &["the token type is `MAC`, not Bearer"]),
        );
    // A 302 from the token endpoint is not followed: an error that says so, one request, and
    // nothing sent to the `Location`.
    token_redirect_is_not_followed: Case {
        check: |f| assert_eq!(f.seen("/elsewhere/token"), 0, "the redirect was followed"),
        ..token(
            || sandbox(with_header(once(302), "Location", "/elsewhere/token")),
            fails(
                1,
                &[ErrorKind::AuthResponse],
                Some(302),
                &["token request", "302 Found", "(a redirect); redirects are not followed"],
            ),
        )
    };
    // A scope narrower than requested (the sandbox never grants `admin`): a warning, or with
    // `scope_check: strict` an error (auth.rs `scope_drift_warns_or_fails_when_strict`).
    token_scope_narrower_than_requested: Case {
        values_extra: "  scope: \"items:read admin\"\n",
        ..token(
            || Inject::Nothing,
            lenient(3600, 3600, &["granted `items:read` but not `admin` of the requested scope"]),
        )
    };
    token_scope_narrower_than_requested_strict: Case {
        values_extra: "  scope: \"items:read admin\"\n",
        auth_extra: "    scope_check: strict\n",
        ..token(
            || Inject::Nothing,
            fails(
                1,
                &[ErrorKind::AuthRejected],
                None,
                &[
                    "token request",
                    "granted `items:read` but not `admin`",
                    "(`scope_check: strict`)",
                ],
            ),
        )
    };
}

/// The kind of a token endpoint's final 429 or 5xx: it is out of service, not refusing the
/// credentials, so a `status` error, even when its body is an RFC 6749 §5.2 error object
/// (the sandbox's fault bodies are).
const TOKEN_STATUS: &[ErrorKind] = &[ErrorKind::Status];

const TRUNCATED_TOKEN: &str = r#"{"access_token": "sandbox-static-token", "token_type": "Bea"#;
const TRUNCATED_PAGE: &str = r#"{"items": [{"id": 101, "name": "Item 101"}, {"id": 1"#;
const MAC_TOKEN: &str =
    r#"{"access_token": "sandbox-static-token", "token_type": "MAC", "expires_in": 3600}"#;
const HTML: &str = "<html><body><h1>Sign in</h1><p>Your session has expired.</p></body></html>";
const ERROR_200: &str =
    r#"{"error": "temporarily_unavailable", "error_description": "Try again later"}"#;

// ---------------------------------------------------------------------------------------------
// Cases

/// Where the fault is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The first token request.
    Token,
    /// Page 3 (and its retries) of `list_items`.
    Api,
}

/// How the fault is made.
enum Inject {
    /// No fault: the sandbox as it is.
    Nothing,
    /// A sandbox fault; its path and `skip` are set by the target (`/oauth/token`, or
    /// `/items` with `skip: 2`).
    Sandbox(Fault),
    /// The raw TCP server of this file, misbehaving on the target's requests.
    Raw(Misbehave),
    /// The token URL is a loopback port nobody listens on.
    Closed,
}

/// What must happen.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// All 120 records, after `attempts` of the faulted request, having waited at least
    /// `min_wait_ms` in all.
    Ok { attempts: usize, min_wait_ms: u64 },
    /// The token response is accepted (120 records, one token request, reused by a second
    /// run), with a lifetime in `life_s` and a warning containing `warning` (none if empty).
    Lenient {
        life_s: (u64, u64),
        warning: &'static [&'static str],
    },
    /// An error of one of `kinds`, with `status`, containing `words`, after `attempts` of
    /// the failing request.
    Fails {
        attempts: usize,
        kinds: &'static [ErrorKind],
        status: Option<u16>,
        words: &'static [&'static str],
    },
    /// An error containing `words`, or a success with a warning containing them.
    FailsOrWarns(&'static [&'static str]),
}

#[derive(Clone, Copy)]
struct Case {
    target: Target,
    inject: fn() -> Inject,
    expect: Expect,
    /// Extra lines of the auth method (indented by four spaces).
    auth_extra: &'static str,
    /// Extra instance values (indented by two spaces).
    values_extra: &'static str,
    /// An extra check after the library run.
    check: fn(&Fixture),
}

fn token(inject: fn() -> Inject, expect: Expect) -> Case {
    Case {
        target: Target::Token,
        inject,
        expect,
        auth_extra: "",
        values_extra: "",
        check: |_| {},
    }
}

fn api(inject: fn() -> Inject, expect: Expect) -> Case {
    Case {
        target: Target::Api,
        ..token(inject, expect)
    }
}

fn ok(attempts: usize, min_wait_ms: u64) -> Expect {
    Expect::Ok {
        attempts,
        min_wait_ms,
    }
}

fn lenient(min_s: u64, max_s: u64, warning: &'static [&'static str]) -> Expect {
    Expect::Lenient {
        life_s: (min_s, max_s),
        warning,
    }
}

fn fails(
    attempts: usize,
    kinds: &'static [ErrorKind],
    status: Option<u16>,
    words: &'static [&'static str],
) -> Expect {
    Expect::Fails {
        attempts,
        kinds,
        status,
        words,
    }
}

fn sandbox(f: Fault) -> Inject {
    Inject::Sandbox(f)
}

/// A fault answering `status` `n` times.
fn times(status: u16, n: u64) -> Fault {
    Fault {
        status: Some(status),
        times: n,
        ..Fault::new("/")
    }
}

fn once(status: u16) -> Fault {
    times(status, 1)
}

fn always(status: u16) -> Fault {
    times(status, 0)
}

fn with_header(mut f: Fault, name: &str, value: &str) -> Fault {
    f.headers.insert(name.to_owned(), value.to_owned());
    f
}

/// Every answer is `status` with `body`.
fn body(status: u16, content_type: &str, body: &str) -> Fault {
    Fault {
        body: Some(body.to_owned()),
        content_type: Some(content_type.to_owned()),
        ..always(status)
    }
}

/// A token response with the sandbox's static token (which its API accepts) and `fields`.
fn token_response(fields: &str) -> Inject {
    sandbox(body(
        200,
        "application/json",
        &format!(r#"{{"access_token": "sandbox-static-token", "token_type": "Bearer", {fields}}}"#),
    ))
}

/// An HTTP date `secs` seconds from now.
fn http_date_in(secs: u64) -> String {
    httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(secs))
}

// ---------------------------------------------------------------------------------------------
// Running a case

/// A sandbox (and maybe a raw server), the connector and an instance pointing at them.
struct Fixture {
    env: Env,
    raw: Option<Raw>,
    instance: PathBuf,
    target: Target,
    /// Whether a server sees the attempts of the faulted request.
    observable: bool,
}

impl Fixture {
    fn new(case: &Case) -> Fixture {
        let env = Env::new();
        env.write("connectors/faults.yaml", &connector_yaml(case.auth_extra));
        env.write("secret.txt", &format!("{}\n", secret(&env)));
        let mut base = env.url();
        let mut token_url = format!("{}/oauth/token", env.url());
        let mut raw = None;
        let mut observable = true;
        match (case.inject)() {
            Inject::Nothing => {}
            Inject::Sandbox(mut f) => {
                match case.target {
                    Target::Token => f.path = "/oauth/token".into(),
                    Target::Api => {
                        f.path = "/items".into();
                        f.skip = 2;
                    }
                }
                env.sandbox.add_fault(f);
            }
            Inject::Raw(m) => {
                let r = Raw::start(&env, case.target, m);
                base = r.url.clone();
                token_url = format!("{}/oauth/token", r.url);
                observable = m != Misbehave::Refuse;
                raw = Some(r);
            }
            Inject::Closed => {
                token_url = format!("http://127.0.0.1:{}/oauth/token", closed_port());
                observable = false;
            }
        }
        let instance = env.write(
            "f.yaml",
            &format!(
                "connector: connectors/faults.yaml\nauth: client_credentials\nvalues:\n  base_url: {base}\n  token_url: {token_url}\n  client_id: sandbox-client\n  client_secret: {{ file: secret.txt }}\n{}",
                case.values_extra
            ),
        );
        Fixture {
            env,
            raw,
            instance,
            target: case.target,
            observable,
        }
    }

    /// Requests a server saw on `path`.
    fn seen(&self, path: &str) -> usize {
        match &self.raw {
            Some(r) => r.count(path),
            None => self
                .env
                .sandbox
                .requests()
                .iter()
                .filter(|r| r.path == path)
                .count(),
        }
    }

    /// The attempts of the faulted request a server saw: token requests, or the requests
    /// for page 3 (every `/items` request after the first two). `None` when no server sees
    /// them (a refused connection).
    fn attempts(&self) -> Option<usize> {
        if !self.observable {
            return None;
        }
        Some(match self.target {
            Target::Token => self.seen("/oauth/token"),
            Target::Api => self.seen("/items").saturating_sub(2),
        })
    }
}

/// What a library run did.
struct Outcome {
    result: runtime::Result<Stats>,
    /// Records handed to the callback, in order.
    records: Vec<Value>,
    /// The runtime's `retrying` log events during the run.
    retries_logged: usize,
    elapsed: Duration,
}

/// Calls `list_items` with the runtime's log captured.
fn call(f: &Fixture, conn: &Connection) -> Outcome {
    let captured = Capture::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let started = Instant::now();
    let mut records = Vec::new();
    // The call runs on this thread (`block_on`), where the subscriber is the default.
    let result = tracing::subscriber::with_default(subscriber, || {
        f.env
            .rt
            .block_on(support::call_into(conn, "list_items", &[], &mut records))
    });
    let elapsed = started.elapsed();
    let log = captured.text();
    Outcome {
        result,
        records,
        retries_logged: log.lines().filter(|l| l.contains(": retrying")).count(),
        elapsed,
    }
}

/// What a `connector run` did, and the attempts its server saw.
struct CliRun {
    out: Output,
    attempts: Option<usize>,
    secret: String,
}

fn cli_run(case: Case) -> CliRun {
    let f = Fixture::new(&case);
    let out = f
        .env
        .cli(&["run", f.instance.to_str().unwrap(), "list_items"], &[]);
    CliRun {
        out,
        attempts: f.attempts(),
        secret: secret(&f.env),
    }
}

fn run(case: Case) {
    // A failure is also run through the binary, at the same time, against its own servers.
    let cli = matches!(case.expect, Expect::Fails { .. })
        .then(|| std::thread::spawn(move || cli_run(case)));
    let f = Fixture::new(&case);
    let conn = f.env.connect(&f.instance);
    let o = call(&f, &conn);
    let ctx = format!(
        "{:?} → {:?}; {} records, {} retries logged, {:?}",
        case.target,
        o.result.as_ref().map(|s| s.summary()),
        o.records.len(),
        o.retries_logged,
        o.elapsed
    );
    match case.expect {
        Expect::Ok {
            attempts,
            min_wait_ms,
        } => {
            let stats = o.result.as_ref().expect(&ctx);
            assert_eq!(ids(&o.records), one_to(120), "{ctx}");
            assert_eq!(f.attempts(), Some(attempts), "attempts seen; {ctx}");
            assert_eq!(o.retries_logged, attempts - 1, "retries logged; {ctx}");
            let (requests, token_requests) = match case.target {
                Target::Token => (3, attempts as u64),
                Target::Api => (2 + attempts as u64, 1),
            };
            assert_eq!(
                (stats.pages, stats.requests, stats.token_requests),
                (3, requests, token_requests),
                "{ctx}"
            );
            assert!(
                o.elapsed >= Duration::from_millis(min_wait_ms),
                "waited less than {min_wait_ms} ms; {ctx}"
            );
            assert!(o.elapsed < Duration::from_secs(8), "{ctx}");
        }
        Expect::Lenient { life_s, warning } => {
            assert!(o.result.is_ok(), "{ctx}");
            assert_eq!(ids(&o.records), one_to(120), "{ctx}");
            assert_eq!(f.attempts(), Some(1), "{ctx}");
            let creds = f
                .env
                .rt
                .block_on(conn.authenticator().credentials())
                .unwrap();
            let life = creds.lifetime.expect("a lifetime").as_secs();
            assert!(
                (life_s.0..=life_s.1).contains(&life),
                "lifetime {life} s, not in {life_s:?}; {ctx}"
            );
            assert!(creds.refresh_at.unwrap() > Instant::now(), "{ctx}");
            if warning.is_empty() {
                assert!(creds.warnings.is_empty(), "{:?}", creds.warnings);
            } else {
                assert_eq!(creds.warnings.len(), 1, "{:?}", creds.warnings);
                assert_contains(&creds.warnings[0], warning);
                assert_one_line(&creds.warnings[0]);
            }
            // The token is reused: one token request for two runs.
            let again = call(&f, &conn);
            assert_eq!(ids(&again.records), one_to(120));
            assert_eq!(again.result.unwrap().token_requests, 0);
            assert_eq!(f.seen("/oauth/token"), 1, "a token request per run");
        }
        Expect::Fails {
            attempts,
            kinds,
            status,
            words,
        } => {
            let e = match &o.result {
                Ok(_) => panic!("the run succeeded; {ctx}"),
                Err(e) => e,
            };
            let ctx = format!("{ctx}\nerror ({:?}): {e}", e.kind());
            assert!(kinds.contains(&e.kind()), "kind; {ctx}");
            assert_eq!(e.status(), status, "status; {ctx}");
            assert_contains(e.message(), words);
            assert_one_line(e.message());
            assert!(!e.message().contains(&secret(&f.env)), "{ctx}");
            // Bounded retries: what the servers saw and what the runtime logged agree.
            if let Some(seen) = f.attempts() {
                assert_eq!(seen, attempts, "attempts seen; {ctx}");
            }
            assert_eq!(o.retries_logged, attempts - 1, "retries logged; {ctx}");
            match case.target {
                Target::Token => {
                    assert_eq!(
                        conn.authenticator().token_requests(),
                        attempts as u64,
                        "{ctx}"
                    );
                    assert!(o.records.is_empty(), "{ctx}");
                    assert_eq!(f.seen("/items"), 0, "no API request without a token");
                }
                // The caller's data is not lost: pages 1–2 were delivered.
                Target::Api => assert_eq!(ids(&o.records), one_to(100), "{ctx}"),
            }
            (case.check)(&f);

            // `connector run`: exit 1, one line on stderr, the records of pages 1–2 on stdout.
            let c = cli.expect("a CLI run").join().expect("the CLI run");
            let (out, err) = (stdout(&c.out), stderr(&c.out));
            let cli_ctx = format!("exit {:?}\nstderr:\n{err}", c.out.status.code());
            assert_eq!(c.out.status.code(), Some(1), "{cli_ctx}");
            assert!(!err.contains("panicked"), "{cli_ctx}");
            assert_eq!(err.lines().count(), 1, "{cli_ctx}");
            assert!(err.starts_with("error: "), "{cli_ctx}");
            assert_contains(&err, words);
            assert!(!format!("{out}{err}").contains(&c.secret), "{cli_ctx}");
            if let Some(seen) = c.attempts {
                assert_eq!(
                    seen, attempts,
                    "attempts seen by the CLI's server; {cli_ctx}"
                );
            }
            let printed: Vec<Value> = out
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line"))
                .collect();
            match case.target {
                Target::Token => assert!(printed.is_empty(), "{out}"),
                Target::Api => {
                    assert_eq!(ids(&printed), one_to(100), "{cli_ctx}");
                    assert_failed_page_is_named(e.message(), &err);
                }
            }
        }
        Expect::FailsOrWarns(words) => {
            let reported = match &o.result {
                Err(e) => words.iter().all(|w| e.message().contains(w)),
                Ok(stats) => stats
                    .warnings
                    .iter()
                    .any(|x| words.iter().all(|w| x.contains(w))),
            };
            assert_eq!(ids(&o.records), one_to(100), "{ctx}");
            assert_eq!(f.attempts(), Some(1), "not retried; {ctx}");
            // See `api_200_with_error`: a 200 `{"error": ...}` page must not end the run as a
            // success with 100 of the 120 records.
            assert!(
                reported,
                "page 3 answered 200 with an `error` member and the run ended as a success \
                 with {} of 120 records, no error and no warning; {ctx}",
                o.records.len()
            );
        }
    }
}

/// A run that fails part-way says how far it got: the URL is shown without its query (it may
/// carry a key), so the error itself names the failed page and what was delivered before it,
/// in the library's error and in `connector run`'s one `error:` line.
fn assert_failed_page_is_named(library: &str, cli: &str) {
    let named = |t: &str| {
        let t = t.to_ascii_lowercase();
        ["page 3", "offset 100", "offset=100", "2 pages"]
            .iter()
            .any(|w| t.contains(w))
    };
    assert!(
        named(library) && named(cli),
        "the failure does not say which page failed (page 3, after 2 pages / 100 \
         records delivered):\n  library: {library}\n  connector run: {}",
        cli.trim_end()
    );
}

// ---------------------------------------------------------------------------------------------
// `connector serve`

/// The same failures through `connector serve`: a JSON error with the runtime's kind as its
/// code (502, or 504 for a timeout), never a dropped connection.
#[test]
fn serve_answers_json_errors() {
    let env = Env::new();
    env.write("connectors/faults.yaml", &connector_yaml(""));
    env.write("secret.txt", &format!("{}\n", secret(&env)));
    let instance = |name: &str, base: &str, token_url: &str| {
        env.write(
            &format!("{name}.yaml"),
            &format!(
                "connector: connectors/faults.yaml\nauth: client_credentials\nvalues:\n  base_url: {base}\n  token_url: {token_url}\n  client_id: sandbox-client\n  client_secret: {{ file: secret.txt }}\n"
            ),
        );
    };
    let sandbox_token = format!("{}/oauth/token", env.url());
    instance("pages", &env.url(), &sandbox_token);
    let trickle = Raw::start(&env, Target::Api, Misbehave::Trickle);
    instance(
        "trickle",
        &trickle.url,
        &format!("{}/oauth/token", trickle.url),
    );
    let reset = Raw::start(&env, Target::Api, Misbehave::ResetMidBody);
    instance("reset", &reset.url, &format!("{}/oauth/token", reset.url));
    // A second sandbox whose token endpoint answers 503 for ever.
    let down = env
        .rt
        .block_on(sandbox::Sandbox::start(
            "127.0.0.1:0".parse().unwrap(),
            sandbox::Config::default(),
        ))
        .unwrap();
    down.add_fault(Fault {
        path: "/oauth/token".into(),
        ..always(503)
    });
    instance("tokendown", &down.url(), &down.token_url());
    instance(
        "refused",
        &env.url(),
        &format!("http://127.0.0.1:{}/oauth/token", closed_port()),
    );
    let serve = support::serve::Serve::start(&env, &[]);
    let client = reqwest::Client::new();
    let call = |name: &str| -> (u16, Value) {
        env.rt.block_on(async {
            let resp = client
                .post(format!(
                    "{}/v1/instances/{name}/endpoints/list_items",
                    serve.url
                ))
                .bearer_auth(support::serve::API_KEY)
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{name}: no answer from serve: {e}"));
            let status = resp.status().as_u16();
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = resp.text().await.unwrap();
            assert_eq!(ct, "application/json", "{name}: {body}");
            let doc: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {body}"));
            (status, doc)
        })
    };
    let check = |name: &str, status: u16, codes: &[&str], upstream: Option<u64>, words: &[&str]| {
        let (got, doc) = call(name);
        let err = &doc["error"];
        let message = err["message"].as_str().unwrap_or_default();
        assert_eq!(got, status, "{name}: {doc}");
        assert!(
            codes.contains(&err["code"].as_str().unwrap_or_default()),
            "{name}: {doc}"
        );
        assert_eq!(err["upstream_status"].as_u64(), upstream, "{name}: {doc}");
        assert_contains(message, words);
        assert_one_line(message);
        assert!(!message.contains(&secret(&env)), "{name}: {doc}");
    };

    // Page 3 answers 503 for ever: 3 attempts, then the API's status.
    env.sandbox.add_fault(Fault {
        path: "/items".into(),
        skip: 2,
        ..always(503)
    });
    check(
        "pages",
        502,
        &["status"],
        Some(503),
        &["/items", "503 Service Unavailable"],
    );
    assert_eq!(
        env.sandbox
            .requests()
            .iter()
            .filter(|r| r.path == "/items")
            .count(),
        5
    );
    // Page 3 is cut-off JSON.
    env.sandbox.clear_faults();
    env.sandbox.add_fault(Fault {
        path: "/items".into(),
        skip: 2,
        ..body(200, "application/json", r#"{"items": [{"id": 1"#)
    });
    check("pages", 502, &["response"], None, &["/items", "not JSON"]);
    // Page 3 never ends; page 3 is reset mid-body.
    check(
        "trickle",
        504,
        &["timeout"],
        None,
        &["/items", "no response within 600 ms"],
    );
    assert_eq!(trickle.count("/items"), 5);
    check("reset", 502, &["connect"], None, &["/items", "reset"]);
    assert_eq!(reset.count("/items"), 5);
    // The token endpoint answers 503 for ever, or refuses connections.
    check(
        "tokendown",
        502,
        &["status"],
        Some(503),
        &["token request", "503 Service Unavailable"],
    );
    assert_eq!(down.stats().token_requests, 3);
    check(
        "refused",
        502,
        &["connect"],
        None,
        &["token request failed", "Connection refused"],
    );
    // And it still serves.
    env.sandbox.clear_faults();
    let (status, doc) = call("pages");
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["records"].as_array().map(Vec::len), Some(120), "{doc}");
}

// ---------------------------------------------------------------------------------------------
// The raw TCP server

/// What the raw server does to the requests it targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Misbehave {
    /// The head and part of the body, then a reset (RST: `SO_LINGER` 0 before the close).
    ResetMidBody,
    /// The head, then a body byte every 100 ms, for ever.
    Trickle,
    /// A 200 with a chunked body (no `Content-Length`) of this many bytes.
    Chunked(usize),
    /// It stops listening: the targeted connection is refused.
    Refuse,
}

/// A tiny HTTP/1.1 server on loopback: token requests get a token, `/items` gets pages of
/// 120 items; the target's requests (the token's, or `/items` after 2) get the misbehaviour.
/// Every answer closes its connection.
struct Raw {
    url: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Raw {
    fn start(env: &Env, target: Target, what: Misbehave) -> Raw {
        let listener = env.rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let (path, skip) = match target {
            Target::Token => ("/oauth/token", 0),
            Target::Api => ("/items", 2),
        };
        env.rt
            .spawn(raw_serve(listener, path, skip, what, log.clone()));
        Raw { url, log }
    }

    /// Requests seen on `path`.
    fn count(&self, path: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.as_str() == path)
            .count()
    }
}

async fn raw_serve(
    listener: TcpListener,
    target: &'static str,
    skip: usize,
    what: Misbehave,
    log: Arc<Mutex<Vec<String>>>,
) {
    let mut seen = 0;
    if what == Misbehave::Refuse && skip == 0 {
        return;
    }
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let Some((method, path, query)) = read_request(&mut stream).await else {
            continue;
        };
        log.lock().unwrap().push(path.clone());
        let targeted = path == target;
        if targeted {
            seen += 1;
        }
        if targeted && seen > skip {
            match what {
                Misbehave::ResetMidBody => reset_mid_body(stream).await,
                Misbehave::Trickle => {
                    tokio::spawn(trickle(stream));
                }
                Misbehave::Chunked(n) => {
                    tokio::spawn(chunked(stream, n));
                }
                Misbehave::Refuse => unreachable!("stopped listening"),
            }
            continue;
        }
        answer(&mut stream, &method, &path, &query).await;
        if what == Misbehave::Refuse && targeted && seen == skip {
            // The listener is dropped: the next connections are refused.
            return;
        }
    }
}

/// Reads a request's head and body: `(method, path, query)`.
async fn read_request(stream: &mut TcpStream) -> Option<(String, String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 || buf.len() > 64 * 1024 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let mut first = head.lines().next()?.split(' ');
        let method = first.next()?.to_owned();
        let target = first.next()?;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Some((method, path.to_owned(), query.to_owned()))
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .ok()
        .flatten()
}

/// The normal answers: a token, or a page of items.
async fn answer(stream: &mut TcpStream, method: &str, path: &str, query: &str) {
    let (status, body) = match (method, path) {
        ("POST", "/oauth/token") => (
            "200 OK",
            r#"{"access_token": "raw-access-token", "token_type": "Bearer", "expires_in": 3600}"#
                .to_owned(),
        ),
        ("GET", "/items") => {
            let param = |name: &str| {
                url::form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == name)
                    .and_then(|(_, v)| v.parse::<u64>().ok())
            };
            let (offset, limit) = (param("offset").unwrap_or(0), param("limit").unwrap_or(25));
            let items: Vec<Value> = (offset + 1..=120)
                .take(limit as usize)
                .map(|i| serde_json::json!({"id": i, "name": format!("Item {i}")}))
                .collect();
            (
                "200 OK",
                serde_json::json!({"items": items, "total": 120}).to_string(),
            )
        }
        _ => ("404 Not Found", r#"{"error": "not_found"}"#.to_owned()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn reset_mid_body(mut stream: TcpStream) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\nConnection: close\r\n\r\n";
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream
        .write_all(br#"{"access_token": "x", "items": [{"id": 101, "name": "Item 101"},"#)
        .await;
    let _ = stream.flush().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn trickle(mut stream: TcpStream) {
    // Chunked, so that no length over the cap refuses it at once.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n{\"items\": [\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    // Until the client gives up (or a minute has passed).
    for _ in 0..600 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if stream.write_all(b"1\r\n \r\n").await.is_err() {
            return;
        }
    }
}

async fn chunked(mut stream: TcpStream, size: usize) {
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let piece = vec![b' '; 16 * 1024];
    let mut sent = 0;
    while sent < size {
        let n = piece.len().min(size - sent);
        let mut c = format!("{n:x}\r\n").into_bytes();
        c.extend_from_slice(&piece[..n]);
        c.extend_from_slice(b"\r\n");
        if stream.write_all(&c).await.is_err() {
            return;
        }
        sent += n;
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let _ = stream.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The connector of the matrix: client credentials at `vars.token_url` (default lifetime
/// 900 s, `auth_extra` added), and `list_items`: offset pagination, 50 per page, a 600 ms
/// timeout, a 64 KiB cap, and the default retry policy but for a 50 ms backoff (to keep the
/// file fast).
fn connector_yaml(auth_extra: &str) -> String {
    format!(
        r#"connector: faults
name: Fault matrix
base_url: "{{{{ vars.base_url }}}}"
variables:
  base_url:
    label: API base URL
    default: http://127.0.0.1:8080
  token_url:
    label: Token URL
    default: http://127.0.0.1:8080/oauth/token
auth:
  client_credentials:
    type: oauth2_client_credentials
    request:
      url: "{{{{ vars.token_url }}}}"
    default_lifetime_s: 900
{auth_extra}endpoints:
  list_items:
    method: GET
    url: /items
    records: /items
    timeout_ms: 600
    max_response_bytes: 65536
    retry:
      backoff_ms: 50
    pagination:
      type: offset
      limit: 50
      total: /total
"#
    )
}

fn secret(env: &Env) -> String {
    env.sandbox.config().client_secret.clone()
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `id` fields of the records.
fn ids(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .map(|r| r["id"].as_u64().unwrap_or_else(|| panic!("no id: {r}")))
        .collect()
}

fn one_to(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

fn assert_contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "`{p}` is not in:\n{text}");
    }
}

fn assert_one_line(text: &str) {
    assert!(
        !text.trim_end().contains('\n') && !text.contains('\r'),
        "not one line:\n{text}"
    );
}

/// A log writer into memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

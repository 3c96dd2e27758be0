//! End-to-end tests of endpoints: pagination, token expiry during a run, retries and faults,
//! escaping of values in every place of a request, and `connector run`. Everything goes over
//! real HTTP on loopback to the sandbox provider.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime::run::Connection;
use runtime::ErrorKind;
use sandbox::{Fault, SeenRequest};
use serde_json::{json, Value};
use support::Env;

// ---------------------------------------------------------------------------------------------
// Helpers

/// The hostile values of the escaping table: URL and form delimiters, a newline, and a
/// CR LF followed by something that looks like a header.
const HOSTILE: &str = "a\"b&c=d/e?f#g%h";
const NEWLINE: &str = "line1\nline2";
const CRLF: &str = "x\r\nX-Injected: 1";

/// A connector of our own, `connectors/t.yaml` in the scratch folder: the sandbox's client
/// credentials method (with `auth_extra` lines added to it, indented by four spaces) and
/// `endpoints` (YAML, indented by two spaces). The instance `t.yaml` names it by relative
/// path.
fn custom(env: &Env, auth_extra: &str, endpoints: &str) -> Connection {
    let connector = format!(
        r#"connector: t
name: Test
base_url: "{{{{ vars.base_url }}}}"
variables:
  base_url:
    label: Sandbox URL
    default: http://127.0.0.1:8080
auth:
  client_credentials:
    type: oauth2_client_credentials
    request:
      url: "{{{{ vars.base_url }}}}/oauth/token"
{auth_extra}endpoints:
{endpoints}"#
    );
    env.write("connectors/t.yaml", &connector);
    env.write(
        "secret.txt",
        &format!("{}\n", env.sandbox.config().client_secret),
    );
    let instance = env.write(
        "t.yaml",
        &format!(
            "connector: connectors/t.yaml\nauth: client_credentials\nvalues:\n  base_url: {}\n  client_id: sandbox-client\n  client_secret: {{ file: secret.txt }}\n",
            env.url()
        ),
    );
    env.connect(&instance)
}

/// The sandbox connector with client credentials.
fn bundled(env: &Env) -> Connection {
    env.connect(&env.client_credentials())
}

/// The API requests the sandbox saw (token requests left out), oldest first.
fn api_requests(env: &Env) -> Vec<SeenRequest> {
    env.sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path != "/oauth/token")
        .collect()
}

/// The API requests the sandbox saw on `path`.
fn requests_to(env: &Env, path: &str) -> Vec<SeenRequest> {
    api_requests(env)
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

/// The decoded pairs of a query string or form body.
fn decoded(text: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The `id` fields of the records, as numbers.
fn ids(records: &[Value]) -> Vec<u64> {
    records
        .iter()
        .map(|r| {
            r["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("a record without a numeric id: {r}"))
        })
        .collect()
}

fn one_to(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

fn fault(path: &str) -> Fault {
    Fault::new(path)
}

fn with_header(mut f: Fault, name: &str, value: &str) -> Fault {
    f.headers.insert(name.to_owned(), value.to_owned());
    f
}

/// The offset endpoint of the target test: limit 50, with the total.
const OFFSET_50: &str = r#"  items50:
    url: /items
    records: /items
    pagination:
      type: offset
      limit: 50
      total: /total
"#;

// ---------------------------------------------------------------------------------------------
// 1. The target

#[test]
fn offset_endpoint_returns_120_records_in_3_pages_with_one_token() {
    let env = Env::new();
    let conn = custom(&env, "", OFFSET_50);
    let (records, stats) = env.call(&conn, "items50", &[]).unwrap();

    assert_eq!(
        ids(&records),
        one_to(120),
        "ids 1..=120 in order, once each"
    );
    assert_eq!(records[0]["name"], "Item 1");
    assert_eq!(stats.records, 120);
    assert_eq!(stats.pages, 3);
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.token_requests, 1);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
    assert_eq!(
        stats.summary().rsplit_once(", ").unwrap().0,
        "120 records, 3 pages, 3 requests, 1 token request"
    );

    let s = env.sandbox.stats();
    assert_eq!(s.token_requests, stats.token_requests);
    assert_eq!(s.tokens_issued, 1);
    assert_eq!(s.api_requests, stats.requests);
    assert_eq!(s.unauthorized, 0);

    let seen = api_requests(&env);
    let queries: Vec<Vec<(String, String)>> = seen.iter().map(|r| decoded(&r.query)).collect();
    assert_eq!(
        queries,
        vec![
            pairs(&[("offset", "0"), ("limit", "50")]),
            pairs(&[("offset", "50"), ("limit", "50")]),
            pairs(&[("offset", "100"), ("limit", "50")]),
        ]
    );
    for r in &seen {
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/items");
        assert!(
            r.header("authorization").unwrap().starts_with("Bearer "),
            "{:?}",
            r.headers
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Every pagination style

#[test]
fn offset_pagination_of_the_bundled_connector() {
    let env = Env::new();
    let conn = bundled(&env);
    let (records, stats) = env.call(&conn, "list_items", &[]).unwrap();
    assert_eq!(ids(&records), one_to(120));
    assert_eq!(
        (stats.pages, stats.requests, stats.token_requests),
        (5, 5, 1)
    );
    let queries: Vec<String> = api_requests(&env).into_iter().map(|r| r.query).collect();
    assert_eq!(
        queries,
        [
            "offset=0&limit=25",
            "offset=25&limit=25",
            "offset=50&limit=25",
            "offset=75&limit=25",
            "offset=100&limit=25"
        ]
    );
}

#[test]
fn page_pagination_of_the_bundled_connector() {
    let env = Env::new();
    let conn = bundled(&env);
    let (records, stats) = env.call(&conn, "list_items_by_page", &[]).unwrap();
    assert_eq!(ids(&records), one_to(120));
    // 120 items, 40 per page: `page_count` is 3, and no fourth (empty) page is asked for.
    assert_eq!(
        (stats.pages, stats.requests, stats.token_requests),
        (3, 3, 1)
    );
    let queries: Vec<String> = api_requests(&env).into_iter().map(|r| r.query).collect();
    assert_eq!(
        queries,
        [
            "page=1&page_size=40",
            "page=2&page_size=40",
            "page=3&page_size=40"
        ]
    );
}

#[test]
fn cursor_pagination_of_the_bundled_connector() {
    let env = Env::new();
    let conn = bundled(&env);
    let (records, stats) = env.call(&conn, "list_events", &[]).unwrap();
    let got: Vec<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let want: Vec<String> = (1..=55).map(|i| format!("evt-{i}")).collect();
    assert_eq!(got, want, "all 55 events, once each, in order");
    assert_eq!(
        (stats.pages, stats.requests, stats.token_requests),
        (3, 3, 1)
    );
    let queries: Vec<String> = api_requests(&env).into_iter().map(|r| r.query).collect();
    // The empty `type` input is left out; the cursor is sent from the second page on.
    assert_eq!(queries, ["", "cursor=c20", "cursor=c40"]);

    // With `type=created`: only those (seq 3, 6, …, 54), on one page.
    env.sandbox.clear_requests();
    let (records, stats) = env
        .call(&conn, "list_events", &[("type", "created")])
        .unwrap();
    assert_eq!(records.len(), 18);
    assert!(
        records.iter().all(|r| r["type"] == "created"),
        "{records:?}"
    );
    let seqs: Vec<u64> = records.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=18).map(|i| i * 3).collect::<Vec<u64>>());
    assert_eq!(
        (stats.pages, stats.token_requests),
        (1, 0),
        "the token is cached"
    );
    let queries: Vec<String> = api_requests(&env).into_iter().map(|r| r.query).collect();
    assert_eq!(queries, ["type=created"]);
}

#[test]
fn link_header_pagination_follows_the_absolute_url() {
    let env = Env::new();
    let conn = bundled(&env);
    let (records, stats) = env.call(&conn, "list_logs", &[]).unwrap();
    let lines: Vec<u64> = records
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, one_to(120));
    assert_eq!(
        (stats.pages, stats.requests, stats.token_requests),
        (3, 3, 1)
    );
    let seen = api_requests(&env);
    let queries: Vec<&str> = seen.iter().map(|r| r.query.as_str()).collect();
    // The first request is the endpoint's; the next ones are the `Link` URLs as they are
    // (no `per_page` added twice).
    assert_eq!(
        queries,
        ["per_page=50", "page=2&per_page=50", "page=3&per_page=50"]
    );
    for r in &seen {
        assert_eq!(r.path, "/logs");
        assert!(r.header("authorization").is_some());
    }
}

#[test]
fn max_pages_stops_with_a_warning() {
    let env = Env::new();
    let conn = custom(
        &env,
        "",
        r#"  capped:
    url: /items
    records: /items
    pagination:
      type: offset
      limit: 25
      total: /total
      max_pages: 2
"#,
    );
    let (records, stats) = env.call(&conn, "capped", &[]).unwrap();
    assert_eq!(ids(&records), one_to(50));
    assert_eq!((stats.pages, stats.requests), (2, 2));
    assert_eq!(stats.warnings.len(), 1, "{:?}", stats.warnings);
    let w = &stats.warnings[0];
    assert!(w.contains("`capped`"), "{w}");
    assert!(w.contains("`max_pages` (2)"), "{w}");
    assert!(w.contains("more remain"), "{w}");
    assert_eq!(env.sandbox.stats().api_requests, 2);
}

#[test]
fn a_link_to_another_origin_is_refused() {
    let env = Env::new();
    let conn = bundled(&env);
    env.sandbox.add_fault(with_header(
        Fault {
            status: Some(200),
            body: Some(r#"{"logs":[{"line":1}]}"#.into()),
            ..fault("/logs")
        },
        "Link",
        r#"<http://127.0.0.2:1/logs?page=2>; rel="next""#,
    ));
    let mut records = Vec::new();
    let inputs = Vec::new();
    let result = env.rt.block_on(support::call_into(
        &conn,
        "list_logs",
        &inputs,
        &mut records,
    ));
    let e = result.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Response);
    assert!(e.message().contains("another origin"), "{e}");
    assert!(e.message().contains("http://127.0.0.2:1"), "{e}");
    assert!(e.message().contains(&env.url()), "{e}");
    // The first page's record was handed over; nothing was sent to the other origin.
    assert_eq!(records, vec![json!({"line": 1})]);
    assert_eq!(requests_to(&env, "/logs").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// 3. Tokens that expire during a run

#[test]
fn a_token_revoked_mid_run_is_replaced_once() {
    let env = Env::new();
    let conn = custom(&env, "", OFFSET_50);
    env.sandbox.add_fault(Fault {
        skip: 2,
        expire_tokens: true,
        ..fault("/items")
    });
    let (records, stats) = env.call(&conn, "items50", &[]).unwrap();
    assert_eq!(ids(&records), one_to(120), "every record once");
    assert_eq!(stats.pages, 3);
    assert_eq!(stats.requests, 4, "the third page is sent twice");
    assert_eq!(stats.token_requests, 2);

    let s = env.sandbox.stats();
    assert_eq!(s.token_requests, 2);
    assert_eq!(s.tokens_issued, 2);
    assert_eq!(s.unauthorized, 1);
    assert_eq!(s.api_requests, 4);

    let seen = api_requests(&env);
    let offsets: Vec<String> = seen
        .iter()
        .map(|r| decoded(&r.query)[0].1.clone())
        .collect();
    assert_eq!(offsets, ["0", "50", "100", "100"]);
    let auth: Vec<&str> = seen
        .iter()
        .map(|r| r.header("authorization").unwrap())
        .collect();
    assert_eq!(auth[0], auth[2], "the old token until the 401");
    assert_ne!(auth[2], auth[3], "a new token after it");
}

#[test]
fn a_token_is_refreshed_before_it_expires_during_a_slow_run() {
    let env = Env::with(sandbox::Config {
        token_lifetime_s: 2,
        ..Default::default()
    });
    let conn = custom(
        &env,
        "    refresh_margin_s: 1\n",
        r#"  items20:
    url: /items
    records: /items
    pagination:
      type: offset
      limit: 20
      total: /total
"#,
    );
    env.sandbox.add_fault(Fault {
        delay_ms: 400,
        times: 0,
        ..fault("/items")
    });
    let (records, stats) = env.call(&conn, "items20", &[]).unwrap();
    assert_eq!(ids(&records), one_to(120));
    assert_eq!(stats.pages, 6);
    assert_eq!(stats.requests, 6, "no request was refused and sent again");
    assert!(
        stats.elapsed >= Duration::from_millis(2400),
        "{:?}",
        stats.elapsed
    );
    let s = env.sandbox.stats();
    assert_eq!(
        s.unauthorized, 0,
        "the token was refreshed before it expired"
    );
    assert!(s.token_requests >= 2, "{s:?}");
    // The call waited for the first token only; the refreshes ran in the background.
    assert_eq!(stats.token_requests, 1);
    // A refresh still in flight when the run ended is counted once its answer is read.
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while conn.authenticator().token_requests() < env.sandbox.stats().token_requests
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        env.sandbox.stats().token_requests,
        conn.authenticator().token_requests()
    );
    let tokens: std::collections::BTreeSet<String> = api_requests(&env)
        .iter()
        .map(|r| r.header("authorization").unwrap().to_owned())
        .collect();
    assert!(
        tokens.len() >= 2,
        "more than one token was used: {tokens:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Faults

#[test]
fn retry_after_429_is_honoured() {
    let env = Env::new();
    let conn = bundled(&env);
    env.sandbox.add_fault(with_header(
        Fault {
            status: Some(429),
            times: 2,
            ..fault("/items/7")
        },
        "Retry-After",
        "1",
    ));
    let (records, stats) = env.call(&conn, "get_item", &[("id", "7")]).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["id"], 7);
    assert_eq!(records[0]["name"], "Item 7");
    assert!(
        stats.elapsed >= Duration::from_millis(1900),
        "waited `Retry-After` twice: {:?}",
        stats.elapsed
    );
    assert_eq!(
        (stats.pages, stats.requests, stats.token_requests),
        (1, 3, 1)
    );
    assert_eq!(env.sandbox.stats().api_requests, 3);
    assert_eq!(requests_to(&env, "/items/7").len(), 3);
}

#[test]
fn a_503_is_retried_with_backoff() {
    let env = Env::new();
    let conn = bundled(&env);
    env.sandbox.add_fault(Fault {
        status: Some(503),
        times: 2,
        ..fault("/items/7")
    });
    let (records, stats) = env.call(&conn, "get_item", &[("id", "7")]).unwrap();
    assert_eq!(records[0]["id"], 7);
    assert_eq!(stats.requests, 3);
    // Backoff 200 ms doubled, with equal jitter: at least 100 + 200 ms.
    assert!(
        stats.elapsed >= Duration::from_millis(300),
        "{:?}",
        stats.elapsed
    );
    assert_eq!(requests_to(&env, "/items/7").len(), 3);
}

#[test]
fn a_503_forever_fails_after_the_attempts() {
    let env = Env::new();
    let conn = custom(
        &env,
        "",
        r#"  flaky:
    url: /items/7
    retry:
      attempts: 3
      backoff_ms: 20
"#,
    );
    env.sandbox.add_fault(Fault {
        status: Some(503),
        times: 0,
        ..fault("/items/7")
    });
    let e = env.call(&conn, "flaky", &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Status);
    assert_eq!(e.status(), Some(503));
    assert!(e.message().contains("503 Service Unavailable"), "{e}");
    assert!(e.message().contains("/items/7"), "{e}");
    assert_eq!(requests_to(&env, "/items/7").len(), 3);
}

#[test]
fn a_slow_response_times_out() {
    let env = Env::new();
    let conn = custom(
        &env,
        "",
        r#"  slow:
    url: /items/7
    timeout_ms: 300
    retry:
      attempts: 2
      backoff_ms: 50
"#,
    );
    env.sandbox.add_fault(Fault {
        delay_ms: 1500,
        times: 0,
        ..fault("/items/7")
    });
    let started = std::time::Instant::now();
    let e = env.call(&conn, "slow", &[]).unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.message().contains("no response within 300 ms"), "{e}");
    assert!(e.message().contains("/items/7"), "{e}");
    // A GET that timed out is retried; neither attempt waited for the 1.5 s answer.
    assert_eq!(requests_to(&env, "/items/7").len(), 2);
    assert!(elapsed < Duration::from_millis(1400), "{elapsed:?}");
}

#[test]
fn a_401_gets_a_new_token_and_one_retry() {
    let env = Env::new();
    let conn = bundled(&env);
    env.sandbox.add_fault(Fault {
        status: Some(401),
        ..fault("/items/7")
    });
    let (records, stats) = env.call(&conn, "get_item", &[("id", "7")]).unwrap();
    assert_eq!(records[0]["id"], 7);
    assert_eq!(
        (stats.pages, stats.requests, stats.token_requests),
        (1, 2, 2)
    );
    let s = env.sandbox.stats();
    assert_eq!(
        (s.token_requests, s.tokens_issued, s.unauthorized),
        (2, 2, 1)
    );
    let seen = requests_to(&env, "/items/7");
    assert_eq!(seen.len(), 2);
    assert_ne!(
        seen[0].header("authorization"),
        seen[1].header("authorization"),
        "the retry carries the new token"
    );
}

#[test]
fn a_401_twice_is_an_error_not_a_loop() {
    let env = Env::new();
    let conn = bundled(&env);
    env.sandbox.add_fault(Fault {
        status: Some(401),
        times: 2,
        ..fault("/items/7")
    });
    let e = env.call(&conn, "get_item", &[("id", "7")]).unwrap_err();
    assert_eq!(e.status(), Some(401));
    assert!(e.message().contains("refused fresh credentials"), "{e}");
    assert!(e.message().contains("401 Unauthorized"), "{e}");
    assert_eq!(requests_to(&env, "/items/7").len(), 2);
    assert_eq!(env.sandbox.stats().token_requests, 2);
}

#[test]
fn a_response_larger_than_max_response_bytes_is_refused() {
    let env = Env::new();
    let conn = custom(
        &env,
        "",
        r#"  big:
    url: /items
    query:
      limit: "100"
    records: /items
    max_response_bytes: 1000
"#,
    );
    let e = env.call(&conn, "big", &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Response);
    assert!(e.message().contains("larger than 1000 bytes"), "{e}");
    assert!(e.message().contains("max_response_bytes"), "{e}");
    assert_eq!(requests_to(&env, "/items").len(), 1, "not retried");
}

#[test]
fn a_connection_error_is_retried() {
    // A port nothing listens on yet; the provider comes up 50 ms after the first attempt,
    // before the retry (which waits at least 100 ms).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = Env::new();
    let dir = support::TempDir::new();
    std::fs::write(
        dir.0.join("secret.txt"),
        format!("{}\n", env.sandbox.config().client_secret),
    )
    .unwrap();
    let instance = dir.0.join("late.yaml");
    std::fs::write(
        &instance,
        format!(
            "connector: {}\nauth: client_credentials\nvalues:\n  base_url: http://127.0.0.1:{port}\n  client_id: sandbox-client\n  client_secret: {{ file: secret.txt }}\n",
            support::sandbox_connector().display()
        ),
    )
    .unwrap();
    let conn = env.connect(&instance);
    let late = env.rt.spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        sandbox::Sandbox::start(addr, sandbox::Config::default())
            .await
            .unwrap()
    });
    let (records, stats) = env.call(&conn, "list_items", &[]).unwrap();
    let late = env.rt.block_on(late).unwrap();
    assert_eq!(records.len(), 120);
    assert!(
        stats.token_requests >= 2,
        "the refused connection counts: {stats:?}"
    );
    assert_eq!(late.stats().token_requests, 1);
    assert_eq!(late.stats().api_requests, 5);
}

#[test]
fn redirects_are_followed_within_the_origin_only() {
    let env = Env::new();
    let conn = custom(
        &env,
        "",
        r#"  moved:
    url: /moved
    records: /items
"#,
    );
    // Same origin: followed, credentials and all.
    env.sandbox.add_fault(with_header(
        Fault {
            status: Some(302),
            ..fault("/moved")
        },
        "Location",
        "/items?limit=3",
    ));
    let (records, stats) = env.call(&conn, "moved", &[]).unwrap();
    assert_eq!(ids(&records), vec![1, 2, 3]);
    assert_eq!(
        stats.requests, 1,
        "one call, its redirect followed by the client"
    );
    let items = requests_to(&env, "/items");
    assert_eq!(items.len(), 1);
    assert!(items[0]
        .header("authorization")
        .unwrap()
        .starts_with("Bearer "));
    // Another origin: not followed, the call ends with the redirect's status.
    env.sandbox.add_fault(with_header(
        Fault {
            status: Some(302),
            ..fault("/moved")
        },
        "Location",
        "http://127.0.0.2:9/items",
    ));
    let e = env.call(&conn, "moved", &[]).unwrap_err();
    assert_eq!(e.status(), Some(302), "{e}");
    assert!(e.message().contains("302 Found"), "{e}");
}

#[test]
fn a_body_that_is_not_json_is_an_error() {
    let env = Env::new();
    let conn = bundled(&env);
    env.sandbox.add_fault(Fault {
        status: Some(200),
        body: Some("<html>hello</html>".into()),
        content_type: Some("text/html".into()),
        ..fault("/items/7")
    });
    let e = env.call(&conn, "get_item", &[("id", "7")]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Response);
    assert!(e.message().contains("not JSON"), "{e}");
    assert!(e.message().contains("200 OK"), "{e}");
    assert!(e.message().contains("text/html"), "{e}");
    assert!(e.message().contains("18 bytes"), "{e}");
}

/// A page as some APIs send it: indented, with numbers no 64-bit type holds, trailing zeros
/// and escapes.
const PRETTY_PAGE: &str = r#"{
  "items": [
    {"id": 12345678901234567890123, "price": 1.50, "name": "a \"quoted\" name",
     "note": "tab\there", "e": "\u00e9"},
    { "id" : 2 , "tags" : [ "x" , "y" ] }
  ],
  "total": 2
}"#;

/// [`PRETTY_PAGE`]'s records on one line each, as `connector run` prints them.
const PRETTY_RECORDS: [&str; 2] = [
    r#"{"id":12345678901234567890123,"price":1.50,"name":"a \"quoted\" name","note":"tab\there","e":"\u00e9"}"#,
    r#"{"id":2,"tags":["x","y"]}"#,
];

#[test]
fn records_are_passed_on_as_the_api_sent_them() {
    let env = Env::new();
    let conn = bundled(&env);
    env.sandbox.add_fault(Fault {
        status: Some(200),
        body: Some(PRETTY_PAGE.into()),
        // Once for the call in process, once for `connector run`.
        times: 2,
        ..fault("/items")
    });
    let mut raw = Vec::new();
    let stats = env
        .rt
        .block_on(conn.call(
            "list_items",
            &[],
            &mut |r| {
                raw.push(r.get().to_owned());
                Ok(())
            },
            &mut |_| {},
        ))
        .unwrap();
    assert_eq!(stats.records, 2);
    assert_eq!(
        raw,
        [
            "{\"id\": 12345678901234567890123, \"price\": 1.50, \"name\": \"a \\\"quoted\\\" name\",\n     \"note\": \"tab\\there\", \"e\": \"\\u00e9\"}",
            r#"{ "id" : 2 , "tags" : [ "x" , "y" ] }"#,
        ]
    );

    // `connector run`: one line per record, the text otherwise untouched.
    env.client_credentials();
    let o = env.cli(&["run", "cc.yaml", "list_items"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", support::stderr(&o));
    let out = support::stdout(&o);
    assert_eq!(out.lines().collect::<Vec<_>>(), PRETTY_RECORDS);
}

#[test]
fn records_pointing_at_a_non_list_is_a_clear_error() {
    let env = Env::new();
    let conn = custom(
        &env,
        "",
        r#"  bad_records:
    url: /items
    records: /total
"#,
    );
    let e = env.call(&conn, "bad_records", &[]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Response);
    assert!(
        e.message().contains(
            "`records` points at `/total`, which is a number in the response, not a list"
        ),
        "{e}"
    );
}

#[test]
fn a_post_with_one_attempt_is_not_retried() {
    let env = Env::new();
    let conn = bundled(&env);
    env.sandbox.add_fault(Fault {
        method: Some("POST".into()),
        status: Some(503),
        times: 0,
        ..fault("/items")
    });
    let e = env
        .call(&conn, "create_item", &[("name", "x"), ("price", "1.5")])
        .unwrap_err();
    assert_eq!(e.status(), Some(503));
    assert!(e.message().contains("503 Service Unavailable"), "{e}");
    let posts: Vec<SeenRequest> = requests_to(&env, "/items")
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);

    // Without the fault, the same call creates the item, with the types of the inputs.
    env.sandbox.clear_faults();
    let (records, _) = env
        .call(&conn, "create_item", &[("name", "x"), ("price", "1.5")])
        .unwrap();
    assert_eq!(
        records,
        vec![json!({
            "id": 121, "name": "x", "price": 1.5, "quantity": 1, "active": true,
            "note": "Created by x's connector"
        })]
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Escaping

/// Endpoints that send an input in a form body, a JSON body and a header, to `/echo`.
const ESCAPING: &str = r#"  form_echo:
    method: POST
    url: /echo
    body:
      form:
        v: "{{ input.v }}"
        w: "pre {{ input.v }} post"
    inputs:
      v: { label: Value, required: true }
    retry: { attempts: 1 }
  json_echo:
    method: POST
    url: /echo
    body:
      json:
        text: "say {{ input.v }}!"
        exact: "{{ input.v }}"
        n: "{{ input.n }}"
        b: "{{ input.b }}"
        nested:
          list: ["{{ input.n }}", "{{ input.b }}", "lit"]
    inputs:
      v: { label: Value, required: true }
      n: { label: Number, type: integer, required: true }
      b: { label: Flag, type: boolean, required: true }
    retry: { attempts: 1 }
  header_echo:
    url: /echo
    headers:
      X-Note: "{{ input.v }}"
    inputs:
      v: { label: Value, required: true }
"#;

#[test]
fn values_in_a_url_path_are_one_percent_encoded_segment() {
    let env = Env::new();
    let conn = bundled(&env);
    let cases = [
        (HOSTILE, "/items/a%22b%26c%3Dd%2Fe%3Ff%23g%25h"),
        (NEWLINE, "/items/line1%0Aline2"),
        (CRLF, "/items/x%0D%0AX-Injected%3A%201"),
    ];
    for (value, path) in cases {
        env.sandbox.clear_requests();
        let e = env.call(&conn, "get_item", &[("id", value)]).unwrap_err();
        // The sandbox has no such item: the value arrived as one segment of `/items/{id}`.
        assert_eq!(e.status(), Some(404), "{e}");
        let seen = api_requests(&env);
        assert_eq!(seen.len(), 1, "{value:?}");
        assert_eq!(seen[0].path, path, "{value:?}");
        assert_eq!(
            seen[0].query, "",
            "{value:?}: nothing leaked into the query"
        );
        assert!(seen[0].header("x-injected").is_none());
    }
}

#[test]
fn values_in_a_query_come_back_exactly() {
    let env = Env::new();
    let conn = bundled(&env);
    for value in [HOSTILE, NEWLINE, CRLF] {
        env.sandbox.clear_requests();
        let (records, _) = env.call(&conn, "echo", &[("message", value)]).unwrap();
        let want = pairs(&[("message", value), ("count", "1"), ("loud", "false")]);
        let seen = api_requests(&env);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].path, "/echo");
        assert_eq!(decoded(&seen[0].query), want, "{value:?}");
        assert!(
            !seen[0].query.contains(['#', '\n', '\r', '"', ' ']),
            "{:?}",
            seen[0].query
        );
        // What the sandbox decoded and echoed back.
        assert_eq!(
            records[0]["query"],
            json!([["message", value], ["count", "1"], ["loud", "false"]]),
            "{value:?}"
        );
        assert!(seen[0].header("x-injected").is_none());
    }
}

#[test]
fn values_in_a_form_body_come_back_exactly() {
    let env = Env::new();
    let conn = custom(&env, "", ESCAPING);
    for value in [HOSTILE, NEWLINE, CRLF] {
        env.sandbox.clear_requests();
        let (records, _) = env.call(&conn, "form_echo", &[("v", value)]).unwrap();
        let seen = api_requests(&env);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(
            seen[0].header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let want = pairs(&[("v", value), ("w", &format!("pre {value} post"))]);
        assert_eq!(decoded(&seen[0].body), want, "{value:?}");
        assert_eq!(records[0]["body"], json!(seen[0].body));
        assert_eq!(seen[0].query, "");
    }
}

#[test]
fn values_in_a_json_body_keep_their_text_and_types() {
    let env = Env::new();
    let conn = custom(&env, "", ESCAPING);
    for value in [HOSTILE, NEWLINE, CRLF] {
        env.sandbox.clear_requests();
        let (records, _) = env
            .call(
                &conn,
                "json_echo",
                &[("v", value), ("n", "42"), ("b", "true")],
            )
            .unwrap();
        let seen = api_requests(&env);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].header("content-type"), Some("application/json"));
        let body: Value = serde_json::from_str(&seen[0].body).unwrap();
        let want = json!({
            "text": format!("say {value}!"),
            "exact": value,
            "n": 42,
            "b": true,
            "nested": {"list": [42, true, "lit"]},
        });
        assert_eq!(body, want, "{value:?}");
        assert!(body["n"].is_i64() && body["b"].is_boolean());
        assert_eq!(records[0]["json"], want);
    }
    // `false` and a negative integer keep their types too.
    env.sandbox.clear_requests();
    env.call(
        &conn,
        "json_echo",
        &[("v", "x"), ("n", "-7"), ("b", "false")],
    )
    .unwrap();
    let body: Value = serde_json::from_str(&api_requests(&env)[0].body).unwrap();
    assert_eq!(body["n"], json!(-7));
    assert_eq!(body["b"], json!(false));
}

#[test]
fn header_values_with_line_breaks_are_never_sent() {
    let env = Env::new();
    let conn = custom(&env, "", ESCAPING);

    // A value without a line break goes as it is.
    let (records, _) = env.call(&conn, "header_echo", &[("v", HOSTILE)]).unwrap();
    let seen = api_requests(&env);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-note"), Some(HOSTILE));
    assert_eq!(records[0]["headers"]["x-note"], HOSTILE);

    for value in [NEWLINE, CRLF] {
        env.sandbox.clear_requests();
        let before = env.sandbox.stats().api_requests;
        let e = env.call(&conn, "header_echo", &[("v", value)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage);
        assert!(e.message().contains("`X-Note`"), "{e}");
        assert!(e.message().contains("not sent"), "{e}");
        for part in ["line1", "line2", "X-Injected", "\r", "\n"] {
            assert!(!e.message().contains(part), "{e:?} shows the value");
        }
        assert!(api_requests(&env).is_empty(), "nothing reached the API");
        assert_eq!(env.sandbox.stats().api_requests, before);
    }
}

// ---------------------------------------------------------------------------------------------
// 6. The command line

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Checks `connector run` output: `n` JSON records with ids 1..=n on stdout, and exactly one
/// summary line on stderr. Returns the summary.
fn check_run_output(o: &std::process::Output, n: u64) -> String {
    let out = support::stdout(o);
    let err = support::stderr(o);
    assert_eq!(o.status.code(), Some(0), "stderr: {err}");
    let records: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    assert_eq!(ids(&records), one_to(n));
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one summary line on stderr: {err:?}");
    lines[0].to_owned()
}

/// Whether `line` is `120 records, 5 pages, 5 requests, 1 token request, N ms`.
fn is_summary_of_list_items(line: &str) -> bool {
    let Some(ms) = line
        .strip_prefix("120 records, 5 pages, 5 requests, 1 token request, ")
        .and_then(|rest| rest.strip_suffix(" ms"))
    else {
        return false;
    };
    !ms.is_empty() && ms.bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn cli_run_prints_records_and_one_summary_line() {
    let env = Env::new();
    env.client_credentials();
    let o = env.cli(&["run", "cc.yaml", "list_items"], &[]);
    let summary = check_run_output(&o, 120);
    assert!(is_summary_of_list_items(&summary), "{summary:?}");
    let s = env.sandbox.stats();
    assert_eq!((s.token_requests, s.api_requests), (1, 5));
}

#[test]
fn cli_run_refuses_bad_inputs_and_endpoints_with_exit_2() {
    let env = Env::new();
    env.client_credentials();
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["run", "cc.yaml", "echo", "--input", "mesage=hi"],
            &["unknown input `mesage`", "did you mean `message`?"],
        ),
        (
            &[
                "run",
                "cc.yaml",
                "echo",
                "--input",
                "message=hi",
                "--input",
                "count=abc",
            ],
            &["`abc` is not a valid integer", "`count`"],
        ),
        (
            &["run", "cc.yaml", "list_item"],
            &["no endpoint `list_item`", "did you mean `list_items`?"],
        ),
        (
            &["run", "cc.yaml", "echo", "--input", "message"],
            &["name=value"],
        ),
    ];
    for (args, wanted) in cases {
        let o = env.cli(args, &[]);
        let err = support::stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(support::stdout(&o).is_empty(), "{args:?}");
        for w in wanted {
            assert!(err.contains(w), "{args:?}: {w:?} not in {err:?}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    // Refused before anything was sent.
    let s = env.sandbox.stats();
    assert_eq!((s.token_requests, s.api_requests), (0, 0));
}

#[test]
fn cli_readme_quickstart_runs_from_the_repository_root() {
    let o = support::cli_in(
        &repo_root(),
        &["run", "instances/sandbox.yaml", "list_items", "--sandbox"],
        &[],
    );
    let summary = check_run_output(&o, 120);
    assert!(is_summary_of_list_items(&summary), "{summary:?}");
}

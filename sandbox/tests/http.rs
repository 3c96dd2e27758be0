//! The sandbox over real HTTP on loopback, with a tiny HTTP/1.1 client.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sandbox::{Config, Fault, Sandbox};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut request =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(body);

    raw_exchange(addr, &request).await
}

/// Sends `request` as is and reads the response to the end.
async fn raw_exchange(addr: SocketAddr, request: &str) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = std::str::from_utf8(&raw[..split]).expect("UTF-8 head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
    let status = parts
        .next()
        .expect("status")
        .parse()
        .expect("numeric status");
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("header line");
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body: String::from_utf8(body).expect("UTF-8 body"),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size");
        let size_text = std::str::from_utf8(&data[..line_end]).expect("chunk size text");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).expect("hex chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

async fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Response {
    send(addr, "GET", target, headers, "").await
}

// ---------------------------------------------------------------------------------------------
// Helpers

async fn start() -> Sandbox {
    start_with(Config::default()).await
}

async fn start_with(config: Config) -> Sandbox {
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("sandbox starts")
}

fn form_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `Authorization: Basic` for a client per RFC 6749 §2.3.1.
fn client_basic(id: &str, secret: &str) -> String {
    let pair = format!("{}:{}", form_encode(id), form_encode(secret));
    format!("Basic {}", BASE64.encode(pair))
}

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

async fn token_request(addr: SocketAddr, auth: &str, form: &str) -> Response {
    send(
        addr,
        "POST",
        "/oauth/token",
        &[FORM, ("Authorization", auth)],
        form,
    )
    .await
}

/// A client-credentials token with the default scope.
async fn token(sandbox: &Sandbox) -> String {
    let config = Config::default();
    let auth = client_basic(&config.client_id, &config.client_secret);
    let response = token_request(sandbox.addr(), &auth, "grant_type=client_credentials").await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

fn assert_oauth_error(response: &Response, status: u16, error: &str) {
    assert_eq!(response.status, status, "{}", response.body);
    assert_eq!(response.json()["error"], error, "{}", response.body);
    assert!(response.json()["error_description"].is_string());
    assert_eq!(response.header("content-type"), Some("application/json"));
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

#[tokio::test]
async fn token_with_basic_and_a_form_urlencoded_secret() {
    let sandbox = start().await;
    let config = Config::default();
    let auth = client_basic(&config.client_id, &config.client_secret);
    assert_eq!(
        auth,
        format!(
            "Basic {}",
            BASE64.encode("sandbox-client:sandbox-secret%2F%2B%3D%25%3A")
        )
    );
    let response = token_request(sandbox.addr(), &auth, "grant_type=client_credentials").await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("pragma"), Some("no-cache"));
    let body = response.json();
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.len(), 64);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "items:read");

    // The secret sent raw, without the §2.3.1 encoding, fails: `+` decodes to a space.
    let raw = format!(
        "Basic {}",
        BASE64.encode(format!("{}:{}", config.client_id, config.client_secret))
    );
    let response = token_request(sandbox.addr(), &raw, "grant_type=client_credentials").await;
    assert_oauth_error(&response, 401, "invalid_client");

    let stats = sandbox.stats();
    assert_eq!(stats.token_requests, 2);
    assert_eq!(stats.tokens_issued, 1);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn token_with_client_credentials_in_the_body() {
    let sandbox = start().await;
    let config = Config::default();
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}&scope={}",
        form_encode(&config.client_id),
        form_encode(&config.client_secret),
        form_encode("events:read items:read"),
    );
    let response = send(sandbox.addr(), "POST", "/oauth/token", &[FORM], &form).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["scope"], "events:read items:read");

    // A content type with parameters is still a form.
    let response = send(
        sandbox.addr(),
        "POST",
        "/oauth/token",
        &[(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )],
        &form,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);

    // JSON is not a form.
    let response = send(
        sandbox.addr(),
        "POST",
        "/oauth/token",
        &[("Content-Type", "application/json")],
        r#"{"grant_type": "client_credentials"}"#,
    )
    .await;
    assert_oauth_error(&response, 400, "invalid_request");
    assert_eq!(sandbox.stats().tokens_issued, 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn wrong_secret_is_invalid_client() {
    let sandbox = start().await;
    let auth = client_basic("sandbox-client", "wrong");
    let response = token_request(sandbox.addr(), &auth, "grant_type=client_credentials").await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.json(),
        json!({"error": "invalid_client", "error_description": "Client authentication failed"})
    );
    assert_eq!(
        response.header("www-authenticate"),
        Some(r#"Basic realm="sandbox""#)
    );

    // Wrong secret in the body, and no client authentication at all.
    let response = send(
        sandbox.addr(),
        "POST",
        "/oauth/token",
        &[FORM],
        "grant_type=client_credentials&client_id=sandbox-client&client_secret=nope",
    )
    .await;
    assert_oauth_error(&response, 401, "invalid_client");
    let response = send(
        sandbox.addr(),
        "POST",
        "/oauth/token",
        &[FORM],
        "grant_type=client_credentials",
    )
    .await;
    assert_oauth_error(&response, 401, "invalid_client");
    assert_eq!(sandbox.stats().tokens_issued, 0);
    assert_eq!(sandbox.stats().token_requests, 3);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn basic_and_body_credentials_together_are_refused() {
    let sandbox = start().await;
    let config = Config::default();
    let auth = client_basic(&config.client_id, &config.client_secret);
    let form = format!(
        "grant_type=client_credentials&client_id=sandbox-client&client_secret={}",
        form_encode(&config.client_secret)
    );
    let response = token_request(sandbox.addr(), &auth, &form).await;
    assert_oauth_error(&response, 400, "invalid_request");
    assert!(response.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("both"));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn grant_types() {
    let sandbox = start().await;
    let config = Config::default();
    let auth = client_basic(&config.client_id, &config.client_secret);
    let addr = sandbox.addr();

    let response = token_request(addr, &auth, "grant_type=device_code&device_code=x").await;
    assert_oauth_error(&response, 400, "unsupported_grant_type");
    assert!(response.body.contains("`device_code`"));

    let response = token_request(addr, &auth, "grant_type=authorization_code&code=x").await;
    assert_oauth_error(&response, 400, "invalid_grant");
    assert_eq!(
        response.json()["error_description"],
        "The authorization code is unknown"
    );

    let response = token_request(addr, &auth, "scope=items%3Aread").await;
    assert_oauth_error(&response, 400, "invalid_request");

    let response = token_request(addr, &auth, "grant_type=password&username=demo&password=x").await;
    assert_oauth_error(&response, 400, "invalid_grant");

    let form = format!(
        "grant_type=password&username=demo&password={}&scope=logs%3Aread",
        form_encode(&config.password)
    );
    let response = token_request(addr, &auth, &form).await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["scope"], "logs:read");

    let response = token_request(
        addr,
        &auth,
        "grant_type=client_credentials&grant_type=password",
    )
    .await;
    assert_oauth_error(&response, 400, "invalid_request");

    assert_eq!(sandbox.stats().tokens_issued, 1);
    assert_eq!(sandbox.stats().token_requests, 6);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn scopes() {
    let sandbox = start().await;
    let config = Config::default();
    let auth = client_basic(&config.client_id, &config.client_secret);
    let addr = sandbox.addr();

    let response = token_request(
        addr,
        &auth,
        "grant_type=client_credentials&scope=items%3Aread+widgets%3Afly",
    )
    .await;
    assert_oauth_error(&response, 400, "invalid_scope");
    assert!(response.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("`widgets:fly`"));

    // `admin` is accepted but never granted.
    let response = token_request(
        addr,
        &auth,
        "grant_type=client_credentials&scope=admin+items%3Awrite+items%3Aread",
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json()["scope"], "items:write items:read");
    sandbox.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// API authentication

#[tokio::test]
async fn api_without_credentials_is_401_with_a_challenge() {
    let sandbox = start().await;
    let response = get(sandbox.addr(), "/items", &[]).await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("www-authenticate"),
        Some(r#"Bearer realm="sandbox""#)
    );
    assert_eq!(response.json()["error"], "unauthorized");
    assert!(response.json()["error_description"].is_string());
    let stats = sandbox.stats();
    assert_eq!(stats.api_requests, 1);
    assert_eq!(stats.unauthorized, 1);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn api_with_a_token_lists_items() {
    let sandbox = start().await;
    let token = token(&sandbox).await;
    let bearer = format!("Bearer {token}");
    let response = get(sandbox.addr(), "/items", &[("Authorization", &bearer)]).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(body["total"], 120);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 25);
    assert_eq!(
        items[0],
        json!({"id": 1, "name": "Item 1", "price": 1.5, "active": true})
    );
    assert_eq!(
        items[24],
        json!({"id": 25, "name": "Item 25", "price": 37.5, "active": true})
    );
    assert_eq!(items[1]["active"], false);

    let response = get(sandbox.addr(), "/items/7", &[("Authorization", &bearer)]).await;
    assert_eq!(
        response.json(),
        json!({"id": 7, "name": "Item 7", "price": 10.5, "active": true})
    );
    let response = get(sandbox.addr(), "/items/121", &[("Authorization", &bearer)]).await;
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["error"], "not_found");

    let stats = sandbox.stats();
    assert_eq!(stats.api_requests, 3);
    assert_eq!(stats.unauthorized, 0);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn every_credential_kind_is_accepted() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    let config = Config::default();

    let basic = format!(
        "Basic {}",
        BASE64.encode(format!("{}:{}", config.username, config.password))
    );
    let static_bearer = format!("Bearer {}", config.static_token);
    for headers in [
        vec![("Authorization", basic.as_str())],
        vec![("Authorization", static_bearer.as_str())],
        vec![("X-API-Key", config.api_key.as_str())],
    ] {
        let response = get(addr, "/items/1", &headers).await;
        assert_eq!(response.status, 200, "{headers:?}: {}", response.body);
    }
    let response = get(addr, "/items/1?api_key=sandbox-api-key", &[]).await;
    assert_eq!(response.status, 200);

    let response = get(addr, "/items/1", &[("X-API-Key", "wrong")]).await;
    assert_eq!(response.status, 401);
    let bad_basic = format!("Basic {}", BASE64.encode("demo:wrong"));
    let response = get(addr, "/items/1", &[("Authorization", &bad_basic)]).await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("www-authenticate"),
        Some(r#"Basic realm="sandbox""#)
    );

    // A session from /login.
    let response = send(
        addr,
        "POST",
        "/login",
        &[("Content-Type", "application/json")],
        r#"{"username": "demo", "password": "demo-password"}"#,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let session = response.json()["session"].as_str().unwrap().to_owned();
    let response = get(addr, "/items/2", &[("X-Session", &session)]).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["id"], 2);

    let response = send(
        addr,
        "POST",
        "/login",
        &[],
        r#"{"username": "demo", "password": "x"}"#,
    )
    .await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json()["error"], "invalid_credentials");
    let response = send(addr, "POST", "/login", &[], "username=demo").await;
    assert_eq!(response.status, 400);

    sandbox.expire_tokens();
    let response = get(addr, "/items/2", &[("X-Session", &session)]).await;
    assert_eq!(response.status, 401);
    let response = get(addr, "/items/2", &[("Authorization", &static_bearer)]).await;
    assert_eq!(response.status, 200, "the static token survives expiry");

    assert_eq!(sandbox.stats().unauthorized, 3);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn expired_tokens_are_invalid_token() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    let bearer = format!("Bearer {}", token(&sandbox).await);
    assert_eq!(
        get(addr, "/items", &[("Authorization", &bearer)])
            .await
            .status,
        200
    );

    let response = send(addr, "POST", "/_sandbox/expire-tokens", &[], "").await;
    assert_eq!(response.status, 204);
    let response = get(addr, "/items", &[("Authorization", &bearer)]).await;
    assert_eq!(response.status, 401);
    assert_eq!(
        response.header("www-authenticate"),
        Some(
            r#"Bearer realm="sandbox", error="invalid_token", error_description="The access token is invalid or expired""#
        )
    );
    assert_eq!(response.json()["error"], "invalid_token");

    let response = get(addr, "/items", &[("Authorization", "Bearer 0123")]).await;
    assert_eq!(response.status, 401);
    assert!(response
        .header("www-authenticate")
        .unwrap()
        .contains(r#"error="invalid_token""#));

    // A new token works again.
    let bearer = format!("Bearer {}", token(&sandbox).await);
    assert_eq!(
        get(addr, "/items", &[("Authorization", &bearer)])
            .await
            .status,
        200
    );
    assert_eq!(sandbox.stats().unauthorized, 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let sandbox = start_with(Config {
        token_lifetime_s: 1,
        ..Config::default()
    })
    .await;
    let bearer = format!("Bearer {}", token(&sandbox).await);
    let addr = sandbox.addr();
    assert_eq!(
        get(addr, "/items", &[("Authorization", &bearer)])
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = get(addr, "/items", &[("Authorization", &bearer)]).await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json()["error"], "invalid_token");
    sandbox.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn a_429_fault_applies_times_then_is_gone() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    let key = ("X-API-Key", "sandbox-api-key");
    let fault = json!({
        "path": "/items", "method": "GET", "times": 2, "status": 429,
        "headers": {"Retry-After": "1"}, "body": "{\"error\":\"slow_down\"}"
    });
    let response = send(addr, "POST", "/_sandbox/faults", &[], &fault.to_string()).await;
    assert_eq!(response.status, 204, "{}", response.body);

    // Another path and another method are not affected.
    assert_eq!(get(addr, "/items/1", &[key]).await.status, 200);
    let response = send(addr, "POST", "/items", &[key], r#"{"name": "x"}"#).await;
    assert_eq!(response.status, 201);

    for _ in 0..2 {
        let response = get(addr, "/items", &[key]).await;
        assert_eq!(response.status, 429);
        assert_eq!(response.header("retry-after"), Some("1"));
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(response.json(), json!({"error": "slow_down"}));
    }
    let response = get(addr, "/items", &[key]).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["total"], 120);
    let faults = get(addr, "/_sandbox/faults", &[]).await;
    assert_eq!(faults.json(), json!([]));
    assert_eq!(sandbox.stats().api_requests, 5);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn skip_lets_requests_through_first() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    let key = ("X-API-Key", "sandbox-api-key");
    sandbox.add_fault(Fault {
        skip: 2,
        status: Some(503),
        ..Fault::new("/items*")
    });
    let statuses = [
        get(addr, "/items", &[key]).await.status,
        get(addr, "/items/3", &[key]).await.status,
        get(addr, "/items/4", &[key]).await.status,
        get(addr, "/items", &[key]).await.status,
    ];
    assert_eq!(statuses, [200, 200, 503, 200]);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn faults_without_a_status_delay_or_expire() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    let bearer = format!("Bearer {}", token(&sandbox).await);
    let auth = ("Authorization", bearer.as_str());

    // A list of faults: first a delay, then a token expiry.
    let faults = json!([
        {"path": "/items", "delay_ms": 300},
        {"path": "/events", "expire_tokens": true}
    ]);
    let response = send(addr, "POST", "/_sandbox/faults", &[], &faults.to_string()).await;
    assert_eq!(response.status, 204);

    let started = Instant::now();
    let response = get(addr, "/items", &[auth]).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(response.status, 200);

    let response = get(addr, "/events", &[auth]).await;
    assert_eq!(response.status, 401);
    assert_eq!(response.json()["error"], "invalid_token");
    let response = get(addr, "/items", &[auth]).await;
    assert_eq!(response.status, 401, "the token stays revoked");

    // The fault's own status, on the token endpoint.
    sandbox.add_fault(Fault {
        status: Some(500),
        ..Fault::new("/oauth/token")
    });
    let config = Config::default();
    let basic = client_basic(&config.client_id, &config.client_secret);
    let response = token_request(addr, &basic, "grant_type=client_credentials").await;
    assert_eq!(response.status, 500);
    assert_eq!(response.json()["error"], "injected_fault");
    assert_eq!(sandbox.stats().token_requests, 2);
    assert_eq!(sandbox.stats().tokens_issued, 1);

    let response = send(
        addr,
        "POST",
        "/_sandbox/faults",
        &[],
        r#"{"path": "/x", "status": 42}"#,
    )
    .await;
    assert_eq!(response.status, 400);
    let response = send(addr, "POST", "/_sandbox/faults", &[], r#"{"status": 500}"#).await;
    assert_eq!(response.status, 400);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn forever_faults_and_clearing_them() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    sandbox.add_fault(Fault {
        times: 0,
        status: Some(502),
        content_type: Some("text/plain".into()),
        body: Some("bad gateway".into()),
        ..Fault::new("*")
    });
    for _ in 0..3 {
        let response = get(addr, "/nowhere", &[]).await;
        assert_eq!(response.status, 502);
        assert_eq!(response.header("content-type"), Some("text/plain"));
        assert_eq!(response.body, "bad gateway");
    }
    // Control routes are not subject to faults.
    let response = send(addr, "DELETE", "/_sandbox/faults", &[], "").await;
    assert_eq!(response.status, 204);
    let response = get(addr, "/nowhere", &[]).await;
    assert_eq!(response.status, 404);
    assert_eq!(response.json()["error"], "not_found");
    sandbox.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Pagination

#[tokio::test]
async fn offset_and_page_modes() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    let key = ("X-API-Key", "sandbox-api-key");
    let ids = |response: &Response| -> Vec<u64> {
        response.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["id"].as_u64().unwrap())
            .collect()
    };

    let response = get(addr, "/items?offset=110&limit=25", &[key]).await;
    assert_eq!(ids(&response), (111..=120).collect::<Vec<_>>());
    assert_eq!(response.json()["total"], 120);
    assert!(response.json().get("page").is_none());

    let response = get(addr, "/items?offset=0&limit=500", &[key]).await;
    assert_eq!(ids(&response).len(), 100);

    let response = get(addr, "/items?offset=200", &[key]).await;
    assert_eq!(ids(&response), Vec::<u64>::new());

    // Offset walk.
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let response = get(addr, &format!("/items?offset={offset}&limit=25"), &[key]).await;
        let page = ids(&response);
        if page.is_empty() {
            break;
        }
        offset += page.len();
        seen.extend(page);
    }
    assert_eq!(seen, (1..=120).collect::<Vec<_>>());

    let response = get(addr, "/items?page=2&page_size=50", &[key]).await;
    assert_eq!(ids(&response), (51..=100).collect::<Vec<_>>());
    let body = response.json();
    assert_eq!(body["page"], 2);
    assert_eq!(body["page_count"], 3);
    assert_eq!(body["total"], 120);

    let response = get(addr, "/items?page=1", &[key]).await;
    assert_eq!(ids(&response), (1..=25).collect::<Vec<_>>());
    assert_eq!(response.json()["page_count"], 5);

    let response = get(addr, "/items?page=3&page_size=50", &[key]).await;
    assert_eq!(ids(&response), (101..=120).collect::<Vec<_>>());

    for bad in [
        "/items?offset=-1",
        "/items?limit=ten",
        "/items?limit=0",
        "/items?page=0",
        "/items?page=1&page_size=x",
    ] {
        let response = get(addr, bad, &[key]).await;
        assert_eq!(response.status, 400, "{bad}");
        assert_eq!(response.json()["error"], "invalid_request", "{bad}");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn cursor_walk_reaches_every_event_once() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    let key = ("X-API-Key", "sandbox-api-key");

    let walk = |filter: &'static str| async move {
        let mut seqs = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut target = format!("/events?{filter}");
            if let Some(cursor) = &cursor {
                target.push_str(&format!("&cursor={cursor}"));
            }
            let response = get(addr, &target, &[key]).await;
            assert_eq!(response.status, 200, "{}", response.body);
            let body = response.json();
            let events = body["events"].as_array().unwrap();
            assert!(events.len() <= 20);
            for event in events {
                let seq = event["seq"].as_u64().unwrap();
                assert_eq!(event["id"], format!("evt-{seq}"));
                assert_eq!(
                    event["type"],
                    ["created", "updated", "deleted"][seq as usize % 3]
                );
                seqs.push(seq);
            }
            pages += 1;
            match &body["next_cursor"] {
                Value::Null => break,
                Value::String(next) => cursor = Some(next.clone()),
                other => panic!("next_cursor {other}"),
            }
        }
        (seqs, pages)
    };

    let (seqs, pages) = walk("").await;
    assert_eq!(seqs, (1..=55).collect::<Vec<_>>());
    assert_eq!(pages, 3);

    let (seqs, pages) = walk("type=deleted").await;
    assert_eq!(seqs, (1..=55).filter(|i| i % 3 == 2).collect::<Vec<_>>());
    assert_eq!(pages, 1);

    let response = get(addr, "/events?cursor=c20", &[key]).await;
    assert_eq!(response.json()["next_cursor"], "c40");
    assert_eq!(response.json()["events"][0]["seq"], 21);
    for bad in ["nope", "c", "c99", "c-1"] {
        let response = get(addr, &format!("/events?cursor={bad}"), &[key]).await;
        assert_eq!(response.status, 400, "{bad}");
    }
    sandbox.shutdown().await;
}

#[tokio::test]
async fn link_header_walk() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    let key = ("X-API-Key", "sandbox-api-key");
    let mut target = "/logs?per_page=50".to_owned();
    let mut lines = Vec::new();
    let mut links = Vec::new();
    loop {
        let response = get(addr, &target, &[key]).await;
        assert_eq!(response.status, 200, "{}", response.body);
        for line in response.json()["logs"].as_array().unwrap() {
            let n = line["line"].as_u64().unwrap();
            assert_eq!(line["message"], format!("log line {n}"));
            lines.push(n);
        }
        let Some(link) = response.header("link") else {
            break;
        };
        links.push(link.to_owned());
        let url = link
            .strip_prefix('<')
            .and_then(|l| l.strip_suffix(">; rel=\"next\""))
            .expect("Link: <url>; rel=\"next\"");
        target = url
            .strip_prefix(&format!("http://{addr}"))
            .expect("link to the sandbox")
            .to_owned();
    }
    assert_eq!(lines, (1..=120).collect::<Vec<_>>());
    assert_eq!(
        links,
        [
            format!("<http://{addr}/logs?page=2&per_page=50>; rel=\"next\""),
            format!("<http://{addr}/logs?page=3&per_page=50>; rel=\"next\""),
        ]
    );

    // The default page size is 50, at most 100; the Host header names the host.
    let response = get(addr, "/logs?per_page=1000", &[key]).await;
    assert_eq!(response.json()["logs"].as_array().unwrap().len(), 100);
    let request = format!(
        "GET /logs HTTP/1.1\r\nHost: localhost:{}\r\nX-API-Key: sandbox-api-key\r\nConnection: close\r\n\r\n",
        addr.port()
    );
    let response = raw_exchange(addr, &request).await;
    assert_eq!(response.json()["logs"].as_array().unwrap().len(), 50);
    assert_eq!(
        response.header("link"),
        Some(
            format!(
                "<http://localhost:{}/logs?page=2&per_page=50>; rel=\"next\"",
                addr.port()
            )
            .as_str()
        )
    );
    sandbox.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Echo, items, request log, control

#[tokio::test]
async fn echo_redacts_credentials() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    let response = send(
        addr,
        "PUT",
        "/echo?message=a%26b%3Dc+d&api_key=sandbox-api-key&n=1",
        &[
            ("X-Session", "s3cret-session"),
            ("Cookie", "id=secret"),
            ("Authorization", "Bearer sandbox-static-token"),
            ("X-Custom", "Visible"),
            ("Content-Type", "application/json"),
        ],
        r#"{"a": [1, 2]}"#,
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json();
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["path"], "/echo");
    assert_eq!(
        body["query"],
        json!([
            ["message", "a&b=c d"],
            ["api_key", "<redacted>"],
            ["n", "1"]
        ])
    );
    assert_eq!(
        body["raw_query"],
        "message=a%26b%3Dc+d&api_key=<redacted>&n=1"
    );
    let headers = &body["headers"];
    for name in ["authorization", "x-session", "cookie"] {
        assert_eq!(headers[name], "<redacted>", "{name}");
    }
    assert_eq!(headers["x-custom"], "Visible");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(body["body"], r#"{"a": [1, 2]}"#);
    assert_eq!(body["json"], json!({"a": [1, 2]}));
    assert!(!response.body.contains("sandbox-api-key"));
    assert!(!response.body.contains("s3cret"));
    assert!(!response.body.contains("sandbox-static-token"));

    let response = get(addr, "/echo", &[("X-API-Key", "sandbox-api-key")]).await;
    let body = response.json();
    assert_eq!(body["headers"]["x-api-key"], "<redacted>");
    assert_eq!(body["json"], Value::Null);
    assert_eq!(body["query"], json!([]));
    assert_eq!(body["raw_query"], "");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn create_item() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    let key = ("X-API-Key", "sandbox-api-key");
    let response = send(
        addr,
        "POST",
        "/items",
        &[key],
        r#"{"name": "New", "price": 2.5}"#,
    )
    .await;
    assert_eq!(response.status, 201);
    assert_eq!(
        response.json(),
        json!({"name": "New", "price": 2.5, "id": 121})
    );
    let response = send(addr, "POST", "/items", &[key], r#"{"name": "Next"}"#).await;
    assert_eq!(response.json()["id"], 122);
    let response = send(addr, "POST", "/items", &[key], "[1]").await;
    assert_eq!(response.status, 400);
    // Not stored.
    assert_eq!(get(addr, "/items/121", &[key]).await.status, 404);
    let response = send(addr, "DELETE", "/items/1", &[key], "").await;
    assert_eq!(response.status, 405);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn request_log_records_what_was_sent() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    let response = send(
        addr,
        "POST",
        "/items?dry_run=1&api_key=sandbox-api-key",
        &[("Content-Type", "application/json"), ("X-Trace", "abc")],
        r#"{"name": "logged"}"#,
    )
    .await;
    assert_eq!(response.status, 201);
    get(addr, "/_sandbox/stats", &[]).await;
    get(addr, "/nowhere", &[]).await;

    let requests = sandbox.requests();
    assert_eq!(requests.len(), 2, "control routes are not recorded");
    let first = &requests[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/items");
    assert_eq!(first.query, "dry_run=1&api_key=sandbox-api-key");
    assert_eq!(first.body, r#"{"name": "logged"}"#);
    assert_eq!(first.header("x-trace"), Some("abc"));
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.header("host"), Some(addr.to_string().as_str()));
    assert_eq!(requests[1].path, "/nowhere");
    assert_eq!(requests[1].body, "");

    let served = get(addr, "/_sandbox/requests", &[]).await.json();
    assert_eq!(served, serde_json::to_value(&requests).unwrap());
    assert_eq!(served[0]["headers"][0].as_array().unwrap().len(), 2);

    let response = send(addr, "DELETE", "/_sandbox/requests", &[], "").await;
    assert_eq!(response.status, 204);
    assert!(sandbox.requests().is_empty());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn stats_route_matches_the_api() {
    let sandbox = start().await;
    let addr = sandbox.addr();
    token(&sandbox).await;
    get(addr, "/items", &[]).await;
    get(addr, "/logs", &[("X-API-Key", "sandbox-api-key")]).await;
    let served = get(addr, "/_sandbox/stats", &[]).await.json();
    assert_eq!(
        served,
        json!({
            "token_requests": 1,
            "tokens_issued": 1,
            "api_requests": 2,
            "unauthorized": 1,
            "refresh_grants": 0,
            "revocations": 0,
            "authorizations": 0,
        })
    );
    assert_eq!(served, serde_json::to_value(sandbox.stats()).unwrap());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn bodies_over_one_mib_are_refused() {
    let sandbox = start().await;
    // Refused from the Content-Length alone: the body is never sent (sending it would race the
    // server closing the connection).
    let request = format!(
        "POST /echo HTTP/1.1\r\nHost: {}\r\nX-API-Key: sandbox-api-key\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        sandbox.addr(),
        1024 * 1024 + 1
    );
    let response = raw_exchange(sandbox.addr(), &request).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.json()["error"], "payload_too_large");
    let ok = "y".repeat(1024 * 1024);
    let response = send(
        sandbox.addr(),
        "POST",
        "/echo",
        &[("X-API-Key", "sandbox-api-key")],
        &ok,
    )
    .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["body"].as_str().unwrap().len(), 1024 * 1024);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn non_loopback_addresses_are_refused() {
    for listen in ["0.0.0.0:0", "192.0.2.1:8080", "[::]:0"] {
        let error = Sandbox::start(listen.parse().unwrap(), Config::default())
            .await
            .expect_err(listen);
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput, "{listen}");
        assert!(error.to_string().contains("loopback"), "{error}");
    }
    let sandbox = start().await;
    assert!(sandbox.addr().ip().is_loopback());
    assert_ne!(sandbox.addr().port(), 0);
    assert_eq!(
        sandbox.url(),
        format!("http://127.0.0.1:{}", sandbox.addr().port())
    );
    let addr = sandbox.addr();
    sandbox.shutdown().await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "stopped after shutdown"
    );
}

#[tokio::test]
async fn faults_from_the_config() {
    let sandbox = start_with(Config {
        faults: vec![Fault {
            status: Some(418),
            ..Fault::new("/login")
        }],
        ..Config::default()
    })
    .await;
    let response = send(sandbox.addr(), "POST", "/login", &[], "{}").await;
    assert_eq!(response.status, 418);
    let response = send(sandbox.addr(), "POST", "/login", &[], "{}").await;
    assert_eq!(response.status, 400);
    sandbox.shutdown().await;

    let error = Sandbox::start(
        "127.0.0.1:0".parse().unwrap(),
        Config {
            faults: vec![Fault::new("items")],
            ..Config::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}

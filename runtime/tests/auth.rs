//! End-to-end tests of authentication: every auth method of the runtime against the sandbox
//! provider over real HTTP on loopback, lenient and broken token responses (injected with
//! `sandbox::Fault`), retries, scope drift, the token cache, and the `connector auth` / `run`
//! commands' output and failures.

mod support;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use runtime::auth::Credentials;
use runtime::resolve::Given;
use runtime::run::Connection;
use runtime::ErrorKind;
use sandbox::{Config, Fault, SeenRequest};
use support::{stderr, stdout, Env};

// ---------------------------------------------------------------------------------------------
// Helpers

const SECRET: &str = "sandbox-secret/+=%:";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 Appendix B).
fn form(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The form fields of a request body.
fn form_fields(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The requests the sandbox received on `path`, oldest first.
fn seen(env: &Env, path: &str) -> Vec<SeenRequest> {
    env.sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

/// The only token request the sandbox received.
fn the_token_request(env: &Env) -> SeenRequest {
    let reqs = seen(env, "/oauth/token");
    assert_eq!(reqs.len(), 1, "token requests: {reqs:#?}");
    reqs.into_iter().next().unwrap()
}

/// Fetches credentials now.
fn authenticate(env: &Env, conn: &Connection) -> runtime::Result<Arc<Credentials>> {
    env.rt.block_on(conn.authenticate())
}

/// The exposed value of a secret `auth.*` field.
fn secret_field(c: &Credentials, name: &str) -> String {
    match c.fields.get(name) {
        Some(runtime::value::Value::Secret(s)) => s.expose().to_owned(),
        other => panic!("`auth.{name}` is not a secret: {other:?}"),
    }
}

/// The shown (JSON) value of a plain `auth.*` field.
fn plain_field(c: &Credentials, name: &str) -> serde_json::Value {
    match c.fields.get(name) {
        Some(runtime::value::Value::Plain(v)) => v.clone(),
        other => panic!("`auth.{name}` is not a plain value: {other:?}"),
    }
}

/// A 200 from the token endpoint with `body` (JSON), once.
fn token_body(env: &Env, body: &str) {
    env.sandbox.add_fault(Fault {
        status: Some(200),
        body: Some(body.to_owned()),
        ..Fault::new("/oauth/token")
    });
}

/// A connector for the sandbox with one auth method `m` (`method`: its YAML, indented by four
/// spaces) and the endpoints `list_items`, `get_item` and `echo`.
fn connector_yaml(method: &str) -> String {
    format!(
        r#"connector: t
name: Test
base_url: "{{{{ vars.base_url }}}}"
variables:
  base_url:
    label: Base URL
    default: http://127.0.0.1:8080
auth:
  m:
{method}
endpoints:
  list_items:
    method: GET
    url: /items
    records: /items
    pagination:
      type: offset
      limit: 25
      total: /total
  get_item:
    method: GET
    url: "/items/{{{{ input.id }}}}"
    inputs:
      id:
        label: Item ID
        required: true
  echo:
    method: GET
    url: /echo
    query:
      message: "{{{{ input.message }}}}"
    inputs:
      message:
        label: Message
        required: true
"#
    )
}

/// Writes `connectors/NAME.yaml` (a connector with the auth method `method`) and `NAME.yaml`,
/// an instance of it with `base_url` pointing at the sandbox and the extra `values` lines
/// (indented by two spaces), and the client secret in `secret.txt`.
fn custom_instance(env: &Env, name: &str, method: &str, values: &str) -> PathBuf {
    env.write(&format!("connectors/{name}.yaml"), &connector_yaml(method));
    env.write(
        "secret.txt",
        &format!("{}\n", env.sandbox.config().client_secret),
    );
    env.write(
        &format!("{name}.yaml"),
        &format!(
            "connector: connectors/{name}.yaml\nauth: m\nvalues:\n  base_url: {}\n{values}",
            env.url()
        ),
    )
}

/// A client-credentials method of `connector_yaml` with `extra` keys (indented by four spaces).
fn cc_method(extra: &str) -> String {
    format!(
        "    type: oauth2_client_credentials\n    request:\n      url: \"{{{{ vars.base_url }}}}/oauth/token\"\n{extra}"
    )
}

const CLIENT: &str = "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n";

/// The value of the header `name` on the last request to `path`.
fn last_header(env: &Env, path: &str, name: &str) -> Option<String> {
    seen(env, path)
        .last()
        .and_then(|r| r.header(name).map(str::to_owned))
}

fn assert_contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "`{p}` is not in:\n{text}");
    }
}

/// A failed command: exit status 1, exactly one line on stderr, starting with `error: `,
/// containing `parts`, and none of `secrets` anywhere in the output. Returns that line.
fn assert_one_error_line(out: &Output, parts: &[&str], secrets: &[&str]) -> String {
    let err = stderr(out);
    let text = format!("{}{err}", stdout(out));
    assert_eq!(out.status.code(), Some(1), "stdout/stderr:\n{text}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "stderr is not one line:\n{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    assert_contains(lines[0], parts);
    assert_no_secret(&text, secrets);
    lines[0].to_owned()
}

fn assert_no_secret(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !text.contains(s),
            "the secret `{s}` is in the output:\n{text}"
        );
        let encoded = form(s);
        assert!(
            !text.contains(&encoded),
            "the encoded secret `{encoded}` is in the output:\n{text}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1–3. Client authentication of the client-credentials grant

#[test]
fn client_auth_basic_form_encodes_id_and_secret() {
    let env = Env::new();
    let conn = env.connect(&env.client_credentials());
    let (records, stats) = env.call(&conn, "list_items", &[]).unwrap();
    assert_eq!(records.len(), 120);
    assert_eq!(records[0]["id"], 1);
    assert_eq!(stats.token_requests, 1);

    let req = the_token_request(&env);
    assert_eq!(req.method, "POST");
    // RFC 6749 §2.3.1: each of id and secret form-urlencoded, then Basic.
    assert_eq!(form(SECRET), "sandbox-secret%2F%2B%3D%25%3A");
    assert_eq!(
        req.header("authorization"),
        Some(
            format!(
                "Basic {}",
                b64("sandbox-client:sandbox-secret%2F%2B%3D%25%3A")
            )
            .as_str()
        )
    );
    let fields = form_fields(&req.body);
    assert_eq!(field(&fields, "grant_type"), Some("client_credentials"));
    assert_eq!(field(&fields, "client_id"), None);
    assert_eq!(field(&fields, "client_secret"), None);
    assert_eq!(field(&fields, "scope"), None, "an empty scope is left out");

    // The token the sandbox issued is the one sent to the API.
    let issued = env.sandbox.issued();
    assert_eq!(issued.len(), 1);
    assert_eq!(
        last_header(&env, "/items", "authorization"),
        Some(format!("Bearer {}", issued[0]))
    );
    let s = env.sandbox.stats();
    assert_eq!(
        (s.token_requests, s.tokens_issued, s.unauthorized),
        (1, 1, 0)
    );
}

#[test]
fn client_auth_basic_raw_sends_the_secret_unencoded() {
    // The default secret has characters that form-decoding changes: the sandbox refuses it.
    let env = Env::new();
    let inst = custom_instance(
        &env,
        "raw",
        &cc_method("      client_auth: basic_raw\n"),
        CLIENT,
    );
    let e = env.auth_err(&inst);
    let req = the_token_request(&env);
    assert_eq!(
        req.header("authorization"),
        Some(format!("Basic {}", b64(&format!("sandbox-client:{SECRET}"))).as_str())
    );
    assert_eq!(e.kind(), ErrorKind::AuthRejected);
    assert_eq!(e.status(), Some(401));
    assert_contains(
        e.message(),
        &["invalid_client", "(Client authentication failed)"],
    );
    assert_no_secret(e.message(), &[SECRET]);

    // With an alphanumeric secret, encoded and raw are the same, and it works.
    let env = Env::with(Config {
        client_secret: "Alnum0Secret9".to_owned(),
        ..Config::default()
    });
    let inst = custom_instance(
        &env,
        "raw",
        &cc_method("      client_auth: basic_raw\n"),
        CLIENT,
    );
    let conn = env.connect(&inst);
    let (records, stats) = env.call(&conn, "list_items", &[]).unwrap();
    assert_eq!(records.len(), 120);
    assert_eq!(stats.token_requests, 1);
    assert_eq!(
        the_token_request(&env).header("authorization"),
        Some(format!("Basic {}", b64("sandbox-client:Alnum0Secret9")).as_str())
    );
}

#[test]
fn client_auth_body_puts_id_and_secret_in_the_form() {
    let env = Env::new();
    let inst = custom_instance(
        &env,
        "body",
        &cc_method("      client_auth: body\n"),
        CLIENT,
    );
    let conn = env.connect(&inst);
    let (records, _) = env.call(&conn, "list_items", &[]).unwrap();
    assert_eq!(records.len(), 120);

    let req = the_token_request(&env);
    assert_eq!(req.header("authorization"), None);
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let fields = form_fields(&req.body);
    assert_eq!(field(&fields, "client_id"), Some("sandbox-client"));
    assert_eq!(field(&fields, "client_secret"), Some(SECRET));
    assert_eq!(field(&fields, "grant_type"), Some("client_credentials"));
    assert!(
        req.body
            .contains("client_secret=sandbox-secret%2F%2B%3D%25%3A"),
        "{}",
        req.body
    );
}

#[test]
fn client_auth_none_sends_only_the_client_id() {
    // A public client's password grant (`client_auth: none` on client credentials is a
    // compile error): the sandbox wants client authentication for it.
    let env = Env::new();
    env.write("pw.txt", "demo-password");
    let inst = custom_instance(
        &env,
        "none",
        "    type: oauth2_password\n    request:\n      url: \"{{ vars.base_url }}/oauth/token\"\n      client_auth: none\n",
        "  client_id: sandbox-client\n  username: demo\n  password: { file: pw.txt }\n",
    );
    let e = env.auth_err(&inst);
    let req = the_token_request(&env);
    assert_eq!(req.header("authorization"), None);
    let fields = form_fields(&req.body);
    assert_eq!(field(&fields, "client_id"), Some("sandbox-client"));
    assert_eq!(field(&fields, "client_secret"), None);
    assert_eq!(e.kind(), ErrorKind::AuthRejected);
    assert_eq!(e.status(), Some(401));
    assert_contains(
        e.message(),
        &[
            "/oauth/token",
            "401 Unauthorized",
            "invalid_client",
            "(Client authentication failed)",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// 4–6. The other auth methods

#[test]
fn password_grant() {
    let env = Env::new();
    env.write("secret.txt", &format!("{SECRET}\n"));
    env.write("password.txt", "demo-password\n");
    let inst = env.sandbox_instance(
        "pw",
        "password",
        "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n  username: demo\n  password: { file: password.txt }\n",
    );
    let conn = env.connect(&inst);
    let (records, stats) = env.call(&conn, "get_item", &[("id", "7")]).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["id"], 7);
    assert_eq!(records[0]["name"], "Item 7");
    assert_eq!(stats.token_requests, 1);

    let req = the_token_request(&env);
    let fields = form_fields(&req.body);
    assert_eq!(field(&fields, "grant_type"), Some("password"));
    assert_eq!(field(&fields, "username"), Some("demo"));
    assert_eq!(field(&fields, "password"), Some("demo-password"));
    assert_eq!(
        req.header("authorization"),
        Some(format!("Basic {}", b64(&format!("sandbox-client:{}", form(SECRET)))).as_str())
    );
    assert_eq!(
        last_header(&env, "/items/7", "authorization"),
        Some(format!("Bearer {}", env.sandbox.issued()[0]))
    );

    // A wrong password is the server's invalid_grant, quoted.
    env.write("password.txt", "not-demo-password\n");
    let e = env.auth_err(&inst);
    assert_eq!(e.kind(), ErrorKind::AuthRejected);
    assert_contains(
        e.message(),
        &["invalid_grant", "(The user name or password is wrong)"],
    );
    assert_no_secret(e.message(), &["not-demo-password", SECRET]);
}

#[test]
fn custom_session_login() {
    let env = Env::new();
    let inst = env.sandbox_instance(
        "custom",
        "custom",
        "  username: demo\n  password: { file: password.txt }\n",
    );
    env.write("password.txt", "demo-password\n");
    let conn = env.connect(&inst);
    let (records, stats) = env.call(&conn, "list_items", &[]).unwrap();
    assert_eq!(records.len(), 120);
    assert_eq!(stats.pages, 5);
    assert_eq!(stats.token_requests, 1);

    let logins = seen(&env, "/login");
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].method, "POST");
    let body: serde_json::Value = serde_json::from_str(&logins[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"username": "demo", "password": "demo-password"})
    );
    let session = env.sandbox.issued();
    assert_eq!(session.len(), 1);
    let items = seen(&env, "/items");
    assert_eq!(items.len(), 5);
    for r in &items {
        assert_eq!(r.header("x-session"), Some(session[0].as_str()));
        assert_eq!(r.header("authorization"), None);
    }
    assert_eq!(env.sandbox.stats().token_requests, 0, "no /oauth/token");

    let creds = authenticate(&env, &conn).unwrap();
    assert_eq!(creds.lifetime, Some(Duration::from_secs(600)));
    assert_eq!(secret_field(&creds, "session").len(), 64);
}

#[test]
fn custom_method_with_a_missing_field_names_it() {
    let env = Env::new();
    let method = r#"    type: custom
    variables:
      username: { label: User name, required: true }
      password: { label: Password, required: true, secret: true }
    request:
      url: "{{ vars.base_url }}/login"
      method: POST
      body:
        json:
          username: "{{ vars.username }}"
          password: "{{ vars.password }}"
    response:
      fields:
        session: /data/session_id
    apply:
      headers:
        X-Session: "{{ auth.session }}"
"#;
    env.write("password.txt", "demo-password\n");
    let inst = custom_instance(
        &env,
        "missing",
        method,
        "  username: demo\n  password: { file: password.txt }\n",
    );
    let e = env.auth_err(&inst);
    assert_eq!(e.kind(), ErrorKind::AuthResponse);
    assert_contains(
        e.message(),
        &[
            "/login",
            "no `/data/session_id`",
            "auth.session",
            "keys in the response: `session`",
        ],
    );
    // The login did succeed: the session it returned is never shown.
    let issued = env.sandbox.issued();
    assert_eq!(issued.len(), 1);
    assert!(!e.message().contains(&issued[0]), "{e}");
    assert!(!e.message().contains("demo-password"), "{e}");
}

#[test]
fn basic_method_is_plain_rfc_7617() {
    let env = Env::new();
    let inst = env.sandbox_instance(
        "basic",
        "basic",
        "  username: demo\n  password: { file: password.txt }\n",
    );
    env.write("password.txt", "demo-password\n");
    let conn = env.connect(&inst);
    let (records, stats) = env.call(&conn, "get_item", &[("id", "3")]).unwrap();
    assert_eq!(records[0]["id"], 3);
    assert_eq!(stats.token_requests, 0);
    assert_eq!(
        last_header(&env, "/items/3", "authorization"),
        Some(format!("Basic {}", b64("demo:demo-password")))
    );
    assert_eq!(env.sandbox.stats().token_requests, 0);
}

#[test]
fn bearer_method_sends_the_static_token() {
    let env = Env::new();
    env.write("token.txt", "sandbox-static-token\n");
    let inst = env.sandbox_instance("bearer", "bearer", "  token: { file: token.txt }\n");
    let conn = env.connect(&inst);
    let (records, stats) = env.call(&conn, "get_item", &[("id", "2")]).unwrap();
    assert_eq!(records[0]["id"], 2);
    assert_eq!(stats.token_requests, 0);
    assert_eq!(
        last_header(&env, "/items/2", "authorization").as_deref(),
        Some("Bearer sandbox-static-token")
    );
    assert_eq!(env.sandbox.stats().token_requests, 0);
}

#[test]
fn api_key_in_a_header() {
    let env = Env::new();
    env.write("key.txt", "sandbox-api-key\n");
    let inst = env.sandbox_instance("key", "api_key", "  api_key: { file: key.txt }\n");
    let conn = env.connect(&inst);
    let (records, _) = env.call(&conn, "get_item", &[("id", "4")]).unwrap();
    assert_eq!(records[0]["id"], 4);
    let req = &seen(&env, "/items/4")[0];
    assert_eq!(req.header("x-api-key"), Some("sandbox-api-key"));
    assert_eq!(req.header("authorization"), None);
    assert_eq!(req.query, "");
}

#[test]
fn api_key_in_the_query() {
    let env = Env::new();
    env.write("key.txt", "sandbox-api-key\n");
    let inst = custom_instance(
        &env,
        "query",
        "    type: api_key\n    in: query\n",
        "  api_key: { file: key.txt }\n",
    );
    let conn = env.connect(&inst);
    let (records, _) = env.call(&conn, "echo", &[("message", "a&b")]).unwrap();
    assert_eq!(records.len(), 1);
    let req = &seen(&env, "/echo")[0];
    let query = form_fields(&req.query);
    assert_eq!(field(&query, "api_key"), Some("sandbox-api-key"));
    assert_eq!(field(&query, "message"), Some("a&b"));
    assert_eq!(req.header("x-api-key"), None);
    assert_eq!(req.header("authorization"), None);
    // A failure never shows the key, though it is in the URL.
    env.write(
        "down.yaml",
        "connector: connectors/query.yaml\nauth: m\nvalues:\n  base_url: http://127.0.0.1:1\n  api_key: { file: key.txt }\n",
    );
    let out = env.cli(&["run", "down.yaml", "echo", "--input", "message=x"], &[]);
    assert_one_error_line(
        &out,
        &["GET http://127.0.0.1:1/echo", "cannot connect"],
        &["sandbox-api-key"],
    );
    // A paginated call keeps the key on every page, once.
    let (records, stats) = env.call(&conn, "list_items", &[]).unwrap();
    assert_eq!((records.len(), stats.pages), (120, 5));
    for r in seen(&env, "/items") {
        let q = form_fields(&r.query);
        let keys: Vec<_> = q.iter().filter(|(n, _)| n == "api_key").collect();
        assert_eq!(keys.len(), 1, "{}", r.query);
        assert_eq!(keys[0].1, "sandbox-api-key");
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Lenient token responses

/// Authenticates against a token endpoint that answers `body` once, then calls `echo` with
/// the credentials: the token in the body is the sandbox's static token, so the API accepts
/// it. Returns the credentials and the Authorization header the API saw.
fn lenient(env: &Env, instance: &Path, body: &str) -> (Arc<Credentials>, String) {
    token_body(env, body);
    let (conn, creds) = env.auth_ok(instance);
    let (records, stats) = env.call(&conn, "echo", &[("message", "hi")]).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(stats.token_requests, 0, "the cached token is used");
    assert_eq!(env.sandbox.stats().token_requests, 1);
    let header = last_header(env, "/echo", "authorization").expect("an Authorization header");
    (creds, header)
}

#[test]
fn token_type_is_case_insensitive() {
    for tt in ["bearer", "BEARER", "Bearer"] {
        let env = Env::new();
        let body = format!(
            r#"{{"access_token": "sandbox-static-token", "token_type": "{tt}", "expires_in": 3600}}"#
        );
        let (creds, header) = lenient(&env, &env.client_credentials(), &body);
        assert_eq!(plain_field(&creds, "token_type"), "Bearer", "{tt}");
        assert!(creds.warnings.is_empty(), "{tt}: {:?}", creds.warnings);
        assert_eq!(secret_field(&creds, "access_token"), "sandbox-static-token");
        assert_eq!(header, "Bearer sandbox-static-token");
    }
}

#[test]
fn expires_in_as_a_string_or_missing() {
    let env = Env::new();
    let inst = custom_instance(
        &env,
        "life",
        &cc_method("    default_lifetime_s: 777\n"),
        CLIENT,
    );
    let (creds, header) = lenient(
        &env,
        &inst,
        r#"{"access_token": "sandbox-static-token", "token_type": "Bearer", "expires_in": "3600"}"#,
    );
    assert_eq!(creds.lifetime, Some(Duration::from_secs(3600)));
    assert_eq!(plain_field(&creds, "expires_in"), 3600);
    assert!(creds.warnings.is_empty(), "{:?}", creds.warnings);
    assert_eq!(header, "Bearer sandbox-static-token");

    let env = Env::new();
    let inst = custom_instance(
        &env,
        "life",
        &cc_method("    default_lifetime_s: 777\n"),
        CLIENT,
    );
    let (creds, header) = lenient(
        &env,
        &inst,
        r#"{"access_token": "sandbox-static-token", "token_type": "Bearer"}"#,
    );
    assert_eq!(creds.lifetime, Some(Duration::from_secs(777)));
    assert!(creds.warnings.is_empty(), "{:?}", creds.warnings);
    assert_eq!(header, "Bearer sandbox-static-token");
    // Refreshed before expiry: the default margin is max(60 s, 10 %), with up to a tenth of
    // it more as jitter.
    let refresh = creds.refresh_at.unwrap() - creds.obtained;
    assert!(
        refresh <= Duration::from_millis(777_000 - 77_700)
            && refresh >= Duration::from_millis(777_000 - 77_700 - 7_770),
        "{refresh:?}"
    );

    // The sandbox connector's own default is 3600 s.
    let env = Env::new();
    let (creds, _) = lenient(
        &env,
        &env.client_credentials(),
        r#"{"access_token": "sandbox-static-token"}"#,
    );
    assert_eq!(creds.lifetime, Some(Duration::from_secs(3600)));
    assert!(!creds.fields.contains_key("token_type"));
}

#[test]
fn token_under_another_key_or_a_json_pointer() {
    let env = Env::new();
    let inst = env.sandbox_instance(
        "tok",
        "client_credentials",
        &format!("{CLIENT}  token_key: tok\n"),
    );
    env.write("secret.txt", &format!("{SECRET}\n"));
    let (creds, header) = lenient(
        &env,
        &inst,
        r#"{"tok": "sandbox-static-token", "token_type": "bearer", "expires_in": 60}"#,
    );
    assert_eq!(secret_field(&creds, "access_token"), "sandbox-static-token");
    assert_eq!(creds.lifetime, Some(Duration::from_secs(60)));
    assert_eq!(header, "Bearer sandbox-static-token");

    let env = Env::new();
    let inst = env.sandbox_instance(
        "ptr",
        "client_credentials",
        &format!("{CLIENT}  token_key: /data/token\n"),
    );
    env.write("secret.txt", &format!("{SECRET}\n"));
    let (creds, header) = lenient(
        &env,
        &inst,
        r#"{"data": {"token": "sandbox-static-token"}, "token_type": "Bearer", "expires_in": 3600}"#,
    );
    assert_eq!(secret_field(&creds, "access_token"), "sandbox-static-token");
    assert_eq!(header, "Bearer sandbox-static-token");
    // Shown responses redact the token wherever it was.
    let shown = creds.shown_response().unwrap();
    assert_eq!(shown["data"]["token"], "<redacted string(20)>");
}

// ---------------------------------------------------------------------------------------------
// 8. Token endpoint errors

#[test]
fn a_200_without_the_token_names_the_key_and_the_keys_present() {
    let env = Env::new();
    token_body(&env, r#"{"token": "abc-123-xyz", "expires_in": 3600}"#);
    let e = env.auth_err(&env.client_credentials());
    assert_eq!(e.kind(), ErrorKind::AuthResponse);
    assert_contains(
        e.message(),
        &[
            "200 OK",
            "without `access_token`",
            "keys in the response: `token`, `expires_in`",
        ],
    );
    assert!(!e.message().contains("abc-123-xyz"), "{e}");
}

#[test]
fn a_200_with_an_error_member_is_a_rejection() {
    let env = Env::new();
    token_body(
        &env,
        r#"{"error": "temporarily_unavailable", "error_description": "Try again in a minute"}"#,
    );
    let e = env.auth_err(&env.client_credentials());
    assert_eq!(e.kind(), ErrorKind::AuthRejected);
    assert_eq!(e.status(), Some(200));
    assert_contains(
        e.message(),
        &["temporarily_unavailable", "(Try again in a minute)"],
    );
}

#[test]
fn oauth_errors_quote_the_server() {
    // invalid_client: a wrong secret.
    let env = Env::new();
    env.write("wrong.txt", "not-the-secret-at-all\n");
    let inst = env.sandbox_instance(
        "wrong",
        "client_credentials",
        "  client_id: sandbox-client\n  client_secret: { file: wrong.txt }\n",
    );
    let e = env.auth_err(&inst);
    assert_eq!((e.kind(), e.status()), (ErrorKind::AuthRejected, Some(401)));
    assert_contains(
        e.message(),
        &[
            "401 Unauthorized",
            "invalid_client (Client authentication failed)",
            "client_auth",
        ],
    );
    assert!(!e.message().contains("not-the-secret-at-all"), "{e}");

    // invalid_scope.
    let env = Env::new();
    let inst = env.sandbox_instance(
        "scope",
        "client_credentials",
        &format!("{CLIENT}  scope: \"nope:x\"\n"),
    );
    env.write("secret.txt", &format!("{SECRET}\n"));
    let e = env.auth_err(&inst);
    assert_eq!(
        field(&form_fields(&the_token_request(&env).body), "scope"),
        Some("nope:x")
    );
    assert_eq!((e.kind(), e.status()), (ErrorKind::AuthRejected, Some(400)));
    assert_contains(
        e.message(),
        &[
            "400 Bad Request",
            "invalid_scope (The scope `nope:x` is unknown",
        ],
    );

    // unsupported_grant_type.
    let env = Env::new();
    let inst = env.sandbox_instance(
        "grant",
        "client_credentials",
        &format!("{CLIENT}  grant_type: device_code\n"),
    );
    env.write("secret.txt", &format!("{SECRET}\n"));
    let e = env.auth_err(&inst);
    assert_eq!((e.kind(), e.status()), (ErrorKind::AuthRejected, Some(400)));
    assert_contains(
        e.message(),
        &[
            "unsupported_grant_type",
            "(The grant type `device_code` is not supported",
        ],
    );
}

#[test]
fn a_non_json_200_says_so_with_its_content_type() {
    let env = Env::new();
    env.sandbox.add_fault(Fault {
        status: Some(200),
        body: Some("<html><body>Sign in</body></html>".to_owned()),
        content_type: Some("text/html; charset=utf-8".to_owned()),
        ..Fault::new("/oauth/token")
    });
    let e = env.auth_err(&env.client_credentials());
    assert_eq!(e.kind(), ErrorKind::AuthResponse);
    assert_contains(
        e.message(),
        &["200 OK", "not JSON", "text/html", "33 bytes"],
    );
    assert_eq!(env.sandbox.stats().token_requests, 1, "not retried");
}

#[test]
fn a_503_is_retried() {
    let env = Env::new();
    env.sandbox.add_fault(Fault {
        status: Some(503),
        ..Fault::new("/oauth/token")
    });
    let (conn, creds) = env.auth_ok(&env.client_credentials());
    assert_eq!(
        secret_field(&creds, "access_token"),
        env.sandbox.issued()[0]
    );
    let s = env.sandbox.stats();
    assert_eq!((s.token_requests, s.tokens_issued), (2, 1));
    assert_eq!(conn.authenticator().token_requests(), 2);
}

#[test]
fn a_429_waits_for_retry_after() {
    let env = Env::new();
    env.sandbox.add_fault(Fault {
        status: Some(429),
        headers: [("Retry-After".to_owned(), "1".to_owned())].into(),
        ..Fault::new("/oauth/token")
    });
    let conn = env.connect(&env.client_credentials());
    let t = Instant::now();
    let (records, stats) = env.call(&conn, "get_item", &[("id", "1")]).unwrap();
    let elapsed = t.elapsed();
    assert_eq!(records[0]["id"], 1);
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert_eq!(stats.token_requests, 2);
    let s = env.sandbox.stats();
    assert_eq!((s.token_requests, s.tokens_issued), (2, 1));
}

// ---------------------------------------------------------------------------------------------
// 9. Scope drift

#[test]
fn scope_drift_warns_or_fails_when_strict() {
    let env = Env::new();
    let inst = env.sandbox_instance(
        "drift",
        "client_credentials",
        &format!("{CLIENT}  scope: \"items:read admin\"\n"),
    );
    env.write("secret.txt", &format!("{SECRET}\n"));
    let (_, creds) = env.auth_ok(&inst);
    assert_eq!(plain_field(&creds, "scope"), "items:read");
    assert_eq!(creds.warnings.len(), 1, "{:?}", creds.warnings);
    assert_contains(&creds.warnings[0], &["`admin`", "granted `items:read`"]);
    assert_eq!(
        field(&form_fields(&the_token_request(&env).body), "scope"),
        Some("items:read admin")
    );

    let env = Env::new();
    let inst = custom_instance(
        &env,
        "strict",
        &cc_method("    scope_check: strict\n"),
        &format!("{CLIENT}  scope: \"items:read admin\"\n"),
    );
    let e = env.auth_err(&inst);
    assert_eq!(e.kind(), ErrorKind::AuthRejected);
    assert_contains(e.message(), &["`admin`", "scope_check: strict"]);

    // All granted: no warning, strict or not.
    let env = Env::new();
    let inst = custom_instance(
        &env,
        "strict",
        &cc_method("    scope_check: strict\n"),
        &format!("{CLIENT}  scope: \"items:read events:read\"\n"),
    );
    let (_, creds) = env.auth_ok(&inst);
    assert!(creds.warnings.is_empty(), "{:?}", creds.warnings);
    assert_eq!(plain_field(&creds, "scope"), "items:read events:read");
}

// ---------------------------------------------------------------------------------------------
// 10. The token cache

#[test]
fn tokens_are_cached_and_renewed_after_a_401() {
    let env = Env::new();
    let conn = env.connect(&env.client_credentials());
    for id in 1..=5 {
        let (records, _) = env
            .call(&conn, "get_item", &[("id", &id.to_string())])
            .unwrap();
        assert_eq!(records[0]["id"], id);
    }
    let s = env.sandbox.stats();
    assert_eq!(
        (s.token_requests, s.tokens_issued, s.api_requests),
        (1, 1, 5)
    );
    assert_eq!(conn.authenticator().token_requests(), 1);

    env.sandbox.expire_tokens();
    let (records, stats) = env.call(&conn, "get_item", &[("id", "6")]).unwrap();
    assert_eq!(records[0]["id"], 6);
    assert_eq!((stats.requests, stats.token_requests), (2, 1));
    let s = env.sandbox.stats();
    assert_eq!((s.token_requests, s.tokens_issued), (2, 2));
    assert_eq!(s.unauthorized, 1);
    let issued = env.sandbox.issued();
    let sent: Vec<Option<String>> = seen(&env, "/items/6")
        .iter()
        .map(|r| r.header("authorization").map(str::to_owned))
        .collect();
    assert_eq!(
        sent,
        [
            Some(format!("Bearer {}", issued[0])),
            Some(format!("Bearer {}", issued[1]))
        ]
    );

    // The renewed token is cached in turn.
    env.call(&conn, "get_item", &[("id", "7")]).unwrap();
    assert_eq!(env.sandbox.stats().token_requests, 2);
}

#[test]
fn concurrent_calls_share_one_token_request() {
    let env = Env::new();
    let conn = Arc::new(env.connect(&env.client_credentials()));
    // The token endpoint is slow, so that every call waits on the same fetch.
    env.sandbox.add_fault(Fault {
        delay_ms: 300,
        ..Fault::new("/oauth/token")
    });
    let ids: Vec<u64> = env.rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for id in 1..=8u64 {
            let conn = Arc::clone(&conn);
            tasks.spawn(async move {
                let mut got = Vec::new();
                let inputs = [("id".to_owned(), Given::Text(id.to_string()))];
                support::call_into(&conn, "get_item", &inputs, &mut got)
                    .await
                    .unwrap();
                got[0]["id"].as_u64().unwrap()
            });
        }
        let mut ids = Vec::new();
        while let Some(r) = tasks.join_next().await {
            ids.push(r.unwrap());
        }
        ids.sort_unstable();
        ids
    });
    assert_eq!(ids, (1..=8).collect::<Vec<_>>());
    let s = env.sandbox.stats();
    assert_eq!(
        (s.token_requests, s.tokens_issued, s.api_requests),
        (1, 1, 8)
    );
    assert_eq!(conn.authenticator().token_requests(), 1);
}

#[test]
fn tokens_are_renewed_before_they_expire() {
    // A 2 s token is refreshed after half its lifetime, before the API refuses it.
    let env = Env::with(Config {
        token_lifetime_s: 2,
        ..Config::default()
    });
    let conn = env.connect(&env.client_credentials());
    let (_, first) = env.call(&conn, "get_item", &[("id", "1")]).unwrap();
    assert_eq!(first.token_requests, 1);
    let creds = env.rt.block_on(conn.authenticator().credentials()).unwrap();
    assert_eq!(creds.lifetime, Some(Duration::from_secs(2)));
    let refresh = creds.refresh_at.unwrap() - creds.obtained;
    assert!(
        refresh <= Duration::from_secs(1) && refresh >= Duration::from_millis(900),
        "half the lifetime, less up to a tenth of the margin as jitter: {refresh:?}"
    );
    let (_, again) = env.call(&conn, "get_item", &[("id", "2")]).unwrap();
    assert_eq!(again.token_requests, 0, "still fresh");
    std::thread::sleep(Duration::from_millis(1100));
    // Due but still valid: the call goes on with it while one refresh runs in the background.
    let (_, later) = env.call(&conn, "get_item", &[("id", "3")]).unwrap();
    assert_eq!((later.token_requests, later.requests), (0, 1));
    // The refresh lands in the cache shortly after: poll for it (well before the old token
    // expires).
    let deadline = std::time::Instant::now() + Duration::from_millis(800);
    let renewed = loop {
        let c = env.rt.block_on(conn.authenticator().credentials()).unwrap();
        if c.id != creds.id || std::time::Instant::now() >= deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_ne!(renewed.id, creds.id, "renewed before it expired");
    let (_, after) = env.call(&conn, "get_item", &[("id", "4")]).unwrap();
    assert_eq!(after.token_requests, 0);
    let s = env.sandbox.stats();
    assert_eq!(
        (s.token_requests, s.tokens_issued, s.unauthorized),
        (2, 2, 0)
    );
}

#[test]
fn refused_fresh_credentials_fail_after_one_renewal() {
    // Every API request answers 401: one renewal, then a clear error.
    let env = Env::new();
    env.sandbox.add_fault(Fault {
        status: Some(401),
        times: 0,
        ..Fault::new("/items/1")
    });
    let conn = env.connect(&env.client_credentials());
    let e = env.call(&conn, "get_item", &[("id", "1")]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Status);
    assert_eq!(e.status(), Some(401));
    assert_contains(e.message(), &["refused fresh credentials too", "401"]);
    let s = env.sandbox.stats();
    assert_eq!((s.token_requests, s.api_requests), (2, 2));
    for token in env.sandbox.issued() {
        assert!(!e.message().contains(&token), "{e}");
    }
}

#[test]
fn server_text_that_echoes_a_secret_is_scrubbed() {
    let env = Env::new();
    token_body(
        &env,
        &serde_json::json!({
            "error": "invalid_client",
            "error_description": format!("the secret {SECRET} is not valid"),
        })
        .to_string(),
    );
    let e = env.auth_err(&env.client_credentials());
    assert_contains(
        e.message(),
        &[
            "invalid_client",
            "(the secret <redacted string(19)> is not valid)",
        ],
    );
    assert_no_secret(e.message(), &[SECRET]);
}

#[test]
fn a_non_bearer_token_type_is_a_warning() {
    let env = Env::new();
    token_body(
        &env,
        r#"{"access_token": "sandbox-static-token", "token_type": "mac", "expires_in": 3600}"#,
    );
    let (_, creds) = env.auth_ok(&env.client_credentials());
    assert_eq!(plain_field(&creds, "token_type"), "mac");
    assert_eq!(creds.warnings.len(), 1, "{:?}", creds.warnings);
    assert_contains(&creds.warnings[0], &["`mac`", "not Bearer"]);
}

// ---------------------------------------------------------------------------------------------
// 11. The CLI: output redacted, failures on one line

#[test]
fn cli_auth_redacts_the_token() {
    let env = Env::new();
    env.client_credentials();
    let out = env.cli(&["auth", "cc.yaml"], &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    let issued = env.sandbox.issued();
    assert_eq!(issued.len(), 1);
    assert_contains(
        &text,
        &[
            "authenticated `cc` with `client_credentials`",
            "1 token request",
            "lifetime: 3600 s",
            "auth.access_token = \"<redacted string(64)>\"",
            "\"access_token\": \"<redacted string(64)>\"",
        ],
    );
    let all = format!("{text}{}", stderr(&out));
    assert!(!all.contains(&issued[0]), "{all}");
    assert_no_secret(&all, &[SECRET]);

    let out = env.cli(&["auth", "cc.yaml", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["auth"], "client_credentials");
    assert_eq!(doc["token_requests"], 1);
    assert_eq!(doc["lifetime_s"], 3600);
    assert_eq!(doc["fields"]["access_token"], "<redacted string(64)>");
    assert_eq!(doc["fields"]["token_type"], "Bearer");
    assert_eq!(doc["response"]["access_token"], "<redacted string(64)>");
    assert_eq!(doc["response"]["scope"], "items:read");
    let issued = env.sandbox.issued();
    assert_eq!(issued.len(), 2);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains(&issued[1]), "{all}");
    assert_no_secret(&all, &[SECRET]);

    // Every credential of a richer response is redacted too: by its key's name, or because
    // it is the token.
    token_body(
        &env,
        r#"{"access_token": "tok-0123456789", "refresh_token": "rt-0123456789", "id_token": "idt-0123456789",
            "extra": {"session_key": "sk-0123456789", "copy": "tok-0123456789"}, "scope": "items:read",
            "token_type": "Bearer", "expires_in": 60}"#,
    );
    let out = env.cli(&["auth", "cc.yaml", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let r = &doc["response"];
    assert_eq!(r["access_token"], "<redacted string(14)>");
    assert_eq!(r["refresh_token"], "<redacted string(13)>");
    assert_eq!(r["id_token"], "<redacted string(14)>");
    assert_eq!(r["extra"]["session_key"], "<redacted string(13)>");
    assert_eq!(r["extra"]["copy"], "<redacted string(14)>");
    assert_eq!(r["scope"], "items:read");
    assert_eq!(doc["fields"]["refresh_token"], "<redacted string(13)>");
    assert_eq!(doc["lifetime_s"], 60);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains("0123456789"), "{all}");
}

/// Runs `connector auth` and `connector run ... list_items` on `instance`, each after
/// `before` (which installs the fault of the case), and checks both fail on one line.
fn cli_fails(env: &Env, instance: &str, before: &dyn Fn(), parts: &[&str], secrets: &[&str]) {
    for args in [vec!["auth", instance], vec!["run", instance, "list_items"]] {
        env.sandbox.clear_faults();
        before();
        let out = env.cli(&args, &[]);
        assert_one_error_line(&out, parts, secrets);
        if args[0] == "run" {
            assert_eq!(stdout(&out), "", "no records");
        }
    }
}

#[test]
fn cli_failures_are_one_line() {
    let env = Env::new();
    env.write("secret.txt", &format!("{SECRET}\n"));
    let write = |name: &str, base_url: &str, secret_file: &str| {
        env.write(
            &format!("{name}.yaml"),
            &format!(
                "connector: {}\nauth: client_credentials\nvalues:\n  base_url: {base_url}\n  client_id: sandbox-client\n  client_secret: {{ file: {secret_file} }}\n",
                support::sandbox_connector().display()
            ),
        );
    };
    let port = env.sandbox.addr().port();
    let none = || {};

    // Unreachable host.
    write("down", "http://127.0.0.1:1", "secret.txt");
    cli_fails(
        &env,
        "down.yaml",
        &none,
        &["token request failed", "cannot connect to 127.0.0.1:1"],
        &[SECRET],
    );

    // TLS to a plain-HTTP server.
    write("tls", &format!("https://127.0.0.1:{port}"), "secret.txt");
    cli_fails(
        &env,
        "tls.yaml",
        &none,
        &["TLS", &format!("127.0.0.1:{port}")],
        &[SECRET],
    );

    // A non-JSON token response.
    write("ok", &env.url(), "secret.txt");
    let html = || {
        env.sandbox.add_fault(Fault {
            status: Some(200),
            body: Some("<html>maintenance</html>".to_owned()),
            content_type: Some("text/html".to_owned()),
            ..Fault::new("/oauth/token")
        })
    };
    cli_fails(
        &env,
        "ok.yaml",
        &html,
        &["not JSON", "text/html"],
        &[SECRET],
    );

    // A 200 without access_token.
    let no_token = || token_body(&env, r#"{"expires_in": 3600, "token_type": "Bearer"}"#);
    cli_fails(
        &env,
        "ok.yaml",
        &no_token,
        &["without `access_token`", "`expires_in`, `token_type`"],
        &[SECRET],
    );

    // A wrong secret.
    env.write("wrong.txt", "wrong-secret-value\n");
    write("wrong", &env.url(), "wrong.txt");
    cli_fails(
        &env,
        "wrong.yaml",
        &none,
        &["invalid_client", "Client authentication failed"],
        &["wrong-secret-value", SECRET],
    );

    // Nothing was issued, so nothing could leak; the requests did reach the sandbox.
    assert!(env.sandbox.issued().is_empty());
    assert_eq!(env.sandbox.stats().token_requests, 6);
}

// ---------------------------------------------------------------------------------------------
// 12. Instance errors from the CLI

/// Runs `connector auth FILE` on an instance that does not load: exit status 1, the file
/// and line in the output, the secret never.
fn instance_error(env: &Env, file: &str, parts: &[&str]) -> String {
    let out = env.cli(&["auth", file], &[]);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert_contains(&all, parts);
    assert_no_secret(&all, &[SECRET]);
    assert_eq!(env.sandbox.stats().token_requests, 0, "nothing is sent");
    all
}

/// An instance of the sandbox connector with `base_url` (line 4) and the `values` lines
/// (from line 5).
fn instance_text(env: &Env, values: &str) -> String {
    format!(
        "connector: {}\nauth: client_credentials\nvalues:\n  base_url: {}\n{values}",
        support::sandbox_connector().display(),
        env.url()
    )
}

const INLINE_SECRET: &str = "  client_secret: \"sandbox-secret/+=%:\"\n";

#[test]
fn cli_instance_errors() {
    let env = Env::new();

    // An unknown value, with a suggestion.
    env.write(
        "typo.yaml",
        &instance_text(
            &env,
            &format!("  client_id: sandbox-client\n{INLINE_SECRET}  scpoe: items:read\n"),
        ),
    );
    instance_error(
        &env,
        "typo.yaml",
        &[
            "unknown variable `scpoe`",
            "typo.yaml:7:3",
            "did you mean `scope`?",
        ],
    );

    // A missing required value.
    env.write("missing.yaml", &instance_text(&env, INLINE_SECRET));
    let all = instance_error(&env, "missing.yaml", &["`client_id`", "missing.yaml:3:"]);
    assert!(all.contains("required"), "{all}");

    // A value outside the enum.
    let genesys = Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/genesys-cloud.yaml");
    env.write(
        "region.yaml",
        &format!(
            "connector: {}\nauth: client_credentials\nvalues:\n  region: mypurecloud.xx\n  client_id: sandbox-client\n{INLINE_SECRET}",
            genesys.display()
        ),
    );
    instance_error(
        &env,
        "region.yaml",
        &[
            "error[value-not-allowed]: `mypurecloud.xx` is not one of the values allowed for `region`",
            "region.yaml:4:11",
            "did you mean `mypurecloud.",
        ],
    );

    // An unset environment variable.
    env.write(
        "env.yaml",
        &instance_text(
            &env,
            "  client_id: sandbox-client\n  client_secret: { env: CONNECTOR_AUTH_TEST_UNSET_VAR }\n",
        ),
    );
    let all = instance_error(
        &env,
        "env.yaml",
        &[
            "error[env-unset]: the environment variable `CONNECTOR_AUTH_TEST_UNSET_VAR` (the value of `client_secret`) is not set",
            "env.yaml:6:18",
        ],
    );
    // One problem, one error: not also "`client_secret` has no value".
    assert_eq!(all.matches("error[").count(), 1, "{all}");

    // The same for a file that cannot be read.
    env.write(
        "nofile.yaml",
        &instance_text(
            &env,
            "  client_id: sandbox-client\n  client_secret: { file: no-such-secret.txt }\n",
        ),
    );
    let all = instance_error(
        &env,
        "nofile.yaml",
        &[
            "error[value-file]: cannot read",
            "no-such-secret.txt",
            "(the value of `client_secret`)",
            "nofile.yaml:6:18",
        ],
    );
    assert_eq!(all.matches("error[").count(), 1, "{all}");

    // An inline secret is only a warning: `auth` works, and the secret is masked.
    env.write(
        "inline.yaml",
        &instance_text(
            &env,
            &format!("  client_id: sandbox-client\n{INLINE_SECRET}"),
        ),
    );
    let out = env.cli(&["auth", "inline.yaml"], &[]);
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert_contains(
        &stderr(&out),
        &[
            "warning[inline-secret]",
            "inline.yaml:6:18",
            "`client_secret`",
        ],
    );
    assert!(!stderr(&out).contains("error"), "{all}");
    assert_contains(&stdout(&out), &["authenticated `inline`"]);
    assert_no_secret(&all, &[SECRET]);
    assert_eq!(env.sandbox.stats().tokens_issued, 1);
}

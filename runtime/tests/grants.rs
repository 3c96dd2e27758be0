//! End-to-end tests of the OAuth 2 grants beyond client credentials, against the sandbox
//! provider over real HTTP on loopback: `private_key_jwt` client assertions, the JWT bearer
//! grant (PEM key and Google service-account file), the refresh token grant with rotation
//! stored across restarts, discovery, `resource` / `audience`, and the authorization code
//! grant with PKCE through `connector login`, then `connector token show|refresh|revoke`.

mod support;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use base64::Engine as _;
use runtime::auth::Credentials;
use runtime::run::Connection;
use sandbox::{AuthorizeMode, Config, DiscoveryMode, PkceMode, SeenRequest};
use support::{stderr, stdout, Env};

// ---------------------------------------------------------------------------------------------
// Helpers

/// A connector for the sandbox with one auth method `m` (its YAML, indented by four spaces).
fn connector(method: &str) -> String {
    format!(
        r#"connector: g
name: Grants
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
      limit: 50
      total: /total
"#
    )
}

/// Writes `connectors/NAME.yaml` (connector id `g`) with `method` and `NAME.yaml`, an instance of it with
/// `base_url` pointing at the sandbox and the extra `values` lines (indented by two spaces).
fn instance(env: &Env, name: &str, method: &str, values: &str) -> PathBuf {
    env.write(&format!("connectors/{name}.yaml"), &connector(method));
    env.write(
        &format!("{name}.yaml"),
        &format!(
            "connector: connectors/{name}.yaml\nauth: m\nvalues:\n  base_url: {}\n{values}",
            env.url()
        ),
    )
}

fn token_url() -> &'static str {
    "      url: \"{{ vars.base_url }}/oauth/token\"\n"
}

fn seen(env: &Env, path: &str) -> Vec<SeenRequest> {
    env.sandbox
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .collect()
}

fn form(body: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect()
}

fn field(body: &str, name: &str) -> Option<String> {
    form(body)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

/// The header and claims of a compact JWS, unverified.
fn jwt_parts(token: &str) -> (serde_json::Value, serde_json::Value) {
    let mut it = token.split('.');
    let mut part = || {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(it.next().expect("a JWT part"))
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&b).unwrap()
    };
    let h = part();
    let c = part();
    (h, c)
}

fn secret_field(c: &Credentials, name: &str) -> String {
    match c.fields.get(name) {
        Some(runtime::value::Value::Secret(s)) => s.expose().to_owned(),
        other => panic!("auth.{name} is not a secret: {other:?}"),
    }
}

fn assert_contains(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "`{p}` is not in:\n{text}");
    }
}

// ---------------------------------------------------------------------------------------------
// private_key_jwt

fn pkjwt_method(extra: &str) -> String {
    format!(
        "    type: oauth2_client_credentials\n    request:\n{}      client_auth: private_key_jwt\n{extra}",
        token_url()
    )
}

const PKJWT_VALUES: &str = "  client_id: sandbox-client\n  private_key: { file: key.pem }\n";

#[test]
fn private_key_jwt_signs_a_fresh_assertion_per_request() {
    let env = Env::new();
    env.write("key.pem", sandbox::TEST_RSA_PRIVATE_KEY);
    let path = instance(
        &env,
        "pk",
        &pkjwt_method("    client_assertion:\n      kid: sandbox-rsa\n"),
        PKJWT_VALUES,
    );
    let (conn, _) = env.auth_ok(&path);
    // A second token request signs a new assertion (the sandbox refuses a reused `jti`).
    env.rt.block_on(conn.authenticator().refresh()).unwrap();
    let reqs = seen(&env, "/oauth/token");
    assert_eq!(reqs.len(), 2);
    let mut jtis = Vec::new();
    for r in &reqs {
        assert_eq!(r.header("authorization"), None, "no Basic header");
        assert_eq!(
            field(&r.body, "client_assertion_type").as_deref(),
            Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        );
        assert_eq!(
            field(&r.body, "client_id").as_deref(),
            Some("sandbox-client")
        );
        assert_eq!(field(&r.body, "client_secret"), None);
        let assertion = field(&r.body, "client_assertion").unwrap();
        let (h, c) = jwt_parts(&assertion);
        assert_eq!(h["alg"], "RS256");
        assert_eq!(h["kid"], "sandbox-rsa");
        assert_eq!(c["iss"], "sandbox-client");
        assert_eq!(c["sub"], "sandbox-client");
        assert_eq!(c["aud"], format!("{}/oauth/token", env.url()));
        assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 300);
        jtis.push(c["jti"].as_str().unwrap().to_owned());
    }
    assert_ne!(jtis[0], jtis[1]);
    // The API accepts the token.
    let (records, _) = env.call(&conn, "list_items", &[]).unwrap();
    assert_eq!(records.len(), 120);
}

#[test]
fn private_key_jwt_with_es256_and_ps256() {
    let env = Env::new();
    env.write("key.pem", sandbox::TEST_EC_PRIVATE_KEY);
    env.write("rsa.pem", sandbox::TEST_RSA_PRIVATE_KEY);
    let path = instance(
        &env,
        "ec",
        &pkjwt_method("    client_assertion:\n      algorithm: ES256\n      kid: sandbox-ec\n"),
        PKJWT_VALUES,
    );
    env.auth_ok(&path);
    let path = instance(
        &env,
        "ps",
        &pkjwt_method("    client_assertion:\n      algorithm: PS256\n"),
        "  client_id: sandbox-client\n  private_key: { file: rsa.pem }\n",
    );
    env.auth_ok(&path);
    let algs: Vec<String> = seen(&env, "/oauth/token")
        .iter()
        .map(|r| jwt_parts(&field(&r.body, "client_assertion").unwrap()).0["alg"].to_string())
        .collect();
    assert_eq!(algs, ["\"ES256\"", "\"PS256\""]);
}

#[test]
fn private_key_jwt_failures_are_clear() {
    let env = Env::new();
    // A key the server does not know.
    env.write("key.pem", sandbox::TEST_UNREGISTERED_RSA_PRIVATE_KEY);
    let path = instance(&env, "unknown", &pkjwt_method(""), PKJWT_VALUES);
    let e = env.auth_err(&path).to_string();
    assert_contains(&e, &["invalid_client", "signature"]);

    // The wrong audience.
    env.write("key.pem", sandbox::TEST_RSA_PRIVATE_KEY);
    let path = instance(
        &env,
        "aud",
        &pkjwt_method("    client_assertion:\n      audience: https://elsewhere.example/token\n"),
        PKJWT_VALUES,
    );
    let e = env.auth_err(&path).to_string();
    assert_contains(
        &e,
        &["invalid_client", "aud", "https://elsewhere.example/token"],
    );

    // An EC key for RS256: refused before anything is sent.
    env.write("key.pem", sandbox::TEST_EC_PRIVATE_KEY);
    env.sandbox.clear_requests();
    let path = instance(&env, "alg", &pkjwt_method(""), PKJWT_VALUES);
    let e = env.auth_err(&path).to_string();
    assert_contains(&e, &["not an RSA private key", "RS256"]);
    assert!(seen(&env, "/oauth/token").is_empty());

    // Not a PEM at all; the text is not quoted.
    env.write("key.pem", "not-a-key-at-all-1234");
    let e = env.auth_err(&path).to_string();
    assert_contains(&e, &["not PEM"]);
    assert!(!e.contains("not-a-key-at-all-1234"));
}

#[test]
fn a_replayed_client_assertion_is_refused_by_the_server() {
    let env = Env::new();
    env.write("key.pem", sandbox::TEST_RSA_PRIVATE_KEY);
    let path = instance(&env, "pk", &pkjwt_method(""), PKJWT_VALUES);
    env.auth_ok(&path);
    let body = seen(&env, "/oauth/token")[0].body.clone();
    let replay = env.rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{}/oauth/token", env.url()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap()
    });
    assert_eq!(replay.status(), 401);
    let text = env.rt.block_on(replay.text()).unwrap();
    assert_contains(&text, &["invalid_client", "jti"]);
}

// ---------------------------------------------------------------------------------------------
// JWT bearer

#[test]
fn jwt_bearer_with_a_service_account_file() {
    let env = Env::new();
    env.write("sa.json", &env.sandbox.service_account_json());
    let path = instance(
        &env,
        "sa",
        "    type: oauth2_jwt_bearer\n    assertion:\n      service_account: \"{{ vars.service_account }}\"\n    variables:\n      service_account:\n        label: Key file\n        secret: true\n        required: true\n",
        "  service_account: { file: sa.json }\n  scope: items:read events:read\n  subject: demo@sandbox.test\n",
    );
    let (conn, creds) = env.auth_ok(&path);
    assert!(!secret_field(&creds, "access_token").is_empty());
    let r = &seen(&env, "/oauth/token")[0];
    assert_eq!(
        field(&r.body, "grant_type").as_deref(),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    assert_eq!(r.header("authorization"), None);
    let (h, c) = jwt_parts(&field(&r.body, "assertion").unwrap());
    assert_eq!(h["kid"], "sandbox-sa", "kid from private_key_id");
    assert_eq!(c["iss"], "service-account@sandbox.test");
    assert_eq!(c["sub"], "demo@sandbox.test");
    assert_eq!(
        c["aud"],
        format!("{}/oauth/token", env.url()),
        "aud = token_uri"
    );
    assert_eq!(c["scope"], "items:read events:read");
    let (records, _) = env.call(&conn, "list_items", &[]).unwrap();
    assert_eq!(records.len(), 120);
}

#[test]
fn the_bundled_google_sheets_connector_authenticates_with_a_key_file() {
    let env = Env::new();
    env.write("sa.json", &env.sandbox.service_account_json());
    let connector = Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/google-sheets.yaml");
    let path = env.write(
        "sheets.yaml",
        &format!(
            "connector: {}\nauth: service_account\nvalues:\n  service_account: {{ file: sa.json }}\n  scope: items:read\n",
            connector.display()
        ),
    );
    let out = env.cli(&["auth", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_contains(
        &stdout(&out),
        &["authenticated `sheets`", "oauth2_jwt_bearer"],
    );
    let text = format!("{}{}", stdout(&out), stderr(&out));
    for t in env.sandbox.issued() {
        assert!(!text.contains(&t), "a token leaked");
    }
    assert!(!text.contains("BEGIN PRIVATE KEY"));
}

#[test]
fn jwt_bearer_failures_are_clear() {
    let env = Env::new();
    // A key file without its private key.
    env.write(
        "sa.json",
        r#"{"type":"service_account","client_email":"x@y"}"#,
    );
    let method = "    type: oauth2_jwt_bearer\n    assertion:\n      service_account: \"{{ vars.service_account }}\"\n    variables:\n      service_account:\n        label: Key file\n        secret: true\n        required: true\n";
    let path = instance(&env, "sa", method, "  service_account: { file: sa.json }\n");
    let e = env.auth_err(&path).to_string();
    assert_contains(&e, &["service-account key file", "no `private_key`"]);
    // Signed by a key the server does not trust for that issuer.
    let doc: serde_json::Value = serde_json::from_str(&env.sandbox.service_account_json()).unwrap();
    let mut doc = doc.as_object().unwrap().clone();
    doc.insert(
        "private_key".into(),
        sandbox::TEST_UNREGISTERED_RSA_PRIVATE_KEY.into(),
    );
    env.write("sa.json", &serde_json::Value::Object(doc).to_string());
    let e = env.auth_err(&path).to_string();
    assert_contains(&e, &["invalid_grant"]);
    assert!(!e.contains("BEGIN"));
}

// ---------------------------------------------------------------------------------------------
// Refresh token grant and rotation

const RT_METHOD: &str = "    type: oauth2_refresh_token\n    request:\n      url: \"{{ vars.base_url }}/oauth/token\"\n";
const RT_VALUES: &str =
    "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n  refresh_token: { file: rt.txt }\n";

fn rt_env(config: Config) -> (Env, PathBuf) {
    let env = Env::with(config);
    env.write("secret.txt", &env.sandbox.config().client_secret.clone());
    env.write("rt.txt", &env.sandbox.config().refresh_token.clone());
    let path = instance(&env, "rt", RT_METHOD, RT_VALUES);
    (env, path)
}

#[test]
fn a_rotated_refresh_token_is_stored_and_used_after_a_restart() {
    let (env, path) = rt_env(Config::default());
    let state = env.dir.0.join("rt.state.json");
    let (_, first) = env.auth_ok(&path);
    let rotated = secret_field(&first, "refresh_token");
    assert_ne!(rotated, env.sandbox.config().refresh_token);
    // Stored, readable by the owner only, holding the new token.
    let text = std::fs::read_to_string(&state).unwrap();
    assert!(text.contains(&rotated));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // A new process (a new connection) uses the stored token, not the spent one.
    for _ in 0..3 {
        let (_, c) = env.auth_ok(&path);
        assert!(std::fs::read_to_string(&state)
            .unwrap()
            .contains(&secret_field(&c, "refresh_token")));
    }
    let sent: Vec<String> = seen(&env, "/oauth/token")
        .iter()
        .map(|r| field(&r.body, "refresh_token").unwrap())
        .collect();
    assert_eq!(sent.len(), 4);
    assert_eq!(sent[0], env.sandbox.config().refresh_token);
    assert_eq!(sent[1], rotated);
    let mut unique = sent.clone();
    unique.dedup();
    assert_eq!(unique.len(), 4, "no refresh token was sent twice");

    // A new token written in the instance file wins over the state stored for the old one:
    // the stored token is ignored (here made unusable to tell).
    let current = sent_last_rotated(&state);
    env.write("rt.txt", &current);
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    record["refresh_token"] = "not-a-valid-token".into();
    std::fs::write(&state, record.to_string()).unwrap();
    env.auth_ok(&path);
    let last = seen(&env, "/oauth/token").pop().unwrap();
    assert_eq!(
        field(&last.body, "refresh_token").as_deref(),
        Some(current.as_str())
    );

    // Without the stored state the spent token is sent, and refused clearly.
    std::fs::remove_file(&state).unwrap();
    let e = env.auth_err(&path).to_string();
    assert_contains(
        &e,
        &["invalid_grant", "already used", "new `refresh_token`"],
    );
}

/// The refresh token stored in a state file.
fn sent_last_rotated(state: &Path) -> String {
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap();
    record["refresh_token"].as_str().unwrap().to_owned()
}

#[test]
fn without_rotation_the_old_refresh_token_stays() {
    let (env, path) = rt_env(Config {
        rotate_refresh_tokens: false,
        ..Config::default()
    });
    env.auth_ok(&path);
    env.auth_ok(&path);
    assert!(!env.dir.0.join("rt.state.json").exists());
    for r in seen(&env, "/oauth/token") {
        assert_eq!(
            field(&r.body, "refresh_token").as_deref(),
            Some(env.sandbox.config().refresh_token.as_str())
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Discovery, resource and audience

fn cc_issuer(extra: &str) -> String {
    format!("    type: oauth2_client_credentials\n    issuer: \"{{{{ vars.base_url }}}}\"\n{extra}")
}

const CC_VALUES: &str = "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n";

fn with_secret(env: &Env) {
    env.write("secret.txt", &env.sandbox.config().client_secret.clone());
}

#[test]
fn the_token_url_is_discovered_from_the_issuer() {
    let env = Env::new();
    with_secret(&env);
    let path = instance(&env, "d", &cc_issuer(""), CC_VALUES);
    env.auth_ok(&path);
    let paths: Vec<String> = env
        .sandbox
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        ["/.well-known/oauth-authorization-server", "/oauth/token"]
    );
}

#[test]
fn discovery_falls_back_to_openid_configuration_and_picks_a_supported_client_auth() {
    let env = Env::with(Config {
        discovery: DiscoveryMode::OpenIdOnly,
        auth_methods: vec!["client_secret_post".into()],
        ..Config::default()
    });
    with_secret(&env);
    let path = instance(&env, "d", &cc_issuer(""), CC_VALUES);
    env.auth_ok(&path);
    let reqs = env.sandbox.requests();
    let paths: Vec<&str> = reqs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
            "/oauth/token"
        ]
    );
    let token = reqs.last().unwrap();
    assert_eq!(token.header("authorization"), None);
    assert_eq!(
        field(&token.body, "client_id").as_deref(),
        Some("sandbox-client")
    );
    assert!(field(&token.body, "client_secret").is_some());
}

#[test]
fn an_issuer_mismatch_is_refused() {
    let env = Env::with(Config {
        issuer: Some("https://evil.example".into()),
        ..Config::default()
    });
    with_secret(&env);
    let path = instance(&env, "d", &cc_issuer(""), CC_VALUES);
    let e = env.auth_err(&path).to_string();
    assert_contains(&e, &["https://evil.example", "issuer", "RFC 8414"]);
    assert!(seen(&env, "/oauth/token").is_empty());
}

#[test]
fn resource_and_audience_are_sent_and_checked() {
    let env = Env::new();
    with_secret(&env);
    let method = format!(
        "    type: oauth2_client_credentials\n    request:\n{}    resource: \"{{{{ vars.resource }}}}\"\n    audience: sandbox-api\n    token_params:\n      tenant: acme\n      empty: \"\"\n    variables:\n      resource:\n        label: Resource\n        default: https://api.sandbox.test\n",
        token_url()
    );
    let path = instance(&env, "r", &method, CC_VALUES);
    env.auth_ok(&path);
    let body = &seen(&env, "/oauth/token")[0].body;
    assert_eq!(
        field(body, "resource").as_deref(),
        Some("https://api.sandbox.test")
    );
    assert_eq!(field(body, "audience").as_deref(), Some("sandbox-api"));
    assert_eq!(field(body, "tenant").as_deref(), Some("acme"));
    assert_eq!(field(body, "empty"), None, "empty parameters are left out");

    let path = instance(
        &env,
        "r2",
        &method,
        &format!("{CC_VALUES}  resource: https://other.example\n"),
    );
    let e = env.auth_err(&path).to_string();
    assert_contains(&e, &["invalid_target"]);
}

// ---------------------------------------------------------------------------------------------
// Authorization code with PKCE: `connector login`, then `connector token`

fn code_method(extra: &str) -> String {
    format!(
        "    type: oauth2_authorization_code\n    request:\n{}    authorize:\n      url: \"{{{{ vars.base_url }}}}/oauth/authorize\"\n{extra}    revocation_url: \"{{{{ vars.base_url }}}}/oauth/revoke\"\n",
        token_url()
    )
}

const CODE_VALUES: &str = "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n  redirect_uri: http://127.0.0.1:0/callback\n  scope: items:read\n";

/// Runs `connector login` and plays the browser: reads the URL it prints, follows the
/// sandbox's redirect back to the login's loopback listener. Returns the command's output.
fn login(env: &Env, path: &Path) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_connector"))
        .args(["login", path.to_str().unwrap(), "--timeout", "20"])
        .current_dir(&env.dir.0)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut seen_lines = String::new();
    let url = loop {
        let mut line = String::new();
        if err.read_line(&mut line).unwrap() == 0 {
            break None;
        }
        seen_lines.push_str(&line);
        if let Some(u) = line.trim().strip_prefix("http") {
            break Some(format!("http{u}"));
        }
    };
    if let Some(url) = url {
        let page = env.rt.block_on(async {
            let r = reqwest::get(&url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        });
        seen_lines.push_str(&format!("[browser: {} {}]\n", page.0, page.1));
    }
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut err, &mut rest);
    let out = child.wait_with_output().unwrap();
    std::process::Output {
        status: out.status,
        stdout: out.stdout,
        stderr: format!("{seen_lines}{rest}").into_bytes(),
    }
}

#[test]
fn login_with_pkce_then_run_show_refresh_and_revoke() {
    let env = Env::new();
    with_secret(&env);
    let path = instance(&env, "code", &code_method(""), CODE_VALUES);
    let out = login(&env, &path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_contains(&stdout(&out), &["signed in `code`", "code.state.json"]);
    assert_contains(&stderr(&out), &["Signed in."]);

    // PKCE S256: the challenge went to the authorization endpoint, the verifier to the token
    // endpoint, and they match.
    let authorize = &seen(&env, "/oauth/authorize")[0];
    let q = form(&authorize.query);
    let get = |n: &str| q.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    assert_eq!(get("code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(get("response_type").as_deref(), Some("code"));
    assert_eq!(get("scope").as_deref(), Some("items:read"));
    let exchange = &seen(&env, "/oauth/token")[0];
    let verifier = field(&exchange.body, "code_verifier").unwrap();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    assert_eq!(get("code_challenge").unwrap(), challenge);
    assert_eq!(
        field(&exchange.body, "grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(field(&exchange.body, "redirect_uri"), get("redirect_uri"));

    // `run` uses the stored refresh token.
    let out = env.cli(&["run", path.to_str().unwrap(), "list_items"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 120);
    let last = seen(&env, "/oauth/token").pop().unwrap();
    assert_eq!(
        field(&last.body, "grant_type").as_deref(),
        Some("refresh_token")
    );

    // `token show` sends nothing and shows no secret.
    let before = env.sandbox.requests().len();
    let out = env.cli(&["token", "show", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_contains(
        &stdout(&out),
        &["\"refresh_token\": \"<redacted>\"", "code.state.json"],
    );
    assert_eq!(env.sandbox.requests().len(), before);

    // `token refresh` gets a new token and stores the rotated refresh token.
    let out = env.cli(&["token", "refresh", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_contains(&stdout(&out), &["\"access_token\": \"<redacted string("]);
    let state = std::fs::read_to_string(env.dir.0.join("code.state.json")).unwrap();
    let valid = env.sandbox.refresh_tokens();
    assert!(valid.iter().any(|t| state.contains(t.as_str())));

    // `token revoke` revokes at the server and deletes the state.
    let out = env.cli(&["token", "revoke", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_contains(&stdout(&out), &["revoked the refresh token", "deleted"]);
    assert_eq!(env.sandbox.stats().revocations, 1);
    assert!(env.sandbox.refresh_tokens().is_empty());
    assert!(!env.dir.0.join("code.state.json").exists());

    // Now the instance must sign in again (a usage error: exit status 2).
    let out = env.cli(&["run", path.to_str().unwrap(), "list_items"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_contains(&stderr(&out), &["not signed in", "connector login"]);

    // Nothing secret in any of it.
    let all = format!("{}{}", stdout(&out), stderr(&out));
    for t in env.sandbox.issued() {
        assert!(!all.contains(&t));
    }
}

#[test]
fn a_state_mismatch_is_refused() {
    let env = Env::new();
    with_secret(&env);
    env.sandbox.set_authorize_mode(AuthorizeMode::WrongState);
    let path = instance(&env, "code", &code_method(""), CODE_VALUES);
    let out = login(&env, &path);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_contains(&stderr(&out), &["error:", "`state` does not match"]);
    assert!(
        seen(&env, "/oauth/token").is_empty(),
        "the code was not exchanged"
    );
    assert!(!env.dir.0.join("code.state.json").exists());
}

#[test]
fn a_denied_sign_in_says_why() {
    let env = Env::new();
    with_secret(&env);
    env.sandbox.set_authorize_mode(AuthorizeMode::Deny);
    let path = instance(&env, "code", &code_method(""), CODE_VALUES);
    let out = login(&env, &path);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_contains(&stderr(&out), &["refused the sign-in", "access_denied"]);
}

#[test]
fn pkce_can_be_disabled_for_providers_that_reject_it() {
    let env = Env::with(Config {
        pkce: PkceMode::Rejected,
        ..Config::default()
    });
    with_secret(&env);
    let path = instance(&env, "code", &code_method(""), CODE_VALUES);
    let out = login(&env, &path);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_contains(&stderr(&out), &["PKCE"]);

    let path = instance(
        &env,
        "nopkce",
        &code_method("      pkce: disabled\n"),
        CODE_VALUES,
    );
    let out = login(&env, &path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let q = seen(&env, "/oauth/authorize").last().unwrap().query.clone();
    assert!(!q.contains("code_challenge"));
    assert_eq!(
        field(
            &seen(&env, "/oauth/token").last().unwrap().body,
            "code_verifier"
        ),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Expired assertions, shared sign-in, discovery for the browser flow, Redis

#[test]
fn an_expired_assertion_is_refused_clearly() {
    // The sandbox's clock runs 10 minutes ahead: a fresh 5-minute assertion is expired there.
    let env = Env::with(Config {
        clock_skew_s: 600,
        ..Config::default()
    });
    env.write("key.pem", sandbox::TEST_RSA_PRIVATE_KEY);
    let path = instance(&env, "pk", &pkjwt_method(""), PKJWT_VALUES);
    let e = env.auth_err(&path).to_string();
    assert_contains(&e, &["invalid_client", "client assertion has expired"]);

    env.write("sa.json", &env.sandbox.service_account_json());
    let path = instance(
        &env,
        "sa",
        "    type: oauth2_jwt_bearer\n    assertion:\n      service_account: \"{{ vars.service_account }}\"\n    variables:\n      service_account:\n        label: Key file\n        secret: true\n        required: true\n",
        "  service_account: { file: sa.json }\n",
    );
    let e = env.auth_err(&path).to_string();
    assert_contains(&e, &["invalid_grant", "assertion has expired"]);
}

#[test]
fn a_shared_sign_in_serves_every_instance_of_the_connector() {
    let env = Env::new();
    with_secret(&env);
    let method = code_method("    token_sharing: shared\n");
    let first = instance(&env, "alice", &method, CODE_VALUES);
    let out = login(&env, &first);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(env.dir.0.join("g.m.shared.state.json").exists());
    assert!(!env.dir.0.join("alice.state.json").exists());
    // Another instance of the connector, never signed in itself, uses the shared sign-in.
    let second = instance(&env, "bob", &method, CODE_VALUES);
    let out = env.cli(&["run", second.to_str().unwrap(), "list_items"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 120);
}

#[test]
fn login_and_revoke_find_their_endpoints_by_discovery() {
    let env = Env::new();
    with_secret(&env);
    // No token, authorization or revocation URL: all come from the issuer's metadata.
    let method = "    type: oauth2_authorization_code\n    issuer: \"{{ vars.base_url }}\"\n";
    let path = instance(&env, "disc", method, CODE_VALUES);
    let out = login(&env, &path);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(seen(&env, "/oauth/authorize").len(), 1);
    let out = env.cli(&["token", "revoke", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(env.sandbox.stats().revocations, 1);
    assert!(env.sandbox.refresh_tokens().is_empty());
}

#[test]
fn a_rotated_refresh_token_is_shared_through_redis() {
    let Some(redis) = support::redis::RedisServer::start() else {
        eprintln!("redis-server is not installed: skipped");
        return;
    };
    let (env, _) = rt_env(Config::default());
    // Two replicas with their own folders (no shared disk), one Redis.
    let replica = |name: &str| {
        let dir = env.dir.0.join(name);
        std::fs::create_dir_all(dir.join("connectors")).unwrap();
        std::fs::write(dir.join("connectors/g.yaml"), connector(RT_METHOD)).unwrap();
        std::fs::copy(env.dir.0.join("secret.txt"), dir.join("secret.txt")).unwrap();
        std::fs::copy(env.dir.0.join("rt.txt"), dir.join("rt.txt")).unwrap();
        let path = dir.join("rt.yaml");
        std::fs::write(
            &path,
            format!(
                "connector: connectors/g.yaml\nauth: m\nvalues:\n  base_url: {}\n{RT_VALUES}",
                env.url()
            ),
        )
        .unwrap();
        let metrics = Arc::new(runtime::metrics::Metrics::default());
        let shared = runtime::tokens::shared::Shared::new(
            &redis.url(),
            Some(runtime::tokens::shared::EncryptionKey::parse(&"42".repeat(32)).unwrap()),
            runtime::tokens::shared::Options::default(),
        )
        .unwrap();
        let tokens = Arc::new(runtime::tokens::TokenCache::with_shared(metrics, shared));
        let cx = runtime::run::Context::with_tokens(tokens).unwrap();
        let i = runtime::instance::load(&path, &[]).unwrap();
        Connection::with_context(Arc::new(i), &cx)
    };
    let a = replica("a");
    let b = replica("b");
    env.rt.block_on(a.authenticator().refresh()).unwrap();
    // B never saw A's file, yet sends the token A's refresh produced, not the spent one.
    env.rt.block_on(b.authenticator().refresh()).unwrap();
    env.rt.block_on(a.authenticator().refresh()).unwrap();
    let sent: Vec<String> = seen(&env, "/oauth/token")
        .iter()
        .map(|r| field(&r.body, "refresh_token").unwrap())
        .collect();
    assert_eq!(sent.len(), 3);
    let mut unique = sent.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "no refresh token was sent twice: {sent:?}");
    // Sealed in Redis: the token is not readable there.
    let keys = redis.keys("*state:*");
    assert_eq!(keys.len(), 1, "{keys:?}");
    let raw = redis.cmd(&["GET", &keys[0]]).unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(raw.starts_with("v1:"), "{raw}");
    for t in env.sandbox.refresh_tokens() {
        assert!(!raw.contains(&t));
    }
}

#[test]
fn token_revoke_drops_the_tokens_cached_and_stored_in_redis() {
    let Some(redis) = support::redis::RedisServer::start() else {
        eprintln!("redis-server is not installed: skipped");
        return;
    };
    let (env, path) = rt_env(Config::default());
    let p = path.to_str().unwrap();
    let url = redis.url();
    let out = env.cli(&["auth", p, "--token-cache", &url], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(redis.keys("*state:*").len(), 1, "the rotated refresh token");
    assert_eq!(redis.keys("*token:*").len(), 1, "the access token");
    let out = env.cli(&["token", "revoke", p, "--token-cache", &url], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // No revocation endpoint in this connector: said, and the local copies dropped anyway.
    assert_contains(
        &stderr(&out),
        &["no `revocation_url`", "stays valid at the server"],
    );
    assert!(redis.keys("*state:*").is_empty());
    assert!(redis.keys("*token:*").is_empty());
    assert!(!env.dir.0.join("rt.state.json").exists());
}

#[test]
fn no_key_assertion_or_token_in_any_output_at_trace_level() {
    let (env, rt_path) = rt_env(Config::default());
    env.write("key.pem", sandbox::TEST_RSA_PRIVATE_KEY);
    env.write("sa.json", &env.sandbox.service_account_json());
    let pk = instance(&env, "pk", &pkjwt_method(""), PKJWT_VALUES);
    let sa = instance(
        &env,
        "sa",
        "    type: oauth2_jwt_bearer\n    assertion:\n      service_account: \"{{ vars.service_account }}\"\n    variables:\n      service_account:\n        label: Key file\n        secret: true\n        required: true\n",
        "  service_account: { file: sa.json }\n",
    );
    let trace = [("RUST_LOG", "trace")];
    let mut text = String::new();
    for path in [&rt_path, &pk, &sa] {
        let p = path.to_str().unwrap();
        for args in [
            vec!["auth", p],
            vec!["auth", p, "--format", "json"],
            vec!["run", p, "list_items"],
            vec!["token", "show", p],
            vec!["token", "refresh", p],
        ] {
            let out = env.cli(&args, &trace);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
            text.push_str(&stdout(&out));
            text.push_str(&stderr(&out));
        }
    }
    assert!(
        text.contains("TRACE") || text.contains("DEBUG"),
        "trace logs were on"
    );
    let mut secrets: Vec<String> = env.sandbox.issued();
    secrets.push(env.sandbox.config().refresh_token.clone());
    secrets.push(env.sandbox.config().client_secret.clone());
    for r in seen(&env, "/oauth/token") {
        for name in ["client_assertion", "assertion", "refresh_token"] {
            if let Some(v) = field(&r.body, name) {
                secrets.push(v);
            }
        }
    }
    // Any line of the private key's base64 body.
    secrets.extend(
        sandbox::TEST_RSA_PRIVATE_KEY
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_owned),
    );
    assert!(secrets.len() > 30);
    for s in &secrets {
        assert!(
            !text.contains(s.as_str()),
            "a secret leaked: {}…",
            &s[..8.min(s.len())]
        );
    }
}

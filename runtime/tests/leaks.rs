//! No secret or token in any output: every scenario of the suite run through the `connector`
//! binary at `RUST_LOG=trace`, and every credential the sandbox knows or issued looked for in
//! stdout and stderr.

mod support;

use base64::Engine as _;
use support::{stderr, stdout, Env};

/// The credentials a leak would show, in every form they travel in.
fn forbidden(env: &Env, extra: &[&str]) -> Vec<String> {
    let c = env.sandbox.config();
    let mut out: Vec<String> = vec![
        c.client_secret.clone(),
        url::form_urlencoded::byte_serialize(c.client_secret.as_bytes()).collect(),
        c.password.clone(),
        c.api_key.clone(),
        c.static_token.clone(),
    ];
    out.extend(extra.iter().map(|s| s.to_string()));
    out.extend(env.sandbox.issued());
    // Whatever went out in a credential header, Basic headers included (base64 of id:secret).
    for r in env.sandbox.requests() {
        for (name, value) in &r.headers {
            let n = name.to_ascii_lowercase();
            if n == "authorization" || n == "x-api-key" || n == "x-session" {
                let v = value.split_once(' ').map(|(_, v)| v).unwrap_or(value);
                out.push(v.to_owned());
                if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(v) {
                    if let Ok(text) = String::from_utf8(decoded) {
                        if let Some((_, secret)) = text.split_once(':') {
                            out.push(secret.to_owned());
                        }
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out.retain(|s| s.len() >= 6);
    out
}

#[test]
fn no_secret_or_token_in_any_output_at_trace_level() {
    let env = Env::new();
    let secret = &env.sandbox.config().client_secret;
    env.write("secret.txt", &format!("{secret}\n"));
    env.write("password.txt", "demo-password\n");
    env.write("wrong.txt", "wrong-secret-value\n");
    let cc = env.client_credentials();
    let instances = [
        cc.clone(),
        env.sandbox_instance(
            "password",
            "password",
            "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n  username: demo\n  password: { file: password.txt }\n",
        ),
        env.sandbox_instance(
            "custom",
            "custom",
            "  username: demo\n  password: { env: SANDBOX_PASSWORD }\n",
        ),
        env.sandbox_instance(
            "basic",
            "basic",
            "  username: demo\n  password: { file: password.txt }\n",
        ),
        env.sandbox_instance(
            "bearer",
            "bearer",
            "  token: { env: SANDBOX_TOKEN }\n",
        ),
        env.sandbox_instance(
            "api_key",
            "api_key",
            "  api_key: { env: SANDBOX_API_KEY }\n",
        ),
        // Scope drift: a warning quoting the granted scope.
        env.sandbox_instance(
            "drift",
            "client_credentials",
            "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n  scope: items:read admin\n",
        ),
        // A refused password.
        env.sandbox_instance(
            "wrongpw",
            "password",
            "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n  username: demo\n  password: { file: wrong.txt }\n",
        ),
        // An inline secret: a warning whose source line must not show the value.
        env.sandbox_instance(
            "inline",
            "api_key",
            "  api_key: sandbox-api-key\n",
        ),
    ];
    let wrong = env.sandbox_instance(
        "wrong",
        "client_credentials",
        "  client_id: sandbox-client\n  client_secret: { file: wrong.txt }\n",
    );
    let envs = [
        ("RUST_LOG", "trace"),
        ("SANDBOX_PASSWORD", "demo-password"),
        ("SANDBOX_TOKEN", "sandbox-static-token"),
        ("SANDBOX_API_KEY", "sandbox-api-key"),
    ];
    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| {
        let o = env.cli(args, &envs);
        outputs.push((args.join(" "), stdout(&o), stderr(&o)));
    };
    for i in &instances {
        let p = i.to_str().unwrap();
        run(&["auth", p]);
        run(&["auth", p, "--format", "json"]);
        run(&["run", p, "list_items"]);
    }
    let p = cc.to_str().unwrap();
    for e in ["list_items_by_page", "list_events", "list_logs"] {
        run(&["run", p, e]);
    }
    run(&["run", p, "echo", "--input", "message=hello"]);
    run(&["run", p, "get_item", "--input", "id=7"]);
    run(&[
        "run",
        p,
        "create_item",
        "--input",
        "name=x",
        "--input",
        "price=2",
    ]);
    // Faults: expiry in the middle of a run, retries, an error body quoting the secret, token
    // responses that cannot be used.
    let fault = |json: String| env.sandbox.add_fault(serde_json::from_str(&json).unwrap());
    fault(r#"{"path":"/items","skip":1,"expire_tokens":true}"#.into());
    run(&["run", p, "list_items"]);
    fault(r#"{"path":"/items","status":429,"headers":{"Retry-After":"0"}}"#.into());
    fault(r#"{"path":"/items","status":401}"#.into());
    run(&["run", p, "list_items"]);
    fault(format!(
        r#"{{"path":"/items","status":500,"times":3,"body":"{{\"detail\":\"{}\"}}"}}"#,
        secret.replace('\\', "\\\\").replace('"', "\\\"")
    ));
    run(&["run", p, "list_items"]);
    fault(r#"{"path":"/oauth/token","status":200,"body":"{\"acces_token\":\"LEAKED-TOKEN-VALUE-1\"}"}"#.into());
    run(&["auth", p]);
    fault(r#"{"path":"/oauth/token","status":200,"content_type":"text/html","body":"<html>LEAKED-TOKEN-VALUE-2</html>"}"#.into());
    run(&["auth", p]);
    run(&["auth", wrong.to_str().unwrap()]);
    run(&["run", wrong.to_str().unwrap(), "list_items"]);

    let forbidden = forbidden(
        &env,
        &[
            "LEAKED-TOKEN-VALUE-1",
            "LEAKED-TOKEN-VALUE-2",
            "wrong-secret-value",
        ],
    );
    // The scenarios really ran: tokens were issued and used, traces were written, and the
    // auth output shows redacted tokens.
    assert!(env.sandbox.stats().tokens_issued >= 10);
    assert!(forbidden.len() >= 10, "{forbidden:?}");
    let all: String = outputs.iter().map(|(_, o, e)| format!("{o}{e}")).collect();
    assert!(all.contains("<redacted string(64)>"));
    assert!(
        all.contains("TRACE") || all.contains("DEBUG"),
        "no log lines at trace level"
    );
    assert!(all.contains("invalid_client"));
    assert!(all.contains("inline-secret"));
    assert!(all.contains("invalid_grant"));
    assert!(all.contains("`admin`"));
    for (args, out, err) in &outputs {
        for f in &forbidden {
            assert!(
                !out.contains(f.as_str()),
                "`connector {args}` printed a credential on stdout:\n{out}"
            );
            assert!(
                !err.contains(f.as_str()),
                "`connector {args}` printed a credential on stderr:\n{err}"
            );
        }
    }
}

/// Every secret and every credential the sandbox issues carries this marker.
const MARK: &str = "M4RKq";

/// A sandbox whose secrets and issued credentials all contain [`MARK`].
fn marked() -> Env {
    Env::with(sandbox::Config {
        client_secret: format!("{MARK}-client-secret/+="),
        password: format!("{MARK}-password"),
        api_key: format!("{MARK}-api-key"),
        static_token: format!("{MARK}-static-token"),
        refresh_token: format!("{MARK}-refresh-token"),
        token_prefix: format!("{MARK}-issued-"),
        ..sandbox::Config::default()
    })
}

/// The marker in any form it could travel in: as it is, form-encoded, in base64 (a Basic
/// header) at each of the three alignments.
fn marker_forms() -> Vec<String> {
    let mut forms = vec![MARK.to_owned()];
    for pad in ["", "x", "xx"] {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{pad}{MARK}-"));
        // The characters that depend only on the marker.
        let skip = match pad.len() {
            0 => 0,
            1 => 2,
            _ => 3,
        };
        forms.push(b64[skip..skip + 5].to_owned());
    }
    forms
}

fn assert_unmarked(what: &str, text: &str) {
    for form in marker_forms() {
        assert!(
            !text.contains(&form),
            "{what}: the marker `{form}` is in:\n{}",
            text.lines()
                .filter(|l| l.contains(&form))
                .take(5)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// A connector for the sandbox with the grants the bundled sandbox connector lacks: a refresh
/// token (rotated, and stored next to the instance), `private_key_jwt`, and a JWT bearer
/// grant from a service-account file.
const GRANTS: &str = r#"connector: grants
name: Grants
base_url: "{{ vars.base_url }}"
variables:
  base_url: { label: Base URL, default: http://127.0.0.1:8080 }
auth:
  rt:
    type: oauth2_refresh_token
    request: { url: "{{ vars.base_url }}/oauth/token" }
  pk:
    type: oauth2_client_credentials
    request: { url: "{{ vars.base_url }}/oauth/token", client_auth: private_key_jwt }
  sa:
    type: oauth2_jwt_bearer
    variables:
      service_account: { label: Key file, secret: true, required: true }
    assertion: { service_account: "{{ vars.service_account }}" }
endpoints:
  list_items:
    url: /items
    records: /items
    pagination: { type: offset, limit: 50, total: /total }
  echo:
    url: /echo
    query: { message: "{{ input.message }}" }
    inputs: { message: { required: true } }
"#;

/// An instance of [`GRANTS`] with the method `auth` and the extra `values` lines.
fn grant_instance(env: &Env, auth: &str, values: &str) -> std::path::PathBuf {
    let client = if auth == "sa" {
        ""
    } else if auth == "pk" {
        "  client_id: sandbox-client\n"
    } else {
        "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n"
    };
    env.write(
        &format!("{auth}.yaml"),
        &format!(
            "connector: connectors/grants.yaml\nauth: {auth}\nvalues:\n  base_url: {}\n{client}{values}",
            env.url()
        ),
    )
}

#[test]
fn marked_secrets_never_appear_in_cli_serve_metrics_or_ir_output() {
    let env = marked();
    let c = env.sandbox.config().clone();
    env.write("secret.txt", &format!("{}\n", c.client_secret));
    env.write("password.txt", &format!("{}\n", c.password));
    env.write("key.txt", &format!("{}\n", c.api_key));
    env.write("token.txt", &format!("{}\n", c.static_token));
    env.write("rt.txt", &format!("{}\n", c.refresh_token));
    env.write("wrong.txt", &format!("{MARK}-wrong-secret\n"));
    env.write("key.pem", sandbox::TEST_RSA_PRIVATE_KEY);
    env.write("sa.json", &env.sandbox.service_account_json());
    env.write("connectors/grants.yaml", GRANTS);
    let client = "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n";
    let instances = [
        env.sandbox_instance("cc", "client_credentials", client),
        env.sandbox_instance(
            "pw",
            "password",
            &format!("{client}  username: demo\n  password: {{ file: password.txt }}\n"),
        ),
        env.sandbox_instance(
            "session",
            "custom",
            "  username: demo\n  password: { file: password.txt }\n",
        ),
        env.sandbox_instance("key", "api_key", "  api_key: { file: key.txt }\n"),
        env.sandbox_instance(
            "basic",
            "basic",
            "  username: demo\n  password: { file: password.txt }\n",
        ),
        env.sandbox_instance("bearer", "bearer", "  token: { file: token.txt }\n"),
        env.sandbox_instance(
            "wrong",
            "client_credentials",
            "  client_id: sandbox-client\n  client_secret: { file: wrong.txt }\n",
        ),
        grant_instance(&env, "rt", "  refresh_token: { file: rt.txt }\n"),
        grant_instance(&env, "pk", "  private_key: { file: key.pem }\n"),
        grant_instance(&env, "sa", "  service_account: { file: sa.json }\n"),
    ];
    let trace = [("RUST_LOG", "trace")];
    let mut text = String::new();
    for path in &instances {
        let p = path.to_str().unwrap();
        for args in [
            vec!["auth", p],
            vec!["auth", p, "--format", "json"],
            vec!["run", p, "list_items"],
            vec!["run", p, "echo", "--input", "message=hi"],
            vec!["token", "show", p],
        ] {
            let out = env.cli(&args, &trace);
            text.push_str(&stdout(&out));
            text.push_str(&stderr(&out));
        }
    }
    // The grants worked (their outputs above are not failures): each authenticates, and the
    // refresh token was rotated and stored.
    for name in ["rt", "pk", "sa"] {
        let p = env.dir.0.join(format!("{name}.yaml"));
        let out = env.cli(&["auth", p.to_str().unwrap()], &trace);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        text.push_str(&stdout(&out));
        text.push_str(&stderr(&out));
    }
    assert!(env.dir.0.join("rt.state.json").exists());
    // A server that echoes the secret back in its error is scrubbed.
    env.sandbox.add_fault(sandbox::Fault {
        status: Some(400),
        body: Some(format!(
            r#"{{"error":"invalid_client","error_description":"the secret {} is wrong"}}"#,
            c.client_secret
        )),
        ..sandbox::Fault::new("/oauth/token")
    });
    let out = env.cli(&["auth", instances[0].to_str().unwrap()], &trace);
    assert_eq!(out.status.code(), Some(1));
    text.push_str(&stderr(&out));
    // The IR and the expanded connector hold no instance value.
    let connector = support::sandbox_connector();
    let connector = connector.to_str().unwrap();
    for args in [
        vec!["compile", connector],
        vec!["compile", connector, "--expand"],
    ] {
        let out = env.cli(&args, &trace);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        text.push_str(&stdout(&out));
    }
    assert!(text.contains("TRACE"), "trace logs were on");
    assert_unmarked("the CLI", &text);

    // `connector serve` at trace level: every route's answers, the metrics and the logs.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_connector"))
        .args([
            "serve",
            "--instances",
            env.dir.0.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("CONNECTOR_API_KEY", format!("{MARK}-serve-api-key"))
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let logs = logs.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.starts_with("serving ") {
                    if let Some(url) = line.rsplit(" on ").next() {
                        let _ = tx.send(url.trim().to_owned());
                    }
                }
                let mut l = logs.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
    }
    let base = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("serve printed its address");
    env.sandbox.clear_faults();
    let key = format!("Bearer {MARK}-serve-api-key");
    let answers = env.rt.block_on(async {
        let http = reqwest::Client::new();
        let mut answers = String::new();
        let ids = [
            "cc", "pw", "session", "key", "basic", "bearer", "wrong", "rt", "pk", "sa", "nope",
        ];
        for id in ids {
            for (path, body) in [
                (format!("/v1/instances/{id}/auth/test"), "{}".to_owned()),
                (
                    format!("/v1/instances/{id}/endpoints/list_items"),
                    "{}".to_owned(),
                ),
                (
                    format!("/v1/instances/{id}/endpoints/echo"),
                    r#"{"message": "hi"}"#.to_owned(),
                ),
            ] {
                let r = http
                    .post(format!("{base}{path}"))
                    .header("authorization", &key)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                answers.push_str(&r.text().await.unwrap());
            }
        }
        // A wrong API key that contains the marker is not echoed either.
        let r = http
            .get(format!("{base}/v1/instances"))
            .header("authorization", format!("Bearer {MARK}-wrong-key"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        answers.push_str(&r.text().await.unwrap());
        for path in ["/v1/instances", "/metrics", "/healthz"] {
            let r = http
                .get(format!("{base}{path}"))
                .header("authorization", &key)
                .send()
                .await
                .unwrap();
            answers.push_str(&r.text().await.unwrap());
        }
        answers
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(answers.contains("connector_"), "the metrics were read");
    assert!(
        answers.contains("sandbox-client") || answers.contains("\"ok\""),
        "{answers}"
    );
    assert_unmarked("serve's answers and metrics", &answers);
    let logs = logs.lock().unwrap().clone();
    assert!(logs.contains("TRACE"), "trace logs were on");
    assert_unmarked("serve's logs", &logs);
    // The sandbox did issue marked credentials: the scan had something to find.
    assert!(env.sandbox.issued().iter().all(|t| t.starts_with(MARK)));
    assert!(env.sandbox.issued().len() >= 5);
}

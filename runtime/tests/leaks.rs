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

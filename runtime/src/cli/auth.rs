//! `connector auth INSTANCE`: test the connection; every secret and token redacted.

use std::time::Instant;

use super::instance_args::{self, Target};
use super::{exit, Format};

/// Arguments of `connector auth`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// How to print the result.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Runs the command.
pub fn run(args: Args) -> u8 {
    instance_args::tokio().block_on(async move {
        let connected = match instance_args::connect(&args.target).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let conn = &connected.conn;
        let t = Instant::now();
        let result = conn.authenticate().await;
        let ms = t.elapsed().as_millis();
        let instance = conn.instance();
        let auth = instance.auth();
        let code = match result {
            Ok(creds) => {
                let fields: serde_json::Map<String, serde_json::Value> = creds
                    .fields
                    .iter()
                    .map(|(k, v)| (k.clone(), v.shown()))
                    .collect();
                let token_requests = conn.authenticator().token_requests();
                if args.format == Format::Json {
                    let doc = serde_json::json!({
                        "ok": true,
                        "instance": instance.id,
                        "connector": instance.ir.connector,
                        "auth": instance.auth_name,
                        "type": auth.type_name,
                        "elapsed_ms": ms as u64,
                        "token_requests": token_requests,
                        "lifetime_s": creds.lifetime.map(|l| l.as_secs()),
                        "fields": fields,
                        "response": creds.shown_response(),
                        "warnings": creds.warnings,
                    });
                    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                } else {
                    println!(
                        "authenticated `{}` with `{}` ({}) in {ms} ms, {} token request{}",
                        instance.id,
                        instance.auth_name,
                        auth.type_name,
                        token_requests,
                        if token_requests == 1 { "" } else { "s" }
                    );
                    if let Some(l) = creds.lifetime {
                        println!("lifetime: {} s", l.as_secs());
                    }
                    for (k, v) in &fields {
                        println!("auth.{k} = {v}");
                    }
                    if let Some(r) = creds.shown_response() {
                        println!(
                            "response:\n{}",
                            serde_json::to_string_pretty(&r).unwrap_or_default()
                        );
                    }
                    for w in &creds.warnings {
                        eprintln!("warning: {w}");
                    }
                }
                exit::OK
            }
            Err(e) => {
                if args.format == Format::Json {
                    let doc = serde_json::json!({
                        "ok": false,
                        "error": { "code": e.kind().code(), "status": e.status(), "message": e.message() },
                    });
                    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
                }
                eprintln!("error: {e}");
                instance_args::status(&e)
            }
        };
        connected.finish().await;
        code
    })
}

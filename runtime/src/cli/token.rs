//! `connector token show|refresh|revoke INSTANCE`: what an instance holds, a new token now,
//! or revocation (RFC 7009) and removal of the stored tokens. Tokens are always redacted.

use compiler::ir::{Flow, Grant};
use runtime::auth::{oauth2, state};
use runtime::value::Scope;

use super::exit;
use super::instance_args::{self, Target};

/// Arguments of `connector token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Show what is stored for the instance (no request is sent).
    Show(Target),
    /// Fetch a new access token now (rotating the refresh token if the server does).
    Refresh(Target),
    /// Revoke the stored refresh token at the connector's revocation endpoint, then drop the
    /// stored and cached tokens.
    Revoke(Target),
}

/// Runs the command.
pub fn run(args: Args) -> u8 {
    let (action, target) = match &args.action {
        Action::Show(t) => ("show", t),
        Action::Refresh(t) => ("refresh", t),
        Action::Revoke(t) => ("revoke", t),
    };
    instance_args::tokio().block_on(async move {
        let connected = match instance_args::connect(target).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let result = match action {
            "show" => show(&connected.conn).await,
            "refresh" => refresh(&connected.conn).await,
            _ => revoke(&connected.conn).await,
        };
        let code = match result {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("error: {e}");
                instance_args::status(&e)
            }
        };
        connected.finish().await;
        code
    })
}

async fn show(conn: &runtime::run::Connection) -> runtime::error::Result<()> {
    let auth = conn.authenticator();
    let instance = auth.instance();
    let stored = auth
        .store()
        .load_stored(&state::instance_seed(instance))
        .await?;
    let doc = serde_json::json!({
        "instance": instance.id,
        "connector": instance.ir.connector,
        "auth": instance.auth_name,
        "type": instance.auth().type_name,
        "state_file": auth.store().file().display().to_string(),
        "refresh_token": stored.as_ref().map(|_| "<redacted>"),
        "stored_at": stored.as_ref().map(|s| s.updated_at),
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(())
}

async fn refresh(conn: &runtime::run::Connection) -> runtime::error::Result<()> {
    let auth = conn.authenticator();
    let creds = auth.refresh().await?;
    let fields: serde_json::Map<String, serde_json::Value> = creds
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), v.shown()))
        .collect();
    let doc = serde_json::json!({
        "instance": auth.instance().id,
        "token_requests": auth.token_requests(),
        "lifetime_s": creds.lifetime.map(|l| l.as_secs()),
        "fields": fields,
    });
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    for w in &creds.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

async fn revoke(conn: &runtime::run::Connection) -> runtime::error::Result<()> {
    let auth = conn.authenticator();
    let instance = auth.instance();
    let Flow::Oauth2(o) = &instance.auth().flow else {
        return Err(runtime::error::Error::new(
            runtime::error::ErrorKind::Usage,
            format!(
                "the auth method `{}` ({}) holds no OAuth 2 token to revoke",
                instance.auth_name,
                instance.auth().type_name
            ),
        ));
    };
    let scope = Scope {
        vars: Some(&instance.vars),
        ..Default::default()
    };
    let given = match o.grant {
        Grant::RefreshToken => instance
            .vars
            .get("refresh_token")
            .map(|v| runtime::secret::Secret::new(v.as_text().into_owned())),
        _ => None,
    };
    let stored = auth
        .store()
        .load(&state::instance_seed(instance))
        .await?
        .or(given);
    let ep = oauth2::endpoints(o, auth.http(), &scope).await?;
    match (&ep.revocation, &stored) {
        (Some(url), Some(rt)) => {
            oauth2::revoke(o, &ep, url, rt, "refresh_token", auth.http(), &scope).await?;
            println!("revoked the refresh token of `{}`", instance.id);
        }
        (None, Some(_)) => eprintln!(
            "warning: the connector declares no `revocation_url` and the server none in its metadata: the stored refresh token is dropped here but stays valid at the server until it expires"
        ),
        (_, None) => println!("no refresh token is stored for `{}`", instance.id),
    }
    let had = auth.store().clear().await?;
    if had {
        println!("deleted {}", auth.store().file().display());
    }
    Ok(())
}

//! Signing in with the authorization code grant (RFC 6749 §4.1) and PKCE (RFC 7636, S256):
//! the user opens the authorization URL, the server redirects the browser to a loopback
//! address this process listens on (RFC 8252 §7.3), the `state` is checked, the code is
//! exchanged, and the refresh token is stored for the runtime to use from then on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use compiler::ir::{Flow, Grant};
use sha2::Digest as _;
use tokio::sync::mpsc;

use super::oauth2::{self, Exchange};
use super::response::clean;
use super::{jwt, Authenticator, Credentials};
use crate::error::{Error, ErrorKind, Result};
use crate::http::Sent;
use crate::render;
use crate::secret::Secret;
use crate::value::{Scope, Value};

/// How a sign-in goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long to wait for the browser to come back.
    pub timeout: Duration,
}

/// What the redirect brought back.
enum Callback {
    Code(String),
    Refused(String),
    WrongState,
}

/// Signs the instance in: `show` receives the authorization URL to open; returns the
/// credentials of the code exchange, the refresh token already stored.
pub async fn login(
    auth: &Authenticator,
    options: &Options,
    show: impl FnOnce(&str),
) -> Result<Credentials> {
    let instance = auth.instance();
    let o = match &instance.auth().flow {
        Flow::Oauth2(o) if o.grant == Grant::AuthorizationCode => o,
        _ => {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "`connector login` signs in with `oauth2_authorization_code`; the auth method `{}` of {} is `{}`, which needs no sign-in",
                    instance.auth_name,
                    instance.file,
                    instance.auth().type_name
                ),
            ))
        }
    };
    let scope = Scope {
        vars: Some(&instance.vars),
        ..Default::default()
    };
    let mut sent = Sent::default();
    let ep = oauth2::endpoints(o, auth.http(), &scope).await?;
    let Some(authorize) = &ep.authorize else {
        return Err(Error::new(
            ErrorKind::Usage,
            "the auth method has no authorization URL: set `authorize: { url: ... }` or `issuer`",
        ));
    };
    let mut authorize = url::Url::parse(authorize).map_err(|e| {
        Error::new(
            ErrorKind::Usage,
            format!(
                "the authorization URL `{}` is not a URL: {e}",
                clean(authorize)
            ),
        )
    })?;
    let given = instance
        .vars
        .get("redirect_uri")
        .map(|v| v.as_text().into_owned())
        .unwrap_or_default();
    let (listener, redirect) = listen(&given).await?;
    let state = jwt::random_b64(24)?;
    let pkce = o.authorize.as_ref().is_some_and(|a| a.pkce) && !ep.pkce_unsupported;
    let verifier = if pkce {
        Some(jwt::random_b64(32)?)
    } else {
        None
    };
    {
        let client_id = render::opt_text(&o.client_id, &scope);
        let mut q = authorize.query_pairs_mut();
        q.append_pair("response_type", "code");
        q.append_pair("client_id", &client_id);
        q.append_pair("redirect_uri", redirect.as_str());
        q.append_pair("state", &state);
        if let Some(v) = &verifier {
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(v.as_bytes()));
            q.append_pair("code_challenge", &challenge);
            q.append_pair("code_challenge_method", "S256");
        }
        if let Some(a) = &o.authorize {
            for (k, v) in render::pairs(&a.params, &scope) {
                if !v.is_empty() {
                    q.append_pair(&k, &v);
                }
            }
        }
    }
    show(authorize.as_str());

    let (tx, mut rx) = mpsc::channel::<Callback>(4);
    let expected = Arc::new((redirect.path().to_owned(), state));
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let tx = tx.clone();
        let expected = expected.clone();
        async move { callback(req, &expected.0, &expected.1, &tx).await }
    });
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let outcome = tokio::time::timeout(options.timeout, rx.recv()).await;
    server.abort();
    let code = match outcome {
        Err(_) => {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "no sign-in came back to {redirect} within {} s; open the URL above in a browser (or pass a longer `--timeout`)",
                    options.timeout.as_secs()
                ),
            ))
        }
        Ok(None) => return Err(Error::new(ErrorKind::Usage, "the callback listener stopped")),
        Ok(Some(Callback::WrongState)) => {
            return Err(Error::new(
                ErrorKind::AuthRejected,
                "the redirect's `state` does not match the one this sign-in sent, so its code was not used (a stale browser tab, or a forged redirect); run `connector login` again",
            ))
        }
        Ok(Some(Callback::Refused(why))) => {
            return Err(Error::new(
                ErrorKind::AuthRejected,
                format!("the authorization server refused the sign-in: {why}"),
            ))
        }
        Ok(Some(Callback::Code(code))) => Secret::new(code),
    };

    let mut vars = instance.vars.clone();
    vars.insert("redirect_uri".into(), Value::text(redirect.as_str()));
    let scope = Scope {
        vars: Some(&vars),
        ..Default::default()
    };
    let creds = oauth2::token(
        o,
        &ep,
        Exchange::Code {
            code: code.expose(),
            verifier: verifier.as_deref(),
        },
        auth.http(),
        &mut sent,
        &scope,
    )
    .await
    .map_err(|e| e.context("exchanging the authorization code failed"))?;
    match creds.fields.get("refresh_token") {
        Some(Value::Secret(rt)) => auth.store().save(rt, "").await?,
        _ => {
            return Err(Error::new(
                ErrorKind::AuthResponse,
                "the token endpoint sent no refresh token, so the runtime could not renew access on its own; ask for offline access (often the `offline_access` scope, or `access_type=offline` in `authorize.params`)",
            ))
        }
    }
    Ok(creds)
}

/// Binds the loopback listener of `redirect_uri` (port 0: any free port) and returns the
/// redirect URI with the real port.
async fn listen(redirect_uri: &str) -> Result<(tokio::net::TcpListener, url::Url)> {
    let bad = |why: String| {
        Error::new(
            ErrorKind::Usage,
            format!("the `redirect_uri` `{}` {why}; use a loopback address such as http://127.0.0.1:8400/callback (RFC 8252 §7.3)", clean(redirect_uri)),
        )
    };
    let mut u = url::Url::parse(redirect_uri).map_err(|e| bad(format!("is not a URL ({e})")))?;
    if u.scheme() != "http" {
        return Err(bad("is not http".into()));
    }
    let ip: std::net::IpAddr = match u.host() {
        Some(url::Host::Ipv4(a)) if a.is_loopback() => a.into(),
        Some(url::Host::Ipv6(a)) if a.is_loopback() => a.into(),
        Some(url::Host::Domain("localhost")) => std::net::Ipv4Addr::LOCALHOST.into(),
        _ => return Err(bad("is not on a loopback address".into())),
    };
    let port = u.port_or_known_default().unwrap_or(80);
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(ip, port))
        .await
        .map_err(|e| bad(format!("cannot be listened on ({e})")))?;
    if port == 0 {
        let real = listener
            .local_addr()
            .map_err(|e| bad(e.to_string()))?
            .port();
        let _ = u.set_port(Some(real));
    }
    Ok((listener, u))
}

/// Answers the browser and passes what it brought to the waiting sign-in.
async fn callback(
    req: axum::extract::Request,
    path: &str,
    state: &str,
    tx: &mpsc::Sender<Callback>,
) -> axum::response::Response {
    use axum::response::{Html, IntoResponse};
    if req.uri().path() != path {
        return (axum::http::StatusCode::NOT_FOUND, "not found").into_response();
    }
    let query = req.uri().query().unwrap_or_default();
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let (outcome, status, page) = if param("state").as_deref() != Some(state) {
        (
            Callback::WrongState,
            axum::http::StatusCode::BAD_REQUEST,
            "This sign-in was not started by <code>connector login</code> (the state does not match). Run it again.",
        )
    } else if let Some(error) = param("error") {
        let description = param("error_description")
            .map(|d| format!(" ({})", clean(&d)))
            .unwrap_or_default();
        (
            Callback::Refused(format!("{}{description}", clean(&error))),
            axum::http::StatusCode::OK,
            "The sign-in was refused. See the terminal.",
        )
    } else if let Some(code) = param("code").filter(|c| !c.is_empty()) {
        (
            Callback::Code(code),
            axum::http::StatusCode::OK,
            "Signed in. You can close this tab and return to the terminal.",
        )
    } else {
        (
            Callback::Refused("the redirect carries neither `code` nor `error`".into()),
            axum::http::StatusCode::BAD_REQUEST,
            "The redirect carries no code. See the terminal.",
        )
    };
    let _ = tx.send(outcome).await;
    (
        status,
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>connector login</title><p>{page}</p>"
        )),
    )
        .into_response()
}

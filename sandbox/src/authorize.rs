//! The authorization endpoint (RFC 6749 §4.1.1, PKCE of RFC 7636, loopback redirects of
//! RFC 8252 §7.3): it approves at once, without a page, as [`AuthorizeMode`] says.

use std::time::Instant;

use axum::http::header::{CACHE_CONTROL, LOCATION};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use url::{Host, Url};

use crate::grants::{CodeGrant, CODE_LIFETIME};
use crate::http::{error, method_not_allowed, with_header, Req};
use crate::oauth::{check_resources, grant_scope, no_store, Form};
use crate::{AuthorizeMode, PkceMode, Shared};

/// `GET /oauth/authorize`.
pub(crate) fn authorize(shared: &Shared, req: &Req) -> Response {
    if req.method != Method::GET {
        return method_not_allowed(req, "GET");
    }
    let query = match Form::parse(req.query.as_bytes()) {
        Ok(query) => query,
        Err(message) => return bad_request(&message),
    };
    // Until the client and its redirect URI are known good, errors are shown, not redirected
    // (RFC 6749 §4.1.2.1).
    let Some(client_id) = query.non_empty("client_id") else {
        return bad_request("The parameter `client_id` is missing");
    };
    if client_id != shared.config.client_id {
        return bad_request(&format!("The client_id `{client_id}` is unknown"));
    }
    let Some(redirect_uri) = query.non_empty("redirect_uri") else {
        return bad_request("The parameter `redirect_uri` is missing");
    };
    let redirect = match loopback_redirect(redirect_uri) {
        Ok(url) => url,
        Err(message) => return bad_request(&message),
    };
    let state = query.get("state");
    match approve(shared, &query, redirect_uri, state) {
        Ok(params) => redirect_to(&redirect, &params),
        Err((code, description)) => {
            let mut params = vec![
                ("error", code.to_owned()),
                ("error_description", description),
            ];
            if let Some(state) = state {
                params.push(("state", state.to_owned()));
            }
            redirect_to(&redirect, &params)
        }
    }
}

/// 400 with a JSON error: for requests that cannot be redirected.
fn bad_request(description: &str) -> Response {
    no_store(error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        description,
    ))
}

/// The parameters of the success redirect, or the `error` and `error_description` of the
/// error redirect.
fn approve(
    shared: &Shared,
    query: &Form,
    redirect_uri: &str,
    state: Option<&str>,
) -> Result<Vec<(&'static str, String)>, (&'static str, String)> {
    match query.non_empty("response_type") {
        None => {
            return Err((
                "invalid_request",
                "The parameter `response_type` is missing".to_owned(),
            ))
        }
        Some("code") => {}
        Some(other) => {
            return Err((
                "unsupported_response_type",
                format!("The response_type `{other}` is not supported; use code"),
            ))
        }
    }
    let scope = grant_scope(query.get("scope").unwrap_or_default())
        .map_err(|message| ("invalid_scope", message))?;
    let challenge =
        pkce(shared.config.pkce, query).map_err(|message| ("invalid_request", message))?;
    let resource = query.all("resource");
    check_resources(shared, &resource).map_err(|message| ("invalid_target", message))?;
    let mode = shared.lock().authorize_mode;
    if mode == AuthorizeMode::Deny {
        return Err((
            "access_denied",
            "The resource owner denied the request".to_owned(),
        ));
    }
    let code = shared
        .credential()
        .map_err(|_| ("server_error", "No randomness for a code".to_owned()))?;
    let now = Instant::now();
    let grant = CodeGrant {
        client_id: shared.config.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        challenge,
        scope,
        resource,
        audience: query.all("audience"),
        expires: now + CODE_LIFETIME,
    };
    {
        let mut state = shared.lock();
        state.grants.add_code(code.clone(), grant, now);
        state.remember(&code);
    }
    let mut params = vec![("code", code)];
    match (mode, state) {
        (AuthorizeMode::WrongState, state) => {
            params.push(("state", format!("wrong-{}", state.unwrap_or_default())));
        }
        (_, Some(state)) => params.push(("state", state.to_owned())),
        (_, None) => {}
    }
    Ok(params)
}

/// The S256 `code_challenge`, if any, as [`PkceMode`] allows; `Err` is the description.
fn pkce(mode: PkceMode, query: &Form) -> Result<Option<String>, String> {
    let challenge = query.non_empty("code_challenge");
    match (mode, challenge) {
        (PkceMode::Rejected, Some(_)) => Err("PKCE is not supported".to_owned()),
        (PkceMode::Required, None) => {
            Err("The parameter `code_challenge` is missing: PKCE (RFC 7636) is required".to_owned())
        }
        (_, None) => Ok(None),
        (_, Some(challenge)) => {
            // RFC 7636 §4.3: without a method, the challenge is `plain`.
            let method = query.non_empty("code_challenge_method").unwrap_or("plain");
            if method != "S256" {
                return Err(format!(
                    "The code_challenge_method `{method}` is not supported; use S256"
                ));
            }
            let base64url = challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if challenge.len() != 43 || !base64url {
                return Err("The code_challenge must be 43 base64url characters: \
                            BASE64URL(SHA256(code_verifier))"
                    .to_owned());
            }
            Ok(Some(challenge.to_owned()))
        }
    }
}

/// Parses a redirect URI that must be `http` on a loopback host, any port and path (RFC
/// 8252 §7.3), without a fragment.
fn loopback_redirect(raw: &str) -> Result<Url, String> {
    let refuse = |why: &str| format!("The redirect_uri `{raw}` {why}");
    let url = Url::parse(raw).map_err(|_| refuse("is not an absolute URL"))?;
    let loopback = match url.host() {
        Some(Host::Ipv4(ip)) => ip.octets() == [127, 0, 0, 1],
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if url.scheme() != "http" || !loopback {
        return Err(refuse(
            "is not http on a loopback host (127.0.0.1, [::1] or localhost), as RFC 8252 §7.3 \
             asks of native clients",
        ));
    }
    if url.fragment().is_some() {
        return Err(refuse("has a fragment (RFC 6749 §3.1.2)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("has user information"));
    }
    Ok(url)
}

/// 302 to `redirect` with `params` added to its query.
fn redirect_to(redirect: &Url, params: &[(&str, String)]) -> Response {
    let mut location = redirect.clone();
    {
        let mut pairs = location.query_pairs_mut();
        for (name, value) in params {
            pairs.append_pair(name, value);
        }
    }
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::FOUND;
    let response = with_header(response, LOCATION, location.as_str());
    with_header(response, CACHE_CONTROL, "no-store")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_redirects() {
        for good in [
            "http://127.0.0.1:8080/cb",
            "http://[::1]:1/",
            "http://localhost/x?y=1",
            "http://LOCALHOST:9",
        ] {
            assert!(loopback_redirect(good).is_ok(), "{good}");
        }
        for bad in [
            "https://127.0.0.1/cb",
            "http://127.0.0.2/cb",
            "http://example.com/cb",
            "http://localhost.evil.com/",
            "http://127.0.0.1/cb#frag",
            "http://u:p@127.0.0.1/",
            "/cb",
            "com.example.app:/cb",
        ] {
            assert!(loopback_redirect(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirects_keep_the_query() {
        let url = Url::parse("http://127.0.0.1:5/cb?a=1").unwrap();
        let response = redirect_to(&url, &[("code", "c d".to_owned())]);
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(
            response.headers()[LOCATION],
            "http://127.0.0.1:5/cb?a=1&code=c+d"
        );
    }
}

//! The token endpoint (RFC 6749 §3.2): the `client_credentials`, `password`,
//! `authorization_code` (with PKCE, RFC 7636), `refresh_token` and JWT-bearer (RFC 7523 §2.1)
//! grants, and the revocation endpoint (RFC 7009).

use std::time::Instant;

use axum::http::{Method, StatusCode};
use axum::response::Response;

use crate::client_auth::{authenticate, Client};
use crate::grants::{CodeError, RefreshError};
use crate::http::{method_not_allowed, Req};
use crate::jwt::{unix_now, Jwt, Rules};
use crate::oauth::{
    check_resources, grant_scope, issue, no_store, pkce_s256, Form, Issue, OAuthError,
};
use crate::Shared;

/// The grant type of RFC 7523 §2.1.
pub(crate) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Every grant type the token endpoint serves.
pub(crate) const GRANT_TYPES: [&str; 5] = [
    "authorization_code",
    "client_credentials",
    "password",
    "refresh_token",
    JWT_BEARER_GRANT,
];
const NOT_PUBLIC_CODE: &str = "A public client (client_id without a secret) may only redeem \
                               authorization codes issued with PKCE";
const NOT_PUBLIC_REFRESH: &str = "A public client (client_id without a secret) may only use \
                                  refresh tokens from authorization codes issued with PKCE";

/// `POST /oauth/token`.
pub(crate) fn token(shared: &Shared, req: &Req) -> Response {
    if req.method != Method::POST {
        return no_store(method_not_allowed(req, "POST"));
    }
    grant(shared, req).unwrap_or_else(Response::from)
}

fn grant(shared: &Shared, req: &Req) -> Result<Response, OAuthError> {
    let form = Form::of_body(req, "token request")?;
    let client = authenticate(shared, req, &form)?;
    match form.non_empty("grant_type") {
        Some(JWT_BEARER_GRANT) => jwt_bearer(shared, req, &form),
        Some("authorization_code") => authorization_code(shared, &form, &client),
        Some("refresh_token") => {
            shared.lock().stats.refresh_grants += 1;
            refresh(shared, &form, &client)
        }
        grant_type => {
            let client_id = client.confidential()?;
            match grant_type {
                None => Err(OAuthError::invalid_request(
                    "The parameter `grant_type` is missing",
                )),
                Some("client_credentials") => with_scope(shared, &form, None),
                Some("password") => password(shared, &form, client_id),
                Some(other) => Err(OAuthError::unsupported_grant_type(format!(
                    "The grant type `{other}` is not supported; use {}",
                    GRANT_TYPES.join(", ")
                ))),
            }
        }
    }
}

/// The `resource` (checked) and `audience` parameters.
fn targets(shared: &Shared, form: &Form) -> Result<(Vec<String>, Vec<String>), OAuthError> {
    let resource = form.all("resource");
    check_resources(shared, &resource).map_err(OAuthError::invalid_target)?;
    Ok((resource, form.all("audience")))
}

/// Issues for the `scope` parameter, with a refresh token bound to `refresh_for` if given.
fn with_scope(
    shared: &Shared,
    form: &Form,
    refresh_for: Option<&str>,
) -> Result<Response, OAuthError> {
    let scope =
        grant_scope(form.get("scope").unwrap_or_default()).map_err(OAuthError::invalid_scope)?;
    let (resource, audience) = targets(shared, form)?;
    issue(
        shared,
        Issue {
            scope,
            refresh: refresh_for.map(|id| (id.to_owned(), false)),
            resource,
            audience,
        },
    )
}

fn password(shared: &Shared, form: &Form, client_id: &str) -> Result<Response, OAuthError> {
    let config = &shared.config;
    let username = form.get("username").unwrap_or_default();
    let password = form.get("password").unwrap_or_default();
    if username != config.username || password != config.password {
        return Err(OAuthError::invalid_grant(
            "The user name or password is wrong",
        ));
    }
    with_scope(shared, form, Some(client_id))
}

fn authorization_code(
    shared: &Shared,
    form: &Form,
    client: &Client,
) -> Result<Response, OAuthError> {
    let (client_id, public) = client.known()?;
    let code = form
        .non_empty("code")
        .ok_or_else(|| OAuthError::invalid_request("The parameter `code` is missing"))?;
    let now = Instant::now();
    let peeked = shared.lock().grants.code(code, now, false);
    let grant = peeked.map_err(code_error)?;
    if grant.client_id != client_id {
        return Err(OAuthError::invalid_grant(
            "The authorization code was issued to another client",
        ));
    }
    if public && grant.challenge.is_none() {
        return Err(OAuthError::invalid_client(NOT_PUBLIC_CODE));
    }
    match form.get("redirect_uri") {
        None => {
            return Err(OAuthError::invalid_request(
                "The parameter `redirect_uri` is missing; the authorization request had one",
            ))
        }
        Some(uri) if uri != grant.redirect_uri => {
            return Err(OAuthError::invalid_grant(format!(
                "The redirect_uri `{uri}` is not the one of the authorization request"
            )))
        }
        Some(_) => {}
    }
    check_verifier(grant.challenge.as_deref(), form.get("code_verifier"))
        .map_err(OAuthError::invalid_grant)?;
    let (resource, audience) = targets(shared, form)?;
    // Spent only now, so that a refused attempt does not burn the code.
    let taken = shared.lock().grants.code(code, now, true);
    taken.map_err(code_error)?;
    let pkce_public = public && grant.challenge.is_some();
    issue(
        shared,
        Issue {
            scope: grant.scope,
            refresh: Some((client_id.to_owned(), pkce_public)),
            resource: if resource.is_empty() {
                grant.resource
            } else {
                resource
            },
            audience: if audience.is_empty() {
                grant.audience
            } else {
                audience
            },
        },
    )
}

fn code_error(error: CodeError) -> OAuthError {
    OAuthError::invalid_grant(match error {
        CodeError::Spent => "The authorization code was already used",
        CodeError::Unknown => "The authorization code is unknown",
        CodeError::Expired => "The authorization code has expired",
    })
}

/// Checks a `code_verifier` against the `code_challenge` of the authorization request.
fn check_verifier(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), &'static str> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => {
            Err("A code_verifier was sent, but the authorization request had no code_challenge")
        }
        (Some(_), None) => {
            Err("The code_verifier is missing; the authorization request had a code_challenge")
        }
        (Some(challenge), Some(verifier)) => {
            let syntax = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !syntax {
                Err(
                    "The code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ \
                     (RFC 7636 §4.1)",
                )
            } else if pkce_s256(verifier) != challenge {
                Err("The code_verifier does not match the code_challenge")
            } else {
                Ok(())
            }
        }
    }
}

fn refresh(shared: &Shared, form: &Form, client: &Client) -> Result<Response, OAuthError> {
    let (client_id, public) = client.known()?;
    let token = form
        .non_empty("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("The parameter `refresh_token` is missing"))?;
    let scope = form
        .non_empty("scope")
        .map(grant_scope)
        .transpose()
        .map_err(OAuthError::invalid_scope)?;
    let (resource, audience) = targets(shared, form)?;
    let rotate = shared.config.rotate_refresh_tokens;
    let used = shared
        .lock()
        .grants
        .use_refresh(token, client_id, public, rotate);
    let grant = used.map_err(|error| match error {
        RefreshError::NotPublic => OAuthError::invalid_client(NOT_PUBLIC_REFRESH),
        RefreshError::Spent => OAuthError::invalid_grant("The refresh token was already used"),
        RefreshError::OtherClient => {
            OAuthError::invalid_grant("The refresh token was issued to another client")
        }
        RefreshError::Unknown => {
            OAuthError::invalid_grant("The refresh token is unknown or revoked")
        }
    })?;
    issue(
        shared,
        Issue {
            scope: scope.unwrap_or(grant.scope),
            refresh: rotate.then(|| (client_id.to_owned(), grant.public)),
            resource,
            audience,
        },
    )
}

/// The JWT-bearer grant: an assertion signed by a key registered for its `iss`, e.g. a
/// Google-style service account. Client authentication is optional.
fn jwt_bearer(shared: &Shared, req: &Req, form: &Form) -> Result<Response, OAuthError> {
    const WHAT: &str = "assertion";
    let token = form
        .non_empty("assertion")
        .ok_or_else(|| OAuthError::invalid_request("The parameter `assertion` is missing"))?;
    let refuse = |e: crate::jwt::JwtError| OAuthError::invalid_grant(e.describe(WHAT));
    let jwt = Jwt::parse(token).map_err(refuse)?;
    let iss = jwt.issuer().map_err(refuse)?;
    let audiences = shared.endpoint_urls(req, &["/oauth/token"], false);
    let rules = Rules {
        audiences: &audiences,
        require_iat: true,
        now: unix_now() + shared.config.clock_skew_s,
    };
    jwt.verify(&shared.keys_of(iss), &rules).map_err(refuse)?;
    let requested = jwt
        .claim("scope")
        .or_else(|| form.get("scope"))
        .unwrap_or_default();
    let scope = grant_scope(requested).map_err(OAuthError::invalid_scope)?;
    let (resource, audience) = targets(shared, form)?;
    issue(
        shared,
        Issue {
            scope,
            refresh: None,
            resource,
            audience,
        },
    )
}

/// `POST /oauth/revoke` (RFC 7009): revokes an access or refresh token; 200 even for a
/// token the sandbox does not know. Public clients may revoke too.
pub(crate) fn revoke(shared: &Shared, req: &Req) -> Response {
    if req.method != Method::POST {
        return no_store(method_not_allowed(req, "POST"));
    }
    revocation(shared, req).unwrap_or_else(Response::from)
}

fn revocation(shared: &Shared, req: &Req) -> Result<Response, OAuthError> {
    let form = Form::of_body(req, "revocation request")?;
    authenticate(shared, req, &form)?.known()?;
    let token = form
        .non_empty("token")
        .ok_or_else(|| OAuthError::invalid_request("The parameter `token` is missing"))?;
    {
        let mut state = shared.lock();
        state.tokens.remove(token);
        state.grants.revoke_refresh(token);
    }
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::OK;
    Ok(no_store(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(check_verifier(Some(challenge), Some(verifier)), Ok(()));
        assert!(check_verifier(Some(challenge), Some(&verifier.replace('d', "e"))).is_err());
        assert!(check_verifier(Some(challenge), Some("short")).is_err());
        assert!(check_verifier(Some(challenge), None).is_err());
        assert!(check_verifier(None, Some(verifier)).is_err());
        assert_eq!(check_verifier(None, None), Ok(()));
    }
}

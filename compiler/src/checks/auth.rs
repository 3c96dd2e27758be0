//! Checks of auth methods: `missing-token-url`, `missing-authorize-url`, `no-client-auth`,
//! `client-assertion-ignored`, and the `wrong-grant` of a `service_account` in a client
//! assertion (the other `wrong-grant` cases are keys the schema of the method lacks, reported
//! by `schema_check`).

use std::collections::HashSet;

use connector_spec::auth::ClientAuth;
use connector_spec::AuthMethod;

use super::security::{carries_secret, scope};
use super::sites::Place;
use super::Ctx;
use crate::diagnostic::Diagnostic;
use crate::template::{self, Namespace};
use crate::yaml::escape;

/// `missing-token-url`: an OAuth 2 method needs `request.url` or an `issuer` to discover it.
pub fn check_token_url(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for (name, m) in &ctx.connector.auth {
        let (url, issuer) = match m {
            AuthMethod::Oauth2ClientCredentials(g)
            | AuthMethod::Oauth2Password(g)
            | AuthMethod::Oauth2RefreshToken(g) => (
                g.request.as_ref().and_then(|r| r.url.as_ref()),
                g.issuer.as_ref(),
            ),
            AuthMethod::Oauth2JwtBearer(g) => {
                let sa = g
                    .assertion
                    .as_ref()
                    .and_then(|a| a.service_account.as_ref());
                (
                    g.request.as_ref().and_then(|r| r.url.as_ref()).or(sa),
                    g.issuer.as_ref(),
                )
            }
            AuthMethod::Oauth2AuthorizationCode(g) => (
                g.request.as_ref().and_then(|r| r.url.as_ref()),
                g.issuer.as_ref(),
            ),
            _ => continue,
        };
        if url.is_none() && issuer.is_none() {
            let at = format!("/auth/{}", escape(name));
            out.push(
                Diagnostic::error("missing-token-url", format!("the auth method `{name}` has no token URL"))
                    .at(at.clone(), ctx.locs.key(&at))
                    .help("add `request: { url: \"https://…/oauth/token\" }`, or `issuer:` to discover it"),
            );
        }
    }
}

/// `missing-authorize-url`: the authorization code grant needs the URL users sign in at.
pub fn check_authorize_url(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for (name, m) in &ctx.connector.auth {
        if let AuthMethod::Oauth2AuthorizationCode(g) = m {
            let has_url = g.authorize.as_ref().is_some_and(|a| a.url.is_some());
            if !has_url && g.issuer.is_none() {
                let at = format!("/auth/{}", escape(name));
                out.push(
                    Diagnostic::error("missing-authorize-url", format!("the auth method `{name}` has no authorization URL"))
                        .at(at.clone(), ctx.locs.key(&at))
                        .help("add `authorize: { url: \"https://…/authorize\" }`, or `issuer:` to discover it"),
                );
            }
        }
    }
}

/// `no-client-auth`: the client credentials grant with `client_auth: none` and no credentials
/// written by hand. The grant is for confidential clients only, and the client must
/// authenticate (RFC 6749 §4.4.2); a server answers `invalid_client`.
pub fn check_client_auth_none(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for (name, m) in &ctx.connector.auth {
        let AuthMethod::Oauth2ClientCredentials(g) = m else {
            continue;
        };
        let Some(request) = &g.request else {
            continue;
        };
        if request.client_auth != Some(ClientAuth::None) {
            continue;
        }
        // An Authorization header, or a secret in the headers or the body, written by hand:
        // the author sends the credentials their own way.
        let base = format!("/auth/{}/request/", escape(name));
        let by_hand = request
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("authorization"))
            || {
                let vars = scope(ctx.connector, Place::Auth(name));
                ctx.sites.iter().any(|site| {
                    let own = site.pointer.strip_prefix(&base).is_some_and(|rest| {
                        rest.starts_with("headers/") || rest.starts_with("body/")
                    });
                    own && template::parse(site.text).is_ok_and(|pieces| {
                        template::refs(&pieces).any(|(r, _, _)| {
                            r.ns == Namespace::Vars
                                && carries_secret(&vars, &r.name, &mut HashSet::new())
                        })
                    })
                })
            };
        if by_hand {
            continue;
        }
        let at = format!("/auth/{}/request/client_auth", escape(name));
        out.push(
            Diagnostic::error(
                "no-client-auth",
                format!("`client_auth: none` on the client credentials grant `{name}`: the client never proves who it is"),
            )
            .at(at.clone(), ctx.locs.value(&at))
            .label("the token endpoint will answer `invalid_client`")
            .help("the client credentials grant authenticates the client (RFC 6749 §4.4.2): use `basic` (the default), `body` or `private_key_jwt`; to send the credentials your own way, reference a secret variable in `request.headers` or `request.body`"),
        );
    }
}

/// `client-assertion-ignored`: a `client_assertion` written on a method whose `client_auth` is
/// not `private_key_jwt`, so nothing signs it. The author meant one or the other.
pub fn check_client_assertion_ignored(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for (name, m) in &ctx.connector.auth {
        let at = format!("/auth/{}/client_assertion", escape(name));
        if !ctx.locs.contains(&at) {
            continue;
        }
        let Some(request) = m.token_request() else {
            continue;
        };
        let client_auth = request.client_auth.unwrap_or(ClientAuth::Basic);
        if client_auth == ClientAuth::PrivateKeyJwt {
            continue;
        }
        let request_at = format!("/auth/{}/request/client_auth", escape(name));
        let default = if ctx.locs.contains(&request_at) {
            ""
        } else if matches!(m, AuthMethod::Oauth2JwtBearer(_)) {
            " (the default of `oauth2_jwt_bearer`)"
        } else {
            " (the default)"
        };
        let help = if matches!(m, AuthMethod::Oauth2JwtBearer(_)) {
            "the JWT this grant exchanges for a token is `assertion`: rename `client_assertion` to `assertion`; or, to also authenticate the client with a signed JWT, set `request.client_auth: private_key_jwt`"
        } else {
            "set `request.client_auth: private_key_jwt` to authenticate with the signed assertion, or remove `client_assertion`"
        };
        out.push(
            Diagnostic::error(
                "client-assertion-ignored",
                format!(
                    "`client_assertion` of `{name}` is never signed: `client_auth` is `{}`{default}, not `private_key_jwt`",
                    client_auth.as_str()
                ),
            )
            .at(at.clone(), ctx.locs.key(&at))
            .help(help),
        );
    }
}

/// `wrong-grant`: `service_account` in a client assertion. A service-account key file is what
/// the JWT bearer grant signs its `assertion` with; a client assertion is signed with `key`.
pub fn check_client_assertion_service_account(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for name in ctx.connector.auth.keys() {
        let at = format!("/auth/{}/client_assertion/service_account", escape(name));
        if !ctx.locs.contains(&at) {
            continue;
        }
        out.push(
            Diagnostic::error(
                "wrong-grant",
                "`service_account` is read only in the `assertion` of `oauth2_jwt_bearer`, not in a `client_assertion`",
            )
            .at(at.clone(), ctx.locs.key(&at))
            .help("sign the client assertion with `key: \"{{ vars.private_key }}\"` (a PEM in a secret variable); for a Google service account, use `type: oauth2_jwt_bearer` with `assertion: { service_account: \"{{ vars.NAME }}\" }`"),
        );
    }
}

/// `duplicate-name`: a `token_params` entry that names a parameter the token request sends
/// already: a field of its body, one the grant or `client_auth` adds, or the `resource` or
/// `audience` key of the method. Two values for one parameter: servers take either.
pub fn check_token_params(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for (name, m) in &ctx.connector.auth {
        let (params, resource, audience) = match m {
            AuthMethod::Oauth2ClientCredentials(g)
            | AuthMethod::Oauth2Password(g)
            | AuthMethod::Oauth2RefreshToken(g) => (&g.token_params, &g.resource, &g.audience),
            AuthMethod::Oauth2JwtBearer(g) => (&g.token_params, &g.resource, &g.audience),
            AuthMethod::Oauth2AuthorizationCode(g) => (&g.token_params, &g.resource, &g.audience),
            _ => continue,
        };
        let request = m.token_request();
        let client_auth = request
            .and_then(|r| r.client_auth)
            .unwrap_or(ClientAuth::Basic);
        let body: Vec<&str> = request
            .and_then(|r| r.body.as_ref())
            .map(|b| {
                let form = b.form.iter().flat_map(|f| f.keys());
                let json = b
                    .json
                    .iter()
                    .filter_map(|j| j.as_object())
                    .flat_map(|o| o.keys());
                form.chain(json).map(String::as_str).collect()
            })
            .unwrap_or_default();
        for param in params.keys() {
            let at = format!("/auth/{}/token_params/{}", escape(name), escape(param));
            if !ctx.locs.contains(&at) {
                continue;
            }
            let p = param.as_str();
            let by_grant = match (m, p) {
                (AuthMethod::Oauth2JwtBearer(_), "assertion") => Some("the JWT bearer grant"),
                (AuthMethod::Oauth2AuthorizationCode(_), "code" | "code_verifier") => {
                    Some("the authorization code grant")
                }
                (_, "client_assertion" | "client_assertion_type")
                    if client_auth == ClientAuth::PrivateKeyJwt =>
                {
                    Some("`client_auth: private_key_jwt`")
                }
                _ => None,
            };
            let (message, help) = if p == "resource" && resource.is_some()
                || p == "audience" && audience.is_some()
            {
                (
                    format!("`{p}` is given twice: as the `{p}` key of `{name}` and in its `token_params`"),
                    format!("keep one: the `{p}` key sends the `{p}` parameter already"),
                )
            } else if let Some(grant) = by_grant {
                (
                    format!("the token parameter `{p}` is set by {grant}"),
                    "remove it from `token_params`".to_owned(),
                )
            } else if body.contains(&p) {
                (
                    format!("the token parameter `{p}` is also a field of the token request's body"),
                    format!("keep one: to change a standard field, give its variable a default (`variables: {{ {p}: {{ default: … }} }}`) or write `request.body`; `token_params` is for parameters the body lacks"),
                )
            } else {
                continue;
            };
            out.push(
                Diagnostic::error("duplicate-name", message)
                    .at(at.clone(), ctx.locs.key(&at))
                    .help(help),
            );
        }
    }
}

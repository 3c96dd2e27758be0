//! Checks of auth methods: `missing-token-url`, `missing-authorize-url`.

use connector_spec::AuthMethod;

use super::Ctx;
use crate::diagnostic::Diagnostic;
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

//! Checks that keep credentials safe: `secret-in-url`, `insecure-token-url`, `broad-scope`,
//! `client-auth-conflict`.

use std::collections::{HashMap, HashSet};

use connector_spec::auth::ClientAuth;
use connector_spec::{Connector, Scalar, Variable};
use indexmap::IndexMap;

use super::sites::{Place, Role};
use super::Ctx;
use crate::diagnostic::Diagnostic;
use crate::template::{self, Namespace, Piece};
use crate::yaml::escape;

/// The variables visible at `place`, the method's hiding the connector's.
pub(super) fn scope<'a>(c: &'a Connector, place: Place<'_>) -> HashMap<&'a str, &'a Variable> {
    let mut vars: HashMap<&str, &Variable> =
        c.variables.iter().map(|(k, v)| (k.as_str(), v)).collect();
    if let Place::Auth(m) | Place::Apply(m) = place {
        if let Some(method) = c.auth.get(m) {
            vars.extend(method.variables().iter().map(|(k, v)| (k.as_str(), v)));
        }
    }
    if let Place::Base | Place::Endpoint(_) = place {
        for method in c.auth.values() {
            vars.extend(method.variables().iter().map(|(k, v)| (k.as_str(), v)));
        }
    }
    vars
}

/// Whether `name` is a secret or its default draws on one. Walks the defaults with a stack of
/// its own (a chain of thousands of variables must not overflow the thread's).
pub(super) fn carries_secret(
    vars: &HashMap<&str, &Variable>,
    name: &str,
    seen: &mut HashSet<String>,
) -> bool {
    let mut todo = vec![name.to_owned()];
    while let Some(name) = todo.pop() {
        let Some(v) = vars.get(name.as_str()) else {
            continue;
        };
        if v.secret {
            return true;
        }
        if !seen.insert(name) {
            continue;
        }
        let Some(Scalar::String(s)) = &v.default else {
            continue;
        };
        let Ok(pieces) = template::parse(s) else {
            continue;
        };
        let mut refs: Vec<String> = template::refs(&pieces)
            .filter(|(r, _, _)| r.ns == Namespace::Vars)
            .map(|(r, _, _)| r.name.clone())
            .collect();
        // Visited in the order they are written, as the recursion did.
        refs.reverse();
        todo.extend(refs);
    }
    false
}

/// `secret-in-url`: a secret in a URL or a query parameter ends up in access logs.
pub fn check_secret_in_url(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    // Every endpoint (and the base URL) sees the same variables: one map for all of them.
    let mut shared_scope: Option<HashMap<&str, &Variable>> = None;
    let mut own_scope;
    for site in &ctx.sites {
        if !matches!(site.role, Role::Url | Role::AuthUrl | Role::Query)
            || matches!(site.place, Place::Apply(_))
        {
            continue;
        }
        let Ok(pieces) = template::parse(site.text) else {
            continue;
        };
        if !template::refs(&pieces).any(|(r, _, _)| r.ns == Namespace::Vars) {
            continue;
        }
        let vars = match site.place {
            Place::Base | Place::Endpoint(_) => {
                &*shared_scope.get_or_insert_with(|| scope(ctx.connector, site.place))
            }
            place => {
                own_scope = scope(ctx.connector, place);
                &own_scope
            }
        };
        for (r, offset, len) in template::refs(&pieces) {
            if r.ns == Namespace::Vars && carries_secret(vars, &r.name, &mut HashSet::new()) {
                let where_ = if site.role == Role::Query {
                    "a query parameter"
                } else {
                    "a URL"
                };
                out.push(
                    Diagnostic::error("secret-in-url", format!("the secret `vars.{}` is put in {where_}", r.name))
                        .at(site.pointer.clone(), ctx.locs.inside(&site.pointer, ctx.source, offset, len))
                        .label("URLs end up in access logs and proxies")
                        .help("send secrets in a header or the body; an API key that must travel in the query is declared with `type: api_key` and `in: query`"),
                );
            }
        }
    }
}

/// Renders a template from the variables' defaults as far as they are known; the flag says
/// whether it rendered completely.
fn known_prefix(text: &str, vars: &HashMap<&str, &Variable>, depth: usize) -> (String, bool) {
    let Ok(pieces) = template::parse(text) else {
        return (String::new(), false);
    };
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Ref { target, .. } => {
                let default = vars
                    .get(target.name.as_str())
                    .and_then(|v| v.default.as_ref());
                match (target.ns, default) {
                    (Namespace::Vars, Some(Scalar::String(s))) if depth < 8 => {
                        let (inner, complete) = known_prefix(s, vars, depth + 1);
                        out.push_str(&inner);
                        if !complete {
                            return (out, false);
                        }
                    }
                    (Namespace::Vars, Some(other)) => out.push_str(&other.to_string()),
                    _ => return (out, false),
                }
            }
        }
    }
    (out, true)
}

fn is_loopback_http(url: &str) -> bool {
    let rest = &url["http://".len()..];
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// `insecure-token-url`: credentials sent over plain HTTP, loopback excepted.
pub fn check_token_urls(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for site in &ctx.sites {
        let auth_request_url = site.role == Role::AuthUrl
            || (site.role == Role::Url && matches!(site.place, Place::Auth(_)));
        if !auth_request_url {
            continue;
        }
        let vars = scope(ctx.connector, site.place);
        let (prefix, _) = known_prefix(site.text, &vars, 0);
        let lower = prefix.to_ascii_lowercase();
        if lower.starts_with("http://")
            && prefix.len() > "http://".len()
            && !is_loopback_http(&lower)
        {
            let via = if site.text.trim_start().starts_with("{{") {
                format!(" (`{}` once its variables take their defaults)", prefix)
            } else {
                String::new()
            };
            let what = if site.pointer.ends_with("/issuer") {
                "the issuer would be discovered over plain HTTP: a forged token URL in its metadata would collect the credentials"
            } else if site.pointer.ends_with("/revocation_url") {
                "tokens and client credentials would be sent over plain HTTP to revoke them"
            } else if site.pointer.ends_with("/authorize/url") {
                "users would sign in over plain HTTP"
            } else {
                "credentials would be sent over plain HTTP"
            };
            out.push(
                Diagnostic::error("insecure-token-url", format!("{what}{via}"))
                    .at(site.pointer.clone(), ctx.locs.value(&site.pointer))
                    .help("use `https://`; plain `http://` is accepted only for loopback hosts (127.0.0.1, localhost, [::1])"),
            );
        }
    }
}

/// `broad-scope` (warning): a scope of `*` or `admin:*` asks for far more than a connector needs.
pub fn check_broad_scope(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    let c = ctx.connector;
    let is_broad = |s: &str| s.split([' ', ',']).any(|t| t == "*" || t.ends_with(":*"));
    let mut check = |at: String, value: &str| {
        if is_broad(value) && ctx.locs.contains(&at) {
            out.push(
                Diagnostic::warning(
                    "broad-scope",
                    format!("the scope `{value}` grants everything"),
                )
                .at(at.clone(), ctx.locs.value(&at))
                .help("request only the scopes the endpoints need (least privilege)"),
            );
        }
    };
    if let Some(Variable {
        default: Some(Scalar::String(s)),
        ..
    }) = c.variables.get("scope")
    {
        check("/variables/scope/default".into(), s);
    }
    for (m, method) in &c.auth {
        if let Some(Variable {
            default: Some(Scalar::String(s)),
            ..
        }) = method.variables().get("scope")
        {
            check(format!("/auth/{}/variables/scope/default", escape(m)), s);
        }
    }
    for site in &ctx.sites {
        if site.pointer.ends_with("/scope")
            && matches!(site.role, Role::Body | Role::Json | Role::Query)
        {
            check(site.pointer.clone(), site.text);
        }
    }
}

/// `client-auth-conflict`: an `Authorization` header written by hand while `client_auth`
/// also sets one.
pub fn check_client_auth_conflict(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for (m, method) in &ctx.connector.auth {
        let Some(request) = method.token_request() else {
            continue;
        };
        let client_auth = request.client_auth.unwrap_or(ClientAuth::Basic);
        let headers: &IndexMap<String, String> = &request.headers;
        let Some(name) = headers
            .keys()
            .find(|k| k.eq_ignore_ascii_case("authorization"))
        else {
            continue;
        };
        let at = format!("/auth/{}/request/headers/{}", escape(m), escape(name));
        if matches!(client_auth, ClientAuth::Basic | ClientAuth::BasicRaw) {
            out.push(
                Diagnostic::error(
                    "client-auth-conflict",
                    format!("`client_auth: {}` sets the Authorization header, and the request sets it too", client_auth.as_str()),
                )
                .at(at.clone(), ctx.locs.key(&at))
                .help("remove the header and let `client_auth` build it, or set `client_auth: none` to send your own"),
            );
        } else if matches!(client_auth, ClientAuth::Body | ClientAuth::PrivateKeyJwt) {
            out.push(
                Diagnostic::error(
                    "client-auth-conflict",
                    format!("`client_auth: {}` sends the client credentials in the body, and the request also sets an Authorization header", client_auth.as_str()),
                )
                .at(at.clone(), ctx.locs.key(&at))
                .help("send the credentials one way: remove the header, or set `client_auth: none`"),
            );
        }
    }
}

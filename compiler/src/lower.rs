//! Lowering: the expanded, checked connector becomes the IR.
//!
//! Runs only when the checks found no error, so every template parses and every reference
//! resolves; nothing here reports diagnostics.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use indexmap::IndexMap;

use connector_spec::auth::{self as spec_auth, ClientAuth, KeyLocation, Pkce};
use connector_spec::endpoint::{self as spec_endpoint, Method};
use connector_spec::{AuthMethod, Connector, Scalar, ValueType, Variable};

use crate::checks::sites::auth_fields;
use crate::expand::defaults;
use crate::ir::*;
use crate::template::{self, Namespace, Piece};

/// Lowers an expanded connector.
pub fn lower(c: &Connector) -> Ir {
    let base = c.base_url.as_deref();
    Ir {
        ir_version: IR_VERSION,
        connector: c.connector.clone(),
        name: c.name.clone(),
        description: c.description.clone(),
        variables: vars(&c.variables),
        auth: c.auth.iter().map(|(k, m)| (k.clone(), auth(m))).collect(),
        endpoints: c
            .endpoints
            .iter()
            .map(|(k, e)| (k.clone(), endpoint(e, base)))
            .collect(),
    }
}

/// Parses a checked template.
pub fn tpl(text: &str) -> Template {
    let pieces = template::parse(text).unwrap_or_else(|_| vec![Piece::Text(text.to_owned())]);
    Template(
        pieces
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => Part::Text(t),
                Piece::Ref { target, .. } => Part::Ref(match target.ns {
                    Namespace::Vars => Ref::Vars(target.name),
                    Namespace::Auth => Ref::Auth(target.name),
                    Namespace::Input => Ref::Input(target.name),
                    Namespace::Page => Ref::Page(target.name),
                }),
            })
            .collect(),
    )
}

fn map(m: &IndexMap<String, String>) -> IndexMap<String, Template> {
    m.iter().map(|(k, v)| (k.clone(), tpl(v))).collect()
}

fn opt(s: &Option<String>) -> Option<Template> {
    s.as_deref().map(tpl)
}

/// Variables in an order where each default follows the variables it uses: of those whose
/// defaults are ready, the first declared comes first (Kahn's algorithm, linear in the number
/// of variables and references).
fn vars(declared: &IndexMap<String, Variable>) -> Vec<Var> {
    let mut lowered: Vec<Option<Var>> = declared
        .iter()
        .map(|(name, v)| Some(var(name, v)))
        .collect();
    let n = lowered.len();
    // For each variable, how many of the variables it uses are not placed yet; and who uses it.
    let mut waiting = vec![0usize; n];
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, v) in lowered.iter().flatten().enumerate() {
        let mut deps: Vec<usize> = match &v.default {
            Some(Default::Template(t)) => t
                .refs()
                .filter_map(|r| match r {
                    Ref::Vars(name) => declared.get_index_of(name.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        deps.sort_unstable();
        deps.dedup();
        waiting[i] = deps.len();
        for d in deps {
            users[d].push(i);
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|i| waiting[*i] == 0).map(Reverse).collect();
    let mut ordered: Vec<Var> = Vec::with_capacity(n);
    while ordered.len() < n {
        // A cycle (reported by the checks, so not lowered) would leave none ready: take the
        // first left.
        let i = match ready.pop() {
            Some(Reverse(i)) => i,
            None => (0..n).find(|i| lowered[*i].is_some()).unwrap_or_default(),
        };
        let Some(v) = lowered[i].take() else {
            continue;
        };
        ordered.push(v);
        for &u in &users[i] {
            waiting[u] -= 1;
            if waiting[u] == 0 && lowered[u].is_some() {
                ready.push(Reverse(u));
            }
        }
    }
    ordered
}

fn var(name: &str, v: &Variable) -> Var {
    Var {
        name: name.to_owned(),
        label: v.label.clone(),
        description: v.description.clone(),
        kind: v.kind.unwrap_or(ValueType::String),
        default: v.default.as_ref().map(|d| match d {
            Scalar::String(s) if s.contains("{{") => Default::Template(tpl(s)),
            Scalar::String(s) => Default::Value(Scalar::String(s.replace("\\{{", "{{"))),
            other => Default::Value(other.clone()),
        }),
        required: v.required,
        secret: v.secret,
        allowed: v.allowed.clone(),
    }
}

fn body(b: &connector_spec::Body) -> Option<Body> {
    if let Some(form) = &b.form {
        return Some(Body::Form(map(form)));
    }
    if let Some(json) = &b.json {
        return Some(Body::Json(json_template(json)));
    }
    b.raw.as_ref().map(|raw| Body::Raw {
        template: tpl(raw),
        content_type: b
            .content_type
            .clone()
            .unwrap_or_else(|| "text/plain".into()),
    })
}

fn json_template(value: &serde_json::Value) -> JsonTemplate {
    use serde_json::Value as V;
    match value {
        V::String(s) => {
            let t = tpl(s);
            match t.as_single_ref() {
                Some(r) => JsonTemplate::Ref(r.clone()),
                None => JsonTemplate::Template(t),
            }
        }
        V::Array(items) => JsonTemplate::Array(items.iter().map(json_template).collect()),
        V::Object(m) => JsonTemplate::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), json_template(v)))
                .collect(),
        ),
        other => JsonTemplate::Value(other.clone()),
    }
}

fn apply(a: &Option<spec_auth::Apply>) -> Apply {
    a.as_ref()
        .map(|a| Apply {
            headers: map(&a.headers),
            query: map(&a.query),
        })
        .unwrap_or_default()
}

fn jwt(j: &Option<spec_auth::JwtSigning>) -> Option<Jwt> {
    j.as_ref().map(|j| Jwt {
        key: opt(&j.key),
        service_account: opt(&j.service_account),
        algorithm: j.algorithm.unwrap_or(JwtAlgorithm::RS256),
        kid: opt(&j.kid),
        issuer: opt(&j.issuer),
        subject: opt(&j.subject),
        audience: opt(&j.audience),
        lifetime_s: j.lifetime_s.unwrap_or(defaults::ASSERTION_LIFETIME_S),
        claims: map(&j.claims),
    })
}

/// The extra token request parameters: `resource`, `audience`, then `token_params`.
fn token_params(
    resource: &Option<String>,
    audience: &Option<String>,
    extra: &IndexMap<String, String>,
) -> IndexMap<String, Template> {
    let mut params = IndexMap::new();
    for (name, value) in [("resource", resource), ("audience", audience)] {
        if let Some(v) = value {
            params.insert(name.to_owned(), tpl(v));
        }
    }
    for (name, value) in extra {
        params.insert(name.clone(), tpl(value));
    }
    params
}

fn auth(m: &AuthMethod) -> Auth {
    let fields = auth_fields(m);
    macro_rules! oauth {
        ($g:expr, $grant:expr, $assertion:expr, $authorize:expr, $sharing:expr) => {{
            let g = $g;
            let request = g.request.clone().unwrap_or_default();
            let client_auth = request.client_auth.unwrap_or(ClientAuth::Basic);
            let response = g.response.clone().unwrap_or_default();
            let has = |n: &str| g.variables.contains_key(n);
            let lowered = OAuth2 {
                grant: $grant,
                request: Request {
                    method: request.method.unwrap_or(Method::Post),
                    url: opt(&request.url).unwrap_or_default(),
                    query: map(&request.query),
                    headers: map(&request.headers),
                    body: request.body.as_ref().and_then(body),
                },
                issuer: opt(&g.issuer),
                client_auth,
                client_id: has("client_id").then(|| tpl("{{ vars.client_id }}")),
                client_secret: has("client_secret").then(|| tpl("{{ vars.client_secret }}")),
                scope: has("scope").then(|| tpl("{{ vars.scope }}")),
                response: TokenFields {
                    access_token: opt(&response.token)
                        .unwrap_or_else(|| Template::literal("access_token")),
                    token_type: opt(&response.token_type)
                        .unwrap_or_else(|| Template::literal("token_type")),
                    expires_in: opt(&response.expires_in)
                        .unwrap_or_else(|| Template::literal("expires_in")),
                    scope: opt(&response.scope).unwrap_or_else(|| Template::literal("scope")),
                    refresh_token: opt(&response.refresh_token)
                        .unwrap_or_else(|| Template::literal("refresh_token")),
                    fields: map(&response.fields),
                },
                scope_check: g.scope_check.unwrap_or(ScopeCheck::Warn),
                default_lifetime_s: g.default_lifetime_s.unwrap_or(defaults::LIFETIME_S),
                refresh_margin_s: g.refresh_margin_s,
                assertion: $assertion,
                client_assertion: jwt(&g.client_assertion),
                authorize: $authorize,
                token_sharing: $sharing,
                revocation_url: opt(&g.revocation_url),
                params: token_params(&g.resource, &g.audience, &g.token_params),
            };
            Auth {
                type_name: m.type_name().to_owned(),
                label: g.label.clone(),
                description: g.description.clone(),
                variables: vars(&g.variables),
                fields,
                flow: Flow::Oauth2(Box::new(lowered)),
                apply: apply(&g.apply),
            }
        }};
    }
    match m {
        AuthMethod::Oauth2ClientCredentials(g) => {
            oauth!(g, Grant::ClientCredentials, None, None, None)
        }
        AuthMethod::Oauth2Password(g) => oauth!(g, Grant::Password, None, None, None),
        AuthMethod::Oauth2RefreshToken(g) => oauth!(g, Grant::RefreshToken, None, None, None),
        AuthMethod::Oauth2JwtBearer(g) => {
            oauth!(g, Grant::JwtBearer, jwt(&g.assertion), None, None)
        }
        AuthMethod::Oauth2AuthorizationCode(g) => {
            let authorize = g.authorize.as_ref().map(|a| {
                let mut params = map(&a.params);
                for (name, value) in [("resource", &g.resource), ("audience", &g.audience)] {
                    if let Some(v) = value {
                        params.entry(name.to_owned()).or_insert_with(|| tpl(v));
                    }
                }
                Authorize {
                    url: opt(&a.url).unwrap_or_default(),
                    params,
                    pkce: a.pkce != Some(Pkce::Disabled),
                }
            });
            oauth!(
                g,
                Grant::AuthorizationCode,
                None,
                authorize,
                g.token_sharing
            )
        }
        AuthMethod::Custom(c) => Auth {
            type_name: m.type_name().to_owned(),
            label: c.label.clone(),
            description: c.description.clone(),
            variables: vars(&c.variables),
            fields,
            flow: Flow::Custom(Box::new(Custom {
                request: Request {
                    method: c.request.method.unwrap_or(Method::Post),
                    url: tpl(&c.request.url),
                    query: map(&c.request.query),
                    headers: map(&c.request.headers),
                    body: c.request.body.as_ref().and_then(body),
                },
                fields: c
                    .response
                    .as_ref()
                    .map(|r| map(&r.fields))
                    .unwrap_or_default(),
                default_lifetime_s: c.default_lifetime_s.unwrap_or(defaults::LIFETIME_S),
            })),
            apply: Apply {
                headers: map(&c.apply.headers),
                query: map(&c.apply.query),
            },
        },
        AuthMethod::Basic(b) => Auth {
            type_name: m.type_name().to_owned(),
            label: b.label.clone(),
            description: b.description.clone(),
            variables: vars(&b.variables),
            fields,
            flow: Flow::Basic {
                username: opt(&b.username).unwrap_or_default(),
                password: opt(&b.password).unwrap_or_default(),
            },
            apply: Apply::default(),
        },
        AuthMethod::Bearer(b) => {
            let mut headers = IndexMap::new();
            let token = b.token.clone().unwrap_or_default();
            headers.insert("Authorization".to_owned(), tpl(&format!("Bearer {token}")));
            Auth {
                type_name: m.type_name().to_owned(),
                label: b.label.clone(),
                description: b.description.clone(),
                variables: vars(&b.variables),
                fields,
                flow: Flow::Static,
                apply: Apply {
                    headers,
                    query: IndexMap::new(),
                },
            }
        }
        AuthMethod::ApiKey(k) => {
            let mut a = Apply::default();
            let name = k.name.clone().unwrap_or_else(|| "X-API-Key".into());
            let value = opt(&k.value).unwrap_or_default();
            match k.location.unwrap_or(KeyLocation::Header) {
                KeyLocation::Header => a.headers.insert(name, value),
                KeyLocation::Query => a.query.insert(name, value),
            };
            Auth {
                type_name: m.type_name().to_owned(),
                label: k.label.clone(),
                description: k.description.clone(),
                variables: vars(&k.variables),
                fields,
                flow: Flow::Static,
                apply: a,
            }
        }
    }
}

/// Joins a relative endpoint URL to the base URL.
fn join_url(base: Option<&str>, url: &str) -> String {
    match base {
        Some(base) if !crate::checks::is_absolute(url) => {
            match (base.ends_with('/'), url.starts_with('/')) {
                (true, true) => format!("{base}{}", &url[1..]),
                (false, false) if !url.is_empty() => format!("{base}/{url}"),
                _ => format!("{base}{url}"),
            }
        }
        _ => url.to_owned(),
    }
}

fn endpoint(e: &spec_endpoint::Endpoint, base: Option<&str>) -> Endpoint {
    let retry = e.retry.clone().unwrap_or_default();
    Endpoint {
        description: e.description.clone(),
        request: Request {
            method: e.method.unwrap_or(Method::Get),
            url: tpl(&join_url(base, &e.url)),
            query: map(&e.query),
            headers: map(&e.headers),
            body: e.body.as_ref().and_then(body),
        },
        inputs: e.inputs.iter().map(|(k, v)| var(k, v)).collect(),
        records: e.records.clone(),
        pagination: e.pagination.as_ref().map(pagination),
        timeout_ms: e.timeout_ms.unwrap_or(defaults::TIMEOUT_MS),
        max_response_bytes: e.max_response_bytes.unwrap_or(defaults::MAX_RESPONSE_BYTES),
        retry: Retry {
            statuses: retry
                .statuses
                .unwrap_or_else(|| defaults::RETRY_STATUSES.to_vec()),
            attempts: retry.attempts.unwrap_or(defaults::RETRY_ATTEMPTS),
            backoff_ms: retry.backoff_ms.unwrap_or(defaults::BACKOFF_MS),
            max_retry_after_ms: retry
                .max_retry_after_ms
                .unwrap_or(defaults::MAX_RETRY_AFTER_MS),
        },
        reauth_on: e
            .reauth_on
            .clone()
            .unwrap_or_else(|| defaults::REAUTH_ON.to_vec()),
    }
}

fn pagination(p: &spec_endpoint::Pagination) -> Pagination {
    use spec_endpoint::Pagination as P;
    match p {
        P::Offset(o) => Pagination::Offset {
            limit: o.limit.unwrap_or(defaults::PAGE_SIZE),
            offset_param: o.offset_param.clone().unwrap_or_else(|| "offset".into()),
            limit_param: o.limit_param.clone().unwrap_or_else(|| "limit".into()),
            total: o.total.clone(),
            max_pages: o.max_pages.unwrap_or(defaults::MAX_PAGES),
        },
        P::Page(g) => Pagination::Page {
            size: g.size.unwrap_or(defaults::PAGE_SIZE),
            start: g.start.unwrap_or(1),
            page_param: g.page_param.clone().unwrap_or_else(|| "page".into()),
            size_param: g.size_param.clone().unwrap_or_else(|| "page_size".into()),
            total_pages: g.total_pages.clone(),
            max_pages: g.max_pages.unwrap_or(defaults::MAX_PAGES),
        },
        P::Cursor(c) => Pagination::Cursor {
            cursor: c.cursor.clone(),
            cursor_param: c.cursor_param.clone().unwrap_or_else(|| "cursor".into()),
            max_pages: c.max_pages.unwrap_or(defaults::MAX_PAGES),
        },
        P::LinkHeader(l) => Pagination::LinkHeader {
            max_pages: l.max_pages.unwrap_or(defaults::MAX_PAGES),
        },
    }
}

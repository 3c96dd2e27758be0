//! Every template of a connector, with where it is and what it may reference.

use connector_spec::auth::{Apply, JwtSigning, TokenRequest, TokenResponse};
use connector_spec::{AuthMethod, Body, Connector, Scalar};
use indexmap::IndexMap;
use serde_json::Value;

use crate::yaml::join;

/// Where in the connector a template sits, which decides what it may reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Place<'a> {
    /// A connector variable's default: connector variables only.
    ConnectorVar,
    /// The connector's `base_url`: like an endpoint without inputs or pages.
    Base,
    /// Part of an auth method other than `apply`: its variables and the connector's.
    Auth(&'a str),
    /// An auth method's `apply`: variables and the method's `auth.*` fields.
    Apply(&'a str),
    /// An endpoint: variables and `auth.*` fields common to every method, inputs and pages.
    Endpoint(&'a str),
}

/// What a template's value becomes, which decides how it is escaped and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A URL.
    Url,
    /// The URL of a token, authorization, revocation or discovery endpoint.
    AuthUrl,
    /// A query parameter.
    Query,
    /// A header.
    Header,
    /// A body field or raw body.
    Body,
    /// A JSON body leaf.
    Json,
    /// Anything else: defaults, response mappings, claims.
    Other,
}

/// One template.
#[derive(Debug, Clone)]
pub struct Site<'a> {
    /// JSON pointer of the string.
    pub pointer: String,
    /// The template text.
    pub text: &'a str,
    /// Where it is.
    pub place: Place<'a>,
    /// What it becomes.
    pub role: Role,
}

/// Collects every template of `c`.
pub fn collect(c: &Connector) -> Vec<Site<'_>> {
    let mut sites = Sites { out: Vec::new() };
    for (name, v) in &c.variables {
        if let Some(Scalar::String(s)) = &v.default {
            sites.add(
                format!("/variables/{}/default", esc(name)),
                s,
                Place::ConnectorVar,
                Role::Other,
            );
        }
    }
    if let Some(base) = &c.base_url {
        sites.add("/base_url".into(), base, Place::Base, Role::Url);
    }
    for (name, method) in &c.auth {
        sites.auth(&format!("/auth/{}", esc(name)), name, method);
    }
    for (name, e) in &c.endpoints {
        let at = format!("/endpoints/{}", esc(name));
        let place = Place::Endpoint(name);
        sites.add(format!("{at}/url"), &e.url, place, Role::Url);
        sites.map(&format!("{at}/query"), &e.query, place, Role::Query);
        sites.map(&format!("{at}/headers"), &e.headers, place, Role::Header);
        if let Some(body) = &e.body {
            sites.body(&format!("{at}/body"), body, place);
        }
        for (input, v) in &e.inputs {
            if let Some(Scalar::String(s)) = &v.default {
                sites.add(
                    format!("{at}/inputs/{}/default", esc(input)),
                    s,
                    Place::ConnectorVar,
                    Role::Other,
                );
            }
        }
    }
    sites.out
}

fn esc(s: &str) -> String {
    crate::yaml::escape(s)
}

struct Sites<'a> {
    out: Vec<Site<'a>>,
}

impl<'a> Sites<'a> {
    fn add(&mut self, pointer: String, text: &'a str, place: Place<'a>, role: Role) {
        self.out.push(Site {
            pointer,
            text,
            place,
            role,
        });
    }

    fn opt(&mut self, pointer: String, text: &'a Option<String>, place: Place<'a>, role: Role) {
        if let Some(t) = text {
            self.add(pointer, t, place, role);
        }
    }

    fn map(&mut self, at: &str, map: &'a IndexMap<String, String>, place: Place<'a>, role: Role) {
        for (k, v) in map {
            self.add(join(at, k), v, place, role);
        }
    }

    fn body(&mut self, at: &str, body: &'a Body, place: Place<'a>) {
        if let Some(form) = &body.form {
            self.map(&format!("{at}/form"), form, place, Role::Body);
        }
        if let Some(json) = &body.json {
            self.json(format!("{at}/json"), json, place);
        }
        self.opt(format!("{at}/raw"), &body.raw, place, Role::Body);
    }

    fn json(&mut self, at: String, value: &'a Value, place: Place<'a>) {
        let mut todo = vec![(at, value)];
        while let Some((at, value)) = todo.pop() {
            match value {
                Value::String(s) => self.add(at, s, place, Role::Json),
                Value::Array(items) => {
                    todo.extend(
                        items
                            .iter()
                            .enumerate()
                            .map(|(i, v)| (format!("{at}/{i}"), v)),
                    );
                }
                Value::Object(map) => todo.extend(map.iter().map(|(k, v)| (join(&at, k), v))),
                _ => {}
            }
        }
    }

    fn variables(
        &mut self,
        at: &str,
        vars: &'a IndexMap<String, connector_spec::Variable>,
        place: Place<'a>,
    ) {
        for (name, v) in vars {
            if let Some(Scalar::String(s)) = &v.default {
                self.add(
                    format!("{at}/variables/{}/default", esc(name)),
                    s,
                    place,
                    Role::Other,
                );
            }
        }
    }

    fn apply(&mut self, at: &str, apply: Option<&'a Apply>, name: &'a str) {
        if let Some(apply) = apply {
            self.map(
                &format!("{at}/apply/headers"),
                &apply.headers,
                Place::Apply(name),
                Role::Header,
            );
            self.map(
                &format!("{at}/apply/query"),
                &apply.query,
                Place::Apply(name),
                Role::Query,
            );
        }
    }

    /// The headers, query and body of an auth method's request.
    fn request_tabs(
        &mut self,
        at: &str,
        headers: &'a IndexMap<String, String>,
        query: &'a IndexMap<String, String>,
        body: &'a Option<Body>,
        place: Place<'a>,
    ) {
        self.map(
            &format!("{at}/request/headers"),
            headers,
            place,
            Role::Header,
        );
        self.map(&format!("{at}/request/query"), query, place, Role::Query);
        if let Some(body) = body {
            self.body(&format!("{at}/request/body"), body, place);
        }
    }

    fn token_request(&mut self, at: &str, request: &'a Option<TokenRequest>, place: Place<'a>) {
        if let Some(r) = request {
            self.opt(format!("{at}/request/url"), &r.url, place, Role::AuthUrl);
            self.request_tabs(at, &r.headers, &r.query, &r.body, place);
        }
    }

    fn token_response(&mut self, at: &str, response: &'a Option<TokenResponse>, place: Place<'a>) {
        if let Some(r) = response {
            let at = format!("{at}/response");
            self.opt(format!("{at}/token"), &r.token, place, Role::Other);
            self.opt(
                format!("{at}/token_type"),
                &r.token_type,
                place,
                Role::Other,
            );
            self.opt(
                format!("{at}/expires_in"),
                &r.expires_in,
                place,
                Role::Other,
            );
            self.opt(format!("{at}/scope"), &r.scope, place, Role::Other);
            self.opt(
                format!("{at}/refresh_token"),
                &r.refresh_token,
                place,
                Role::Other,
            );
            self.map(&format!("{at}/fields"), &r.fields, place, Role::Other);
        }
    }

    fn jwt(&mut self, at: String, jwt: &'a Option<JwtSigning>, place: Place<'a>) {
        if let Some(j) = jwt {
            self.opt(format!("{at}/key"), &j.key, place, Role::Other);
            self.opt(
                format!("{at}/service_account"),
                &j.service_account,
                place,
                Role::Other,
            );
            self.opt(format!("{at}/kid"), &j.kid, place, Role::Other);
            self.opt(format!("{at}/issuer"), &j.issuer, place, Role::Other);
            self.opt(format!("{at}/subject"), &j.subject, place, Role::Other);
            self.opt(format!("{at}/audience"), &j.audience, place, Role::Other);
            self.map(&format!("{at}/claims"), &j.claims, place, Role::Other);
        }
    }

    fn auth(&mut self, at: &str, name: &'a str, method: &'a AuthMethod) {
        let place = Place::Auth(name);
        self.variables(at, method.variables(), place);
        self.apply(at, method.apply(), name);
        macro_rules! oauth {
            ($g:expr) => {{
                self.opt(format!("{at}/issuer"), &$g.issuer, place, Role::AuthUrl);
                self.token_request(at, &$g.request, place);
                self.token_response(at, &$g.response, place);
                self.jwt(
                    format!("{at}/client_assertion"),
                    &$g.client_assertion,
                    place,
                );
                self.opt(
                    format!("{at}/revocation_url"),
                    &$g.revocation_url,
                    place,
                    Role::AuthUrl,
                );
                self.opt(format!("{at}/resource"), &$g.resource, place, Role::Other);
                self.opt(format!("{at}/audience"), &$g.audience, place, Role::Other);
                self.map(
                    &format!("{at}/token_params"),
                    &$g.token_params,
                    place,
                    Role::Other,
                );
            }};
        }
        match method {
            AuthMethod::Oauth2ClientCredentials(g)
            | AuthMethod::Oauth2Password(g)
            | AuthMethod::Oauth2RefreshToken(g) => {
                oauth!(g)
            }
            AuthMethod::Oauth2JwtBearer(g) => {
                oauth!(g);
                self.jwt(format!("{at}/assertion"), &g.assertion, place);
            }
            AuthMethod::Oauth2AuthorizationCode(g) => {
                oauth!(g);
                if let Some(a) = &g.authorize {
                    self.opt(format!("{at}/authorize/url"), &a.url, place, Role::AuthUrl);
                    self.map(
                        &format!("{at}/authorize/params"),
                        &a.params,
                        place,
                        Role::Query,
                    );
                }
            }
            AuthMethod::Custom(c) => {
                let r = &c.request;
                self.add(format!("{at}/request/url"), &r.url, place, Role::Url);
                self.request_tabs(at, &r.headers, &r.query, &r.body, place);
                if let Some(resp) = &c.response {
                    self.map(
                        &format!("{at}/response/fields"),
                        &resp.fields,
                        place,
                        Role::Other,
                    );
                }
            }
            AuthMethod::Basic(b) => {
                self.opt(format!("{at}/username"), &b.username, place, Role::Other);
                self.opt(format!("{at}/password"), &b.password, place, Role::Other);
            }
            AuthMethod::Bearer(b) => {
                self.opt(format!("{at}/token"), &b.token, place, Role::Header);
            }
            AuthMethod::ApiKey(k) => {
                let role = match k.location {
                    Some(connector_spec::auth::KeyLocation::Query) => Role::Other,
                    _ => Role::Header,
                };
                self.opt(format!("{at}/value"), &k.value, place, role);
            }
        }
    }
}

/// The `auth.*` fields an auth method exposes.
pub fn auth_fields(method: &AuthMethod) -> Vec<String> {
    let standard = || {
        [
            "access_token",
            "token_type",
            "expires_in",
            "scope",
            "refresh_token",
        ]
        .map(String::from)
    };
    let with = |extra: &Option<TokenResponse>| {
        let mut v: Vec<String> = standard().to_vec();
        if let Some(r) = extra {
            v.extend(
                r.fields
                    .keys()
                    .filter(|k| !v.contains(k))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
        }
        v
    };
    match method {
        AuthMethod::Oauth2ClientCredentials(g)
        | AuthMethod::Oauth2Password(g)
        | AuthMethod::Oauth2RefreshToken(g) => with(&g.response),
        AuthMethod::Oauth2JwtBearer(g) => with(&g.response),
        AuthMethod::Oauth2AuthorizationCode(g) => with(&g.response),
        AuthMethod::Custom(c) => c
            .response
            .as_ref()
            .map(|r| r.fields.keys().cloned().collect())
            .unwrap_or_default(),
        AuthMethod::Basic(_) | AuthMethod::Bearer(_) | AuthMethod::ApiKey(_) => Vec::new(),
    }
}

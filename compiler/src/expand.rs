//! Sugar: fills in the defaults of typed auth methods and endpoints, producing the fully
//! explicit connector that `connector compile --expand` prints and that lowering reads.
//!
//! Anything the author wrote wins over a default. A variable the author writes with the name of
//! a standard variable replaces it in place.

use indexmap::IndexMap;

use connector_spec::auth::{
    ApiKeyAuth, Apply, AuthorizationCodeGrant, Authorize, BasicAuth, BearerAuth, ClientAuth,
    CustomAuth, CustomResponse, JwtAlgorithm, JwtBearerGrant, JwtSigning, KeyLocation, OAuth2Grant,
    Pkce, ScopeCheck, TokenRequest, TokenResponse,
};
use connector_spec::endpoint::{
    CursorPagination, Endpoint, LinkHeaderPagination, Method, OffsetPagination, PagePagination,
    Pagination, Retry,
};
use connector_spec::{AuthMethod, Body, Connector, Scalar, ValueType, Variable};

/// Defaults written into every expanded connector.
pub mod defaults {
    /// Endpoint timeout.
    pub const TIMEOUT_MS: u64 = 5000;
    /// Endpoint response size cap: 10 MiB.
    pub const MAX_RESPONSE_BYTES: u64 = 10 * 1024 * 1024;
    /// Statuses retried.
    pub const RETRY_STATUSES: [u16; 4] = [429, 502, 503, 504];
    /// Attempts in all.
    pub const RETRY_ATTEMPTS: u32 = 3;
    /// First backoff.
    pub const BACKOFF_MS: u64 = 200;
    /// Longest `Retry-After` honoured.
    pub const MAX_RETRY_AFTER_MS: u64 = 30_000;
    /// Statuses that trigger re-authentication.
    pub const REAUTH_ON: [u16; 1] = [401];
    /// Token lifetime when the response has none.
    pub const LIFETIME_S: u64 = 3600;
    /// Lifetime of a signed assertion.
    pub const ASSERTION_LIFETIME_S: u64 = 300;
    /// Records per page.
    pub const PAGE_SIZE: u32 = 100;
    /// Most pages.
    pub const MAX_PAGES: u32 = 1000;
    /// Redirect URI of the authorization code grant's local callback.
    pub const REDIRECT_URI: &str = "http://127.0.0.1:8400/callback";
}

/// The grant of an OAuth 2 method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    ClientCredentials,
    Password,
    RefreshToken,
    JwtBearer,
    AuthorizationCode,
}

impl Grant {
    fn grant_type(self) -> &'static str {
        match self {
            Grant::ClientCredentials => "client_credentials",
            Grant::Password => "password",
            Grant::RefreshToken => "refresh_token",
            Grant::JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer",
            Grant::AuthorizationCode => "authorization_code",
        }
    }
}

/// Returns `connector` with every default written out.
pub fn expand(connector: &Connector) -> Connector {
    let mut out = connector.clone();
    let shared: Vec<String> = out.variables.keys().cloned().collect();
    for (name, method) in out.auth.iter_mut() {
        expand_auth(method);
        // A connector variable of the same name stands in for a standard one.
        let written = connector.auth[name].variables();
        method
            .variables_mut()
            .retain(|name, _| !shared.contains(name) || written.contains_key(name));
    }
    for v in out.variables.values_mut() {
        v.kind.get_or_insert(ValueType::String);
    }
    for endpoint in out.endpoints.values_mut() {
        expand_endpoint(endpoint);
    }
    out
}

fn var(label: &str, default: Option<&str>, required: bool, secret: bool) -> Variable {
    Variable {
        label: Some(label.to_owned()),
        default: default.map(|d| Scalar::String(d.to_owned())),
        required,
        secret,
        kind: Some(ValueType::String),
        ..Variable::default()
    }
}

/// Standard variables first (replaced in place by the author's of the same name), then the
/// author's others, every variable with an explicit type.
fn merge_variables(
    standard: Vec<(&str, Variable)>,
    written: &IndexMap<String, Variable>,
) -> IndexMap<String, Variable> {
    let mut out: IndexMap<String, Variable> = standard
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    for (name, v) in written {
        out.insert(name.clone(), v.clone());
    }
    for v in out.values_mut() {
        v.kind.get_or_insert(ValueType::String);
    }
    out
}

fn tpl(name: &str) -> String {
    format!("{{{{ vars.{name} }}}}")
}

fn expand_auth(method: &mut AuthMethod) {
    match method {
        AuthMethod::Oauth2ClientCredentials(g) => expand_grant(g, Grant::ClientCredentials),
        AuthMethod::Oauth2Password(g) => expand_grant(g, Grant::Password),
        AuthMethod::Oauth2RefreshToken(g) => expand_grant(g, Grant::RefreshToken),
        AuthMethod::Oauth2JwtBearer(g) => expand_jwt_bearer(g),
        AuthMethod::Oauth2AuthorizationCode(g) => expand_authorization_code(g),
        AuthMethod::Custom(c) => expand_custom(c),
        AuthMethod::Basic(b) => expand_basic(b),
        AuthMethod::Bearer(b) => expand_bearer(b),
        AuthMethod::ApiKey(k) => expand_api_key(k),
    }
}

/// The parts every OAuth 2 method shares, borrowed from whichever struct holds them.
struct OAuthParts<'a> {
    variables: &'a mut IndexMap<String, Variable>,
    request: &'a mut Option<TokenRequest>,
    response: &'a mut Option<TokenResponse>,
    apply: &'a mut Option<Apply>,
    client_assertion: &'a mut Option<JwtSigning>,
    scope_check: &'a mut Option<ScopeCheck>,
    default_lifetime_s: &'a mut Option<u64>,
}

macro_rules! parts {
    ($g:expr) => {
        OAuthParts {
            variables: &mut $g.variables,
            request: &mut $g.request,
            response: &mut $g.response,
            apply: &mut $g.apply,
            client_assertion: &mut $g.client_assertion,
            scope_check: &mut $g.scope_check,
            default_lifetime_s: &mut $g.default_lifetime_s,
        }
    };
}

fn expand_grant(g: &mut OAuth2Grant, grant: Grant) {
    expand_oauth(parts!(g), grant, false);
}

fn expand_jwt_bearer(g: &mut JwtBearerGrant) {
    let service_account = g
        .assertion
        .as_ref()
        .is_some_and(|a| a.service_account.is_some());
    expand_oauth(parts!(g), Grant::JwtBearer, service_account);
    let assertion = g.assertion.get_or_insert_with(JwtSigning::default);
    if assertion.service_account.is_none() {
        assertion.key.get_or_insert_with(|| tpl("private_key"));
        assertion.issuer.get_or_insert_with(|| tpl("issuer"));
    }
    assertion.subject.get_or_insert_with(|| tpl("subject"));
    if !assertion.claims.contains_key("scope") {
        assertion.claims.insert("scope".into(), tpl("scope"));
    }
    fill_jwt(assertion);
}

fn expand_authorization_code(g: &mut AuthorizationCodeGrant) {
    expand_oauth(parts!(g), Grant::AuthorizationCode, false);
    let authorize = g.authorize.get_or_insert_with(Authorize::default);
    authorize.pkce.get_or_insert(Pkce::S256);
    if !authorize.params.contains_key("scope") {
        authorize.params.insert("scope".into(), tpl("scope"));
    }
    g.token_sharing
        .get_or_insert(connector_spec::auth::TokenSharing::PerInstance);
}

fn fill_jwt(jwt: &mut JwtSigning) {
    jwt.algorithm.get_or_insert(JwtAlgorithm::RS256);
    jwt.lifetime_s.get_or_insert(defaults::ASSERTION_LIFETIME_S);
}

fn expand_oauth(p: OAuthParts<'_>, grant: Grant, service_account: bool) {
    let default_client_auth = if grant == Grant::JwtBearer {
        ClientAuth::None
    } else {
        ClientAuth::Basic
    };
    let request = p.request.get_or_insert_with(TokenRequest::default);
    let client_auth = *request.client_auth.get_or_insert(default_client_auth);
    request.method.get_or_insert(Method::Post);

    let mut standard = vec![
        ("scope", var("Scope", Some(""), false, false)),
        (
            "grant_type",
            var("Grant type", Some(grant.grant_type()), false, false),
        ),
    ];
    let needs_client_id = grant != Grant::JwtBearer || client_auth != ClientAuth::None;
    if needs_client_id {
        standard.push(("client_id", var("Client ID", None, true, false)));
    }
    if matches!(
        client_auth,
        ClientAuth::Basic | ClientAuth::BasicRaw | ClientAuth::Body
    ) {
        standard.push(("client_secret", var("Client secret", None, true, true)));
    }
    match grant {
        Grant::Password => {
            standard.push(("username", var("Username", None, true, false)));
            standard.push(("password", var("Password", None, true, true)));
        }
        Grant::RefreshToken => {
            standard.push(("refresh_token", var("Refresh token", None, true, true)))
        }
        Grant::JwtBearer => {
            if !service_account {
                standard.push((
                    "issuer",
                    var("Issuer (service account email)", None, true, false),
                ));
                standard.push(("private_key", var("Private key (PEM)", None, true, true)));
            }
            standard.push((
                "subject",
                var("Subject (user to impersonate)", Some(""), false, false),
            ));
        }
        Grant::AuthorizationCode => standard.push((
            "redirect_uri",
            var("Redirect URI", Some(defaults::REDIRECT_URI), false, false),
        )),
        Grant::ClientCredentials => {}
    }
    if client_auth == ClientAuth::PrivateKeyJwt {
        standard.push(("private_key", var("Private key (PEM)", None, true, true)));
    }
    standard.push((
        "token_key",
        var(
            "Response authentication token key",
            Some("access_token"),
            false,
            false,
        ),
    ));
    *p.variables = merge_variables(standard, p.variables);

    if !request
        .headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("accept"))
    {
        request
            .headers
            .insert("Accept".into(), "application/json".into());
    }
    if request.body.is_none() {
        let mut form = IndexMap::new();
        form.insert("grant_type".to_owned(), tpl("grant_type"));
        match grant {
            Grant::Password => {
                form.insert("username".into(), tpl("username"));
                form.insert("password".into(), tpl("password"));
            }
            Grant::RefreshToken => {
                form.insert("refresh_token".into(), tpl("refresh_token"));
            }
            Grant::AuthorizationCode => {
                form.insert("redirect_uri".into(), tpl("redirect_uri"));
            }
            _ => {}
        }
        if grant != Grant::AuthorizationCode {
            form.insert("scope".into(), tpl("scope"));
        }
        match client_auth {
            ClientAuth::Body => {
                form.insert("client_id".into(), tpl("client_id"));
                form.insert("client_secret".into(), tpl("client_secret"));
            }
            ClientAuth::None | ClientAuth::PrivateKeyJwt if needs_client_id => {
                form.insert("client_id".into(), tpl("client_id"));
            }
            _ => {}
        }
        request.body = Some(Body {
            form: Some(form),
            ..Body::default()
        });
    }

    let response = p.response.get_or_insert_with(TokenResponse::default);
    response.token.get_or_insert_with(|| tpl("token_key"));
    response
        .token_type
        .get_or_insert_with(|| "token_type".into());
    response
        .expires_in
        .get_or_insert_with(|| "expires_in".into());
    response.scope.get_or_insert_with(|| "scope".into());
    response
        .refresh_token
        .get_or_insert_with(|| "refresh_token".into());

    if p.apply.is_none() {
        let mut headers = IndexMap::new();
        headers.insert(
            "Authorization".to_owned(),
            "Bearer {{ auth.access_token }}".to_owned(),
        );
        *p.apply = Some(Apply {
            headers,
            query: IndexMap::new(),
        });
    }
    if client_auth == ClientAuth::PrivateKeyJwt {
        let jwt = p.client_assertion.get_or_insert_with(JwtSigning::default);
        jwt.key.get_or_insert_with(|| tpl("private_key"));
        fill_jwt(jwt);
    }
    p.scope_check.get_or_insert(ScopeCheck::Warn);
    p.default_lifetime_s.get_or_insert(defaults::LIFETIME_S);
}

fn expand_custom(c: &mut CustomAuth) {
    c.variables = merge_variables(Vec::new(), &c.variables);
    c.request.method.get_or_insert(Method::Post);
    let response = c.response.get_or_insert_with(CustomResponse::default);
    if response.fields.is_empty() {
        for name in ["access_token", "token_type", "expires_in"] {
            response.fields.insert(name.into(), name.into());
        }
    }
    c.default_lifetime_s.get_or_insert(defaults::LIFETIME_S);
}

fn expand_basic(b: &mut BasicAuth) {
    let standard = vec![
        ("username", var("Username", None, true, false)),
        ("password", var("Password", None, true, true)),
    ];
    b.variables = merge_variables(standard, &b.variables);
    b.username.get_or_insert_with(|| tpl("username"));
    b.password.get_or_insert_with(|| tpl("password"));
}

fn expand_bearer(b: &mut BearerAuth) {
    b.variables = merge_variables(
        vec![("token", var("Token", None, true, true))],
        &b.variables,
    );
    b.token.get_or_insert_with(|| tpl("token"));
}

fn expand_api_key(k: &mut ApiKeyAuth) {
    k.variables = merge_variables(
        vec![("api_key", var("API key", None, true, true))],
        &k.variables,
    );
    let location = *k.location.get_or_insert(KeyLocation::Header);
    k.name.get_or_insert_with(|| match location {
        KeyLocation::Header => "X-API-Key".into(),
        KeyLocation::Query => "api_key".into(),
    });
    k.value.get_or_insert_with(|| tpl("api_key"));
}

fn expand_endpoint(e: &mut Endpoint) {
    e.method.get_or_insert(Method::Get);
    for input in e.inputs.values_mut() {
        input.kind.get_or_insert(ValueType::String);
    }
    e.timeout_ms.get_or_insert(defaults::TIMEOUT_MS);
    e.max_response_bytes
        .get_or_insert(defaults::MAX_RESPONSE_BYTES);
    let retry = e.retry.get_or_insert_with(Retry::default);
    retry
        .statuses
        .get_or_insert_with(|| defaults::RETRY_STATUSES.to_vec());
    retry.attempts.get_or_insert(defaults::RETRY_ATTEMPTS);
    retry.backoff_ms.get_or_insert(defaults::BACKOFF_MS);
    retry
        .max_retry_after_ms
        .get_or_insert(defaults::MAX_RETRY_AFTER_MS);
    e.reauth_on
        .get_or_insert_with(|| defaults::REAUTH_ON.to_vec());
    match &mut e.pagination {
        Some(Pagination::Offset(OffsetPagination {
            limit,
            offset_param,
            limit_param,
            max_pages,
            ..
        })) => {
            limit.get_or_insert(defaults::PAGE_SIZE);
            offset_param.get_or_insert_with(|| "offset".into());
            limit_param.get_or_insert_with(|| "limit".into());
            max_pages.get_or_insert(defaults::MAX_PAGES);
        }
        Some(Pagination::Page(PagePagination {
            size,
            start,
            page_param,
            size_param,
            max_pages,
            ..
        })) => {
            size.get_or_insert(defaults::PAGE_SIZE);
            start.get_or_insert(1);
            page_param.get_or_insert_with(|| "page".into());
            size_param.get_or_insert_with(|| "page_size".into());
            max_pages.get_or_insert(defaults::MAX_PAGES);
        }
        Some(Pagination::Cursor(CursorPagination {
            cursor_param,
            max_pages,
            ..
        })) => {
            cursor_param.get_or_insert_with(|| "cursor".into());
            max_pages.get_or_insert(defaults::MAX_PAGES);
        }
        Some(Pagination::LinkHeader(LinkHeaderPagination { max_pages })) => {
            max_pages.get_or_insert(defaults::MAX_PAGES);
        }
        None => {}
    }
}

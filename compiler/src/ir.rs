//! The IR: a connector with every default filled in, every template parsed and every
//! reference resolved. The runtime consumes it without checking anything again.
//!
//! It serializes to JSON (`connector compile`). A template is a list of parts: a string is
//! literal text, `{"vars": "region"}` is a reference. In a URL, a `vars` reference that opens
//! the template is the base and is inserted as it is; every other reference is escaped for
//! its place (path segment, query, form, JSON, header) by the runtime.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use connector_spec::auth::{ClientAuth, JwtAlgorithm, KeyLocation, ScopeCheck, TokenSharing};
pub use connector_spec::connector::{Scalar, ValueType};
pub use connector_spec::endpoint::Method;

use crate::template::Namespace;

/// Version of the IR format; bumped on every incompatible change.
pub const IR_VERSION: u32 = 1;

/// A compiled connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ir {
    /// [`IR_VERSION`] at the time of compilation.
    pub ir_version: u32,
    /// The connector's id.
    pub connector: String,
    /// Human-readable name.
    pub name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Connector variables, in an order where every default comes after the variables it uses.
    pub variables: Vec<Var>,
    /// Auth methods by name.
    pub auth: IndexMap<String, Auth>,
    /// Endpoints by name.
    pub endpoints: IndexMap<String, Endpoint>,
}

/// A variable or input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Var {
    /// Name, as in `vars.NAME` or `input.NAME`.
    pub name: String,
    /// Label shown to users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Type of the value.
    #[serde(rename = "type")]
    pub kind: ValueType,
    /// Default value: a constant, or a template over other variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Default>,
    /// A value must be given.
    pub required: bool,
    /// The value is a credential.
    pub secret: bool,
    /// The only values allowed.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<Scalar>>,
}

/// The default of a variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Default {
    /// A constant.
    Value(Scalar),
    /// A template over other variables.
    Template(Template),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Template(pub Vec<Part>);

impl Template {
    /// A template of literal text only.
    pub fn literal(text: &str) -> Self {
        if text.is_empty() {
            Template(Vec::new())
        } else {
            Template(vec![Part::Text(text.to_owned())])
        }
    }

    /// Whether the template is exactly one reference.
    pub fn as_single_ref(&self) -> Option<&Ref> {
        match self.0.as_slice() {
            [Part::Ref(r)] => Some(r),
            _ => None,
        }
    }

    /// The references of the template.
    pub fn refs(&self) -> impl Iterator<Item = &Ref> {
        self.0.iter().filter_map(|p| match p {
            Part::Ref(r) => Some(r),
            Part::Text(_) => None,
        })
    }
}

/// A part of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// A reference.
    Ref(Ref),
}

/// A resolved reference: `{"vars": "region"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ref {
    /// An instance value (connector or auth method variable).
    Vars(String),
    /// A field of the auth response.
    Auth(String),
    /// An endpoint input.
    Input(String),
    /// Pagination state.
    Page(String),
}

impl Ref {
    /// The namespace and the name.
    pub fn parts(&self) -> (Namespace, &str) {
        match self {
            Ref::Vars(n) => (Namespace::Vars, n),
            Ref::Auth(n) => (Namespace::Auth, n),
            Ref::Input(n) => (Namespace::Input, n),
            Ref::Page(n) => (Namespace::Page, n),
        }
    }
}

impl std::fmt::Display for Ref {
    /// `vars.NAME`, `auth.NAME`, `input.NAME` or `page.NAME`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ns, name) = match self {
            Ref::Vars(n) => ("vars", n),
            Ref::Auth(n) => ("auth", n),
            Ref::Input(n) => ("input", n),
            Ref::Page(n) => ("page", n),
        };
        write!(f, "{ns}.{name}")
    }
}

/// An HTTP request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// URL, absolute once rendered.
    pub url: Template,
    /// Query parameters; one that renders empty is left out.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub query: IndexMap<String, Template>,
    /// Headers.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, Template>,
    /// Body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
}

/// A request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// `application/x-www-form-urlencoded`; a field that renders empty is left out.
    Form(IndexMap<String, Template>),
    /// `application/json`.
    Json(JsonTemplate),
    /// Sent as it renders.
    Raw {
        /// The body.
        template: Template,
        /// Its content type.
        content_type: String,
    },
}

/// A JSON document whose strings are templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonTemplate {
    /// A constant that is not a string.
    Value(serde_json::Value),
    /// A string template.
    Template(Template),
    /// Exactly one reference: the value keeps its JSON type.
    Ref(Ref),
    /// A list.
    Array(Vec<JsonTemplate>),
    /// An object.
    Object(IndexMap<String, JsonTemplate>),
}

/// How credentials are added to endpoint requests.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Apply {
    /// Headers.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, Template>,
    /// Query parameters.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub query: IndexMap<String, Template>,
}

/// An auth method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Auth {
    /// The `type` written in the connector.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Label shown to users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Variables of this method, ordered so that defaults come after what they use.
    pub variables: Vec<Var>,
    /// Names of the fields the method exposes as `auth.NAME`.
    pub fields: Vec<String>,
    /// How the method obtains credentials.
    pub flow: Flow,
    /// How credentials are added to endpoint requests.
    pub apply: Apply,
}

/// How an auth method obtains credentials.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Flow {
    /// An OAuth 2 token request.
    Oauth2(Box<OAuth2>),
    /// Any request whose response fields become `auth.*`.
    Custom(Box<Custom>),
    /// HTTP Basic from a user name and password.
    Basic {
        /// The user name.
        username: Template,
        /// The password.
        password: Template,
    },
    /// Nothing to obtain: `apply` uses variables only (bearer token, API key).
    Static,
}

/// The OAuth 2 grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 6749 §4.3.
    Password,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 7523 §2.1.
    JwtBearer,
    /// RFC 6749 §4.1 with RFC 7636.
    AuthorizationCode,
}

/// An OAuth 2 method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuth2 {
    /// The grant.
    pub grant: Grant,
    /// The token request. Its URL is empty when the token URL comes from `issuer` discovery.
    pub request: Request,
    /// RFC 8414 / OpenID issuer whose metadata gives the token URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Template>,
    /// How the client authenticates.
    pub client_auth: ClientAuth,
    /// The client id (for Basic client auth, assertions and the cache key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Template>,
    /// The client secret (for Basic client auth).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Template>,
    /// The requested scope, compared with the granted one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Template>,
    /// Where each field is in the token response: a key or a JSON pointer each.
    pub response: TokenFields,
    /// What to do when fewer scopes are granted than requested.
    pub scope_check: ScopeCheck,
    /// Lifetime assumed when the response has no `expires_in`, in seconds.
    pub default_lifetime_s: u64,
    /// Refresh margin in seconds; `None` means max(60 s, 10 % of the lifetime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_margin_s: Option<u64>,
    /// The JWT bearer grant's assertion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<Jwt>,
    /// The `private_key_jwt` client assertion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_assertion: Option<Jwt>,
    /// The authorization step of the authorization code grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize: Option<Authorize>,
    /// Who shares authorization code tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sharing: Option<TokenSharing>,
    /// RFC 7009 revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_url: Option<Template>,
    /// Parameters added to every token request: `resource` (RFC 8707), `audience` and the
    /// `token_params`. Those that render empty are left out.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Template>,
}

/// Where the fields of a token response are: a key or a JSON pointer each (templates).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenFields {
    /// Exposed as `auth.access_token`.
    pub access_token: Template,
    /// Exposed as `auth.token_type`.
    pub token_type: Template,
    /// Exposed as `auth.expires_in`.
    pub expires_in: Template,
    /// Exposed as `auth.scope`.
    pub scope: Template,
    /// Exposed as `auth.refresh_token`.
    pub refresh_token: Template,
    /// More fields, exposed under their names.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub fields: IndexMap<String, Template>,
}

/// A JWT the client signs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwt {
    /// PEM private key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Template>,
    /// Google service-account JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<Template>,
    /// Algorithm.
    pub algorithm: JwtAlgorithm,
    /// `kid` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<Template>,
    /// `iss`; the client id when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<Template>,
    /// `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Template>,
    /// `aud`; the token URL when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<Template>,
    /// Seconds of validity.
    pub lifetime_s: u64,
    /// More claims.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub claims: IndexMap<String, Template>,
}

/// The browser step of the authorization code grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Authorize {
    /// Authorization endpoint.
    pub url: Template,
    /// More query parameters.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Template>,
    /// Whether PKCE S256 is used.
    pub pkce: bool,
}

/// A `custom` auth method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Custom {
    /// The request.
    pub request: Request,
    /// Fields of the response, by name: a key or a JSON pointer each.
    pub fields: IndexMap<String, Template>,
    /// Lifetime assumed when there is no `expires_in` field, in seconds.
    pub default_lifetime_s: u64,
}

/// An endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The request, with the connector's base URL joined.
    pub request: Request,
    /// Inputs.
    pub inputs: Vec<Var>,
    /// JSON pointer to the records; the whole response is one record when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
    /// Pagination.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
    /// Timeout of each request.
    pub timeout_ms: u64,
    /// Largest response body accepted.
    pub max_response_bytes: u64,
    /// Retry policy.
    pub retry: Retry,
    /// Statuses that trigger one re-authentication and retry.
    pub reauth_on: Vec<u16>,
}

/// Pagination, with every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Pagination {
    /// Offset and limit.
    Offset {
        /// Records per page.
        limit: u32,
        /// Query parameter of the offset.
        offset_param: String,
        /// Query parameter of the limit.
        limit_param: String,
        /// JSON pointer to the total.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<String>,
        /// Most pages.
        max_pages: u32,
    },
    /// Page number and size.
    Page {
        /// Records per page.
        size: u32,
        /// First page number.
        start: u32,
        /// Query parameter of the page number.
        page_param: String,
        /// Query parameter of the page size.
        size_param: String,
        /// JSON pointer to the page count.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total_pages: Option<String>,
        /// Most pages.
        max_pages: u32,
    },
    /// A cursor from the response.
    Cursor {
        /// JSON pointer to the next cursor.
        cursor: String,
        /// Query parameter of the cursor.
        cursor_param: String,
        /// Most pages.
        max_pages: u32,
    },
    /// RFC 8288 `rel="next"`.
    LinkHeader {
        /// Most pages.
        max_pages: u32,
    },
}

/// Retry policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retry {
    /// Statuses retried.
    pub statuses: Vec<u16>,
    /// Attempts in all.
    pub attempts: u32,
    /// First backoff.
    pub backoff_ms: u64,
    /// Longest `Retry-After` honoured.
    pub max_retry_after_ms: u64,
}

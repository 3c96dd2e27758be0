//! Auth methods: how an instance proves who it is.
//!
//! Every method is written as a map with a `type`. The typed OAuth 2 methods need little more
//! than their token URL: the compiler fills in the standard variables, token request, response
//! mapping and `Authorization: Bearer` header, and anything written explicitly overrides those
//! defaults (`connector compile --expand` shows the result).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::connector::Variable;
use crate::endpoint::{Body, Method};

/// An auth method. The `type` decides which other keys are allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuthMethod {
    /// OAuth 2 client credentials grant (RFC 6749 §4.4): the application authenticates as
    /// itself. Needs only `request.url`.
    Oauth2ClientCredentials(OAuth2Grant),
    /// OAuth 2 resource owner password grant (RFC 6749 §4.3).
    Oauth2Password(OAuth2Grant),
    /// OAuth 2 refresh token grant (RFC 6749 §6): exchanges a stored refresh token.
    Oauth2RefreshToken(OAuth2Grant),
    /// OAuth 2 JWT bearer grant (RFC 7523 §2.1), e.g. Google service accounts.
    Oauth2JwtBearer(JwtBearerGrant),
    /// OAuth 2 authorization code grant with PKCE (RFC 6749 §4.1, RFC 7636).
    Oauth2AuthorizationCode(AuthorizationCodeGrant),
    /// Any request whose response fields become `auth.*` (Genesys' "User Defined (OAuth)").
    Custom(CustomAuth),
    /// HTTP Basic authentication (RFC 7617) with a user name and password.
    Basic(BasicAuth),
    /// A static bearer token.
    Bearer(BearerAuth),
    /// An API key sent in a header or a query parameter.
    ApiKey(ApiKeyAuth),
}

impl AuthMethod {
    /// The `type` written in connector files.
    pub fn type_name(&self) -> &'static str {
        match self {
            AuthMethod::Oauth2ClientCredentials(_) => "oauth2_client_credentials",
            AuthMethod::Oauth2Password(_) => "oauth2_password",
            AuthMethod::Oauth2RefreshToken(_) => "oauth2_refresh_token",
            AuthMethod::Oauth2JwtBearer(_) => "oauth2_jwt_bearer",
            AuthMethod::Oauth2AuthorizationCode(_) => "oauth2_authorization_code",
            AuthMethod::Custom(_) => "custom",
            AuthMethod::Basic(_) => "basic",
            AuthMethod::Bearer(_) => "bearer",
            AuthMethod::ApiKey(_) => "api_key",
        }
    }

    /// The variables of the method.
    pub fn variables(&self) -> &IndexMap<String, Variable> {
        match self {
            AuthMethod::Oauth2ClientCredentials(g)
            | AuthMethod::Oauth2Password(g)
            | AuthMethod::Oauth2RefreshToken(g) => &g.variables,
            AuthMethod::Oauth2JwtBearer(g) => &g.variables,
            AuthMethod::Oauth2AuthorizationCode(g) => &g.variables,
            AuthMethod::Custom(c) => &c.variables,
            AuthMethod::Basic(b) => &b.variables,
            AuthMethod::Bearer(b) => &b.variables,
            AuthMethod::ApiKey(k) => &k.variables,
        }
    }

    /// The variables of the method, to change.
    pub fn variables_mut(&mut self) -> &mut IndexMap<String, Variable> {
        match self {
            AuthMethod::Oauth2ClientCredentials(g)
            | AuthMethod::Oauth2Password(g)
            | AuthMethod::Oauth2RefreshToken(g) => &mut g.variables,
            AuthMethod::Oauth2JwtBearer(g) => &mut g.variables,
            AuthMethod::Oauth2AuthorizationCode(g) => &mut g.variables,
            AuthMethod::Custom(c) => &mut c.variables,
            AuthMethod::Basic(b) => &mut b.variables,
            AuthMethod::Bearer(b) => &mut b.variables,
            AuthMethod::ApiKey(k) => &mut k.variables,
        }
    }

    /// The token request of an OAuth 2 method, if written (`None` for other types).
    pub fn token_request(&self) -> Option<&TokenRequest> {
        match self {
            AuthMethod::Oauth2ClientCredentials(g)
            | AuthMethod::Oauth2Password(g)
            | AuthMethod::Oauth2RefreshToken(g) => g.request.as_ref(),
            AuthMethod::Oauth2JwtBearer(g) => g.request.as_ref(),
            AuthMethod::Oauth2AuthorizationCode(g) => g.request.as_ref(),
            _ => None,
        }
    }

    /// How the method applies credentials to endpoint requests, if written (`None` for the
    /// types whose `apply` is derived: `basic`, `bearer`, `api_key`).
    pub fn apply(&self) -> Option<&Apply> {
        match self {
            AuthMethod::Oauth2ClientCredentials(g)
            | AuthMethod::Oauth2Password(g)
            | AuthMethod::Oauth2RefreshToken(g) => g.apply.as_ref(),
            AuthMethod::Oauth2JwtBearer(g) => g.apply.as_ref(),
            AuthMethod::Oauth2AuthorizationCode(g) => g.apply.as_ref(),
            AuthMethod::Custom(c) => Some(&c.apply),
            _ => None,
        }
    }

    /// Every `type` name, in the order of the enum.
    pub const TYPE_NAMES: [&'static str; 9] = [
        "oauth2_client_credentials",
        "oauth2_password",
        "oauth2_refresh_token",
        "oauth2_jwt_bearer",
        "oauth2_authorization_code",
        "custom",
        "basic",
        "bearer",
        "api_key",
    ];
}

macro_rules! oauth2_method {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* pub $field:ident : $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Label shown to users when they pick an auth method.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub label: Option<String>,
            /// Help text for this auth method.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub description: Option<String>,
            /// Variables of this auth method, shown to users when they add an instance and
            /// usable as `vars.NAME`. The standard variables of the grant are added for you;
            /// a variable written here replaces the standard one of the same name.
            #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
            pub variables: IndexMap<String, Variable>,
            /// Authorization server issuer URL; its RFC 8414 / OpenID discovery metadata
            /// supplies the token URL when `request.url` is not given.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub issuer: Option<String>,
            /// The token request: its URL, headers and body tabs.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub request: Option<TokenRequest>,
            /// Where the token and its lifetime are found in the token response.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub response: Option<TokenResponse>,
            /// How the token is applied to endpoint requests. Defaults to
            /// `Authorization: Bearer {{ auth.access_token }}`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub apply: Option<Apply>,
            /// Signing key and claims of the client assertion, for `client_auth: private_key_jwt`
            /// (RFC 7523 §2.2).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub client_assertion: Option<JwtSigning>,
            /// RFC 7009 token revocation endpoint (`connector token revoke`).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub revocation_url: Option<String>,
            /// RFC 8707 resource indicator (a template): the API the token is for, sent as
            /// `resource` in the token request and the authorization request. Left out when it
            /// renders empty.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub resource: Option<String>,
            /// The `audience` parameter some servers (Auth0, Okta) want instead of `resource`
            /// (a template), sent like `resource`.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub audience: Option<String>,
            /// More parameters of every token request (templates), whatever the grant; a
            /// parameter that renders empty is left out.
            #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
            pub token_params: IndexMap<String, String>,
            /// What to do when the server grants fewer scopes than requested: `warn` (the
            /// default) or `strict` (an error).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub scope_check: Option<ScopeCheck>,
            /// Lifetime assumed, in seconds, when the token response has no `expires_in`.
            /// Defaults to 3600.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            #[schemars(range(min = 1))]
            pub default_lifetime_s: Option<u64>,
            /// Refresh this many seconds before the token expires. Defaults to the larger of
            /// 60 s and 10 % of the token's lifetime.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub refresh_margin_s: Option<u64>,
            $($(#[$fdoc])* pub $field: $ty,)*
        }
    };
}

oauth2_method!(
    /// An OAuth 2 grant whose token request is a single form POST (client credentials,
    /// password, refresh token).
    OAuth2Grant {}
);

oauth2_method!(
    /// The OAuth 2 JWT bearer grant (RFC 7523 §2.1): a signed assertion is exchanged for a
    /// token.
    JwtBearerGrant {
        /// The assertion the client signs and sends as `assertion`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub assertion: Option<JwtSigning>,
    }
);

oauth2_method!(
    /// The OAuth 2 authorization code grant (RFC 6749 §4.1) with PKCE (RFC 7636): a user
    /// signs in once in a browser, and the refresh token is stored.
    AuthorizationCodeGrant {
        /// The authorization step in the user's browser.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub authorize: Option<Authorize>,
        /// Whether tokens belong to each instance (`per_instance`, "user-specific") or are
        /// shared by all instances of the connector (`shared`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub token_sharing: Option<TokenSharing>,
    }
);

/// The token request of an OAuth 2 method.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// Token endpoint URL (a template), e.g. `"https://login.{{ vars.region }}/oauth/token"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// HTTP method. Defaults to `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// How the client authenticates to the token endpoint. Defaults to `basic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// Headers of the token request (templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// Query parameters of the token request (templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub query: IndexMap<String, String>,
    /// Body of the token request. Defaults to the grant's standard form fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
}

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret each form-urlencoded first (RFC 6749 §2.3.1).
    Basic,
    /// HTTP Basic with the id and secret as they are, for servers that break RFC 6749 §2.3.1.
    BasicRaw,
    /// `client_id` and `client_secret` in the form body.
    Body,
    /// A signed JWT client assertion (RFC 7523 §2.2).
    PrivateKeyJwt,
    /// No client authentication; `client_id` is sent in the body.
    None,
}

impl ClientAuth {
    /// The name written in connector files.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuth::Basic => "basic",
            ClientAuth::BasicRaw => "basic_raw",
            ClientAuth::Body => "body",
            ClientAuth::PrivateKeyJwt => "private_key_jwt",
            ClientAuth::None => "none",
        }
    }
}

/// Where the fields of a token response are found. Each value is a top-level key of the JSON
/// response or a JSON pointer (`/data/token`), and may be a template (`"{{ vars.token_key }}"`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenResponse {
    /// The access token ("response authentication token key"). Defaults to `access_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The token type. Defaults to `token_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Lifetime in seconds (a number or a numeric string). Defaults to `expires_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
    /// The granted scope. Defaults to `scope`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The refresh token. Defaults to `refresh_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// More fields of the response to expose as `auth.NAME`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub fields: IndexMap<String, String>,
}

/// How credentials are added to endpoint requests.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Apply {
    /// Headers added to every endpoint request (templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// Query parameters added to every endpoint request (templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub query: IndexMap<String, String>,
}

/// What to do when the granted scope lacks a requested one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScopeCheck {
    /// Log a warning and go on (the default).
    Warn,
    /// Fail authentication.
    Strict,
}

/// A JWT the client signs: a client assertion (RFC 7523 §2.2) or a JWT bearer grant
/// assertion (RFC 7523 §2.1).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JwtSigning {
    /// The private key, PEM (a template over a secret variable, e.g. `"{{ vars.private_key }}"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A Google service-account JSON key file's contents (a template over a secret variable);
    /// supplies the key, the issuer (`client_email`) and the token URL (`token_uri`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Signing algorithm. Defaults to `RS256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<JwtAlgorithm>,
    /// Key id, sent as the `kid` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The `iss` claim. Defaults to the client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// The `sub` claim (for a Google service account, the user to impersonate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The `aud` claim. Defaults to the token URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Seconds until the assertion expires. Defaults to 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub lifetime_s: Option<u64>,
    /// More claims (templates), e.g. `scope` for Google.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub claims: IndexMap<String, String>,
}

/// A JWS signing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

/// The browser step of the authorization code grant.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Authorize {
    /// Authorization endpoint URL (a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// More query parameters of the authorization URL (templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, String>,
    /// PKCE method: `S256` (the default) or `disabled` for providers that reject PKCE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkce: Option<Pkce>,
}

/// The PKCE method (RFC 7636).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Pkce {
    /// SHA-256 code challenge.
    S256,
    /// No PKCE.
    #[serde(rename = "disabled")]
    Disabled,
}

/// Who shares an authorization code grant's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenSharing {
    /// Each instance signs in and holds its own tokens ("user-specific").
    PerInstance,
    /// All instances of the connector share one sign-in.
    Shared,
}

/// Any HTTP request whose response fields become `auth.*`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomAuth {
    /// Label shown to users when they pick an auth method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Help text for this auth method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Variables of this auth method (the "credential fields"), usable as `vars.NAME`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub variables: IndexMap<String, Variable>,
    /// The auth request.
    pub request: AuthRequest,
    /// Fields of the auth response exposed as `auth.NAME`: a top-level key or a JSON pointer.
    /// Defaults to `access_token`, `token_type` and `expires_in`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<CustomResponse>,
    /// How the auth response is applied to endpoint requests.
    pub apply: Apply,
    /// Lifetime assumed, in seconds, when `auth.expires_in` is absent. Defaults to 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub default_lifetime_s: Option<u64>,
}

/// The request of a `custom` auth method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthRequest {
    /// Request URL (a template).
    pub url: String,
    /// HTTP method. Defaults to `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// Headers (templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// Query parameters (templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub query: IndexMap<String, String>,
    /// Body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
}

/// The response mapping of a `custom` auth method.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomResponse {
    /// Response fields exposed as `auth.NAME`: a top-level key or a JSON pointer each. A
    /// field named `expires_in` sets the lifetime of the response.
    pub fields: IndexMap<String, String>,
}

/// HTTP Basic authentication (RFC 7617).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// Label shown to users when they pick an auth method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Help text for this auth method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Variables; `username` and `password` (secret) are added for you.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub variables: IndexMap<String, Variable>,
    /// The user name (a template). Defaults to `"{{ vars.username }}"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password (a template). Defaults to `"{{ vars.password }}"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// A static bearer token.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BearerAuth {
    /// Label shown to users when they pick an auth method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Help text for this auth method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Variables; `token` (secret) is added for you.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub variables: IndexMap<String, Variable>,
    /// The token (a template). Defaults to `"{{ vars.token }}"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// An API key in a header or a query parameter.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyAuth {
    /// Label shown to users when they pick an auth method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Help text for this auth method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Variables; `api_key` (secret) is added for you.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub variables: IndexMap<String, Variable>,
    /// Where the key goes: `header` (the default) or `query`.
    #[serde(default, rename = "in", skip_serializing_if = "Option::is_none")]
    pub location: Option<KeyLocation>,
    /// Header or query parameter name. Defaults to `X-API-Key` in a header, `api_key` in a
    /// query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The key (a template). Defaults to `"{{ vars.api_key }}"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Where an API key is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    /// In a request header.
    Header,
    /// In a query parameter (visible in logs of proxies: prefer `header`).
    Query,
}

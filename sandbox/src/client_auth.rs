//! Client authentication at the token and revocation endpoints: HTTP Basic and the body
//! (RFC 6749 §2.3.1), `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9), and public
//! clients that only send their `client_id`.

use crate::http::{auth_scheme, basic_pair, form_decode, Req};
use crate::jwt::{unix_now, Jwt, Rules};
use crate::oauth::{Form, OAuthError};
use crate::Shared;

/// The `client_assertion_type` of RFC 7523 §2.2.
pub(crate) const JWT_CLIENT_ASSERTION: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// What client assertion errors are about.
const WHAT: &str = "client assertion";

/// Who the client is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Client {
    /// No client authentication and no `client_id`.
    Anonymous,
    /// A known `client_id` without a secret or an assertion: method `none`.
    Public(String),
    /// An authenticated client, by its id.
    Confidential(String),
}

impl Client {
    /// The id of an authenticated client.
    pub(crate) fn confidential(&self) -> Result<&str, OAuthError> {
        match self {
            Client::Confidential(id) => Ok(id),
            Client::Public(_) => Err(OAuthError::invalid_client("Client authentication failed")),
            Client::Anonymous => Err(OAuthError::invalid_client(
                "Client authentication is required: HTTP Basic, client_id and client_secret in \
                 the body, or a client assertion (private_key_jwt)",
            )),
        }
    }

    /// The id of a known client, and whether it is public (no authentication).
    pub(crate) fn known(&self) -> Result<(&str, bool), OAuthError> {
        match self {
            Client::Public(id) => Ok((id, true)),
            _ => Ok((self.confidential()?, false)),
        }
    }
}

/// Authenticates the client of a token or revocation request; `Err` is the answer.
pub(crate) fn authenticate(shared: &Shared, req: &Req, form: &Form) -> Result<Client, OAuthError> {
    let basic = basic_credentials(req)?;
    let body_secret = form.get("client_secret").is_some();
    let assertion =
        form.get("client_assertion").is_some() || form.get("client_assertion_type").is_some();
    match (basic, body_secret, assertion) {
        (Some(_), _, true) => Err(two_methods("HTTP Basic and a client assertion")),
        (None, true, true) => Err(two_methods("client_secret and a client assertion")),
        (Some(_), _, false) if body_secret || form.get("client_id").is_some() => Err(two_methods(
            "HTTP Basic and client_id/client_secret in the body",
        )),
        (Some((id, secret)), _, false) => with_secret(shared, "client_secret_basic", &id, &secret),
        (None, true, false) => with_secret(
            shared,
            "client_secret_post",
            form.get("client_id").unwrap_or_default(),
            form.get("client_secret").unwrap_or_default(),
        ),
        (None, false, true) => with_assertion(shared, req, form),
        (None, false, false) => match form.get("client_id") {
            None => Ok(Client::Anonymous),
            Some(id) if id == shared.config.client_id => Ok(Client::Public(id.to_owned())),
            Some(_) => Err(OAuthError::invalid_client("Client authentication failed")),
        },
    }
}

fn two_methods(which: &str) -> OAuthError {
    OAuthError::invalid_request(format!(
        "The client authenticated with both {which}; use one method"
    ))
}

/// The form-decoded id and secret of `Authorization: Basic`, if the request has one.
fn basic_credentials(req: &Req) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers.get("authorization") else {
        return Ok(None);
    };
    let Ok(value) = value.to_str() else {
        return Err(OAuthError::invalid_client(
            "The Authorization header is not valid",
        ));
    };
    let (scheme, credentials) = auth_scheme(value);
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(format!(
            "Client authentication must use HTTP Basic, not `{scheme}`"
        )));
    }
    let Some((id, secret)) = basic_pair(credentials) else {
        return Err(OAuthError::invalid_client(
            "The Basic credentials are not base64 of `client_id:client_secret`",
        ));
    };
    Ok(Some((form_decode(&id), form_decode(&secret))))
}

/// Refuses a method that [`Config::auth_methods`](crate::Config::auth_methods) does not list.
fn allowed(shared: &Shared, method: &str) -> Result<(), OAuthError> {
    let methods = &shared.config.auth_methods;
    if methods.iter().any(|m| m == method) {
        return Ok(());
    }
    Err(OAuthError::invalid_client(format!(
        "Client authentication method `{method}` is not allowed; this server allows: {}",
        methods.join(", ")
    )))
}

fn with_secret(
    shared: &Shared,
    method: &str,
    id: &str,
    secret: &str,
) -> Result<Client, OAuthError> {
    allowed(shared, method)?;
    let config = &shared.config;
    if id != config.client_id || secret != config.client_secret {
        return Err(OAuthError::invalid_client("Client authentication failed"));
    }
    Ok(Client::Confidential(id.to_owned()))
}

/// `private_key_jwt`: a JWT signed by the client, single use.
fn with_assertion(shared: &Shared, req: &Req, form: &Form) -> Result<Client, OAuthError> {
    let Some(kind) = form.non_empty("client_assertion_type") else {
        return Err(OAuthError::invalid_request(
            "The parameter `client_assertion_type` is missing",
        ));
    };
    if kind != JWT_CLIENT_ASSERTION {
        return Err(OAuthError::invalid_client(format!(
            "The client_assertion_type `{kind}` is not supported; use {JWT_CLIENT_ASSERTION}"
        )));
    }
    let Some(token) = form.non_empty("client_assertion") else {
        return Err(OAuthError::invalid_request(
            "The parameter `client_assertion` is missing",
        ));
    };
    allowed(shared, "private_key_jwt")?;
    let refuse = OAuthError::invalid_client;
    let jwt = Jwt::parse(token).map_err(|e| refuse(e.describe(WHAT)))?;
    let iss = jwt.issuer().map_err(|e| refuse(e.describe(WHAT)))?;
    if let Some(id) = form.get("client_id").filter(|id| *id != iss) {
        return Err(refuse(format!(
            "The client assertion's iss `{iss}` is not the client_id `{id}`"
        )));
    }
    if iss != shared.config.client_id {
        return Err(refuse(format!(
            "The client assertion's iss `{iss}` is not a known client id"
        )));
    }
    match jwt.claim("sub") {
        None => return Err(refuse(format!("The {WHAT} has no sub"))),
        Some(sub) if sub != iss => {
            return Err(refuse(format!(
                "The client assertion's sub `{sub}` is not its iss `{iss}`"
            )))
        }
        Some(_) => {}
    }
    let now = unix_now() + shared.config.clock_skew_s;
    let audiences = shared.endpoint_urls(req, &["/oauth/token", &req.path], true);
    let rules = Rules {
        audiences: &audiences,
        require_iat: false,
        now,
    };
    jwt.verify(&shared.keys_of(iss), &rules)
        .map_err(|e| refuse(e.describe(WHAT)))?;
    let Some(jti) = jwt.claim("jti").filter(|jti| !jti.is_empty()) else {
        return Err(refuse(format!("The {WHAT} has no jti")));
    };
    let exp = jwt.date("exp").unwrap_or(now);
    if !shared.lock().grants.use_jti(jti, exp, now) {
        return Err(refuse(format!("The {WHAT}'s jti was already used")));
    }
    Ok(Client::Confidential(iss.to_owned()))
}

//! The OAuth flows end to end over loopback HTTP: `private_key_jwt`, the JWT-bearer grant,
//! refresh rotation, authorization code with PKCE, revocation and discovery.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use reqwest::redirect::Policy;
use sandbox::{
    AuthorizeMode, Config, DiscoveryMode, Fault, PkceMode, Sandbox, TEST_EC_KID,
    TEST_EC_PRIVATE_KEY, TEST_RSA_KID, TEST_RSA_PRIVATE_KEY, TEST_UNREGISTERED_RSA_PRIVATE_KEY,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const VERIFIER: &str = "a-code-verifier-of-at-least-43-characters-0123456789";

// ---------------------------------------------------------------------------------------------
// Helpers

async fn start_with(config: Config) -> Sandbox {
    Sandbox::start("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("start the sandbox")
}

async fn start() -> Sandbox {
    start_with(Config::default()).await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    body: String,
    location: Option<String>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts an OAuth error and its description.
    fn error(&self, status: u16, error: &str, description: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.json()["error"], error, "{}", self.body);
        assert_eq!(
            self.json()["error_description"],
            description,
            "{}",
            self.body
        );
    }

    fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.body);
        self.json()
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.text().await.expect("body");
    Answer {
        status,
        body,
        location,
    }
}

async fn post(url: &str, form: &[(&str, &str)]) -> Answer {
    answer(http().post(url).form(form)).await
}

async fn get(url: &str) -> Answer {
    answer(http().get(url)).await
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(pem: &str, alg: Algorithm, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .unwrap();
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, &key).unwrap()
}

/// The claims of a valid client assertion for `sandbox-client`.
fn client_claims(sandbox: &Sandbox, jti: &str) -> Value {
    let now = now();
    json!({
        "iss": "sandbox-client",
        "sub": "sandbox-client",
        "aud": sandbox.token_url(),
        "iat": now,
        "exp": now + 60,
        "jti": jti,
    })
}

/// A client-credentials request authenticated by `assertion`.
async fn with_assertion(sandbox: &Sandbox, assertion: &str) -> Answer {
    post(
        &sandbox.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
    )
    .await
}

async fn items_status(sandbox: &Sandbox, token: &str) -> u16 {
    answer(
        http()
            .get(format!("{}/items", sandbox.url()))
            .bearer_auth(token),
    )
    .await
    .status
}

fn challenge(verifier: &str) -> String {
    BASE64URL.encode(Sha256::digest(verifier.as_bytes()))
}

/// The query parameters of a redirect `Location`.
fn redirect_params(location: &str) -> Vec<(String, String)> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// `GET /oauth/authorize` with the usual parameters plus `extra`.
async fn authorize(sandbox: &Sandbox, extra: &[(&str, &str)]) -> Answer {
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", "sandbox-client"),
        ("redirect_uri", "http://127.0.0.1:9/cb?keep=1"),
        ("state", "st-123"),
        ("scope", "items:read events:read"),
    ];
    query.extend_from_slice(extra);
    answer(http().get(sandbox.authorize_url()).query(&query)).await
}

// ---------------------------------------------------------------------------------------------
// private_key_jwt

#[tokio::test]
async fn private_key_jwt_is_accepted_once() {
    let sandbox = start().await;
    let assertion = sign(
        TEST_RSA_PRIVATE_KEY,
        Algorithm::RS256,
        Some(TEST_RSA_KID),
        &client_claims(&sandbox, "jti-1"),
    );
    let body = with_assertion(&sandbox, &assertion).await.ok();
    assert_eq!(
        items_status(&sandbox, body["access_token"].as_str().unwrap()).await,
        200
    );
    assert!(body.get("refresh_token").is_none());

    with_assertion(&sandbox, &assertion).await.error(
        401,
        "invalid_client",
        "The client assertion's jti was already used",
    );

    // PS256 and ES256, without a kid: the sandbox tries the keys of the issuer.
    let ps = sign(
        TEST_RSA_PRIVATE_KEY,
        Algorithm::PS256,
        None,
        &client_claims(&sandbox, "jti-2"),
    );
    with_assertion(&sandbox, &ps).await.ok();
    let es = sign(
        TEST_EC_PRIVATE_KEY,
        Algorithm::ES256,
        Some(TEST_EC_KID),
        &client_claims(&sandbox, "jti-3"),
    );
    with_assertion(&sandbox, &es).await.ok();

    // A key nobody registered.
    let wrong = sign(
        TEST_UNREGISTERED_RSA_PRIVATE_KEY,
        Algorithm::RS256,
        None,
        &client_claims(&sandbox, "jti-4"),
    );
    with_assertion(&sandbox, &wrong).await.error(
        401,
        "invalid_client",
        "The client assertion's signature does not verify with the keys registered for \
         `sandbox-client`",
    );
    assert_eq!(sandbox.stats().tokens_issued, 3);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn client_assertions_are_checked_claim_by_claim() {
    let sandbox = start().await;
    let key = |claims: &Value| sign(TEST_RSA_PRIVATE_KEY, Algorithm::RS256, None, claims);

    let mut claims = client_claims(&sandbox, "a");
    claims["aud"] = json!("https://elsewhere.test/token");
    with_assertion(&sandbox, &key(&claims)).await.error(
        401,
        "invalid_client",
        "The client assertion's aud `https://elsewhere.test/token` is not this token endpoint",
    );

    // The issuer (base URL) is an accepted audience too, also in an array.
    let mut claims = client_claims(&sandbox, "b");
    claims["aud"] = json!(["https://elsewhere.test", sandbox.url()]);
    with_assertion(&sandbox, &key(&claims)).await.ok();

    let mut claims = client_claims(&sandbox, "c");
    claims["exp"] = json!(now() - 60);
    claims["iat"] = json!(now() - 120);
    with_assertion(&sandbox, &key(&claims)).await.error(
        401,
        "invalid_client",
        "The client assertion has expired",
    );

    let mut claims = client_claims(&sandbox, "d");
    claims.as_object_mut().unwrap().remove("jti");
    with_assertion(&sandbox, &key(&claims)).await.error(
        401,
        "invalid_client",
        "The client assertion has no jti",
    );

    let mut claims = client_claims(&sandbox, "e");
    claims["sub"] = json!("someone-else");
    with_assertion(&sandbox, &key(&claims)).await.error(
        401,
        "invalid_client",
        "The client assertion's sub `someone-else` is not its iss `sandbox-client`",
    );

    // An assertion and a secret together.
    let assertion = key(&client_claims(&sandbox, "f"));
    let answer = post(
        &sandbox.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret/+=%:"),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", &assertion),
        ],
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert_eq!(answer.json()["error"], "invalid_request");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn auth_methods_are_enforced() {
    let sandbox = start_with(Config {
        auth_methods: vec!["private_key_jwt".to_owned()],
        ..Config::default()
    })
    .await;
    post(
        &sandbox.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret/+=%:"),
        ],
    )
    .await
    .error(
        401,
        "invalid_client",
        "Client authentication method `client_secret_post` is not allowed; this server allows: \
         private_key_jwt",
    );
    let metadata = get(&format!(
        "{}/.well-known/oauth-authorization-server",
        sandbox.url()
    ))
    .await
    .ok();
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        json!(["private_key_jwt"])
    );
    sandbox.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// JWT-bearer grant

#[tokio::test]
async fn jwt_bearer_grant_with_the_service_account() {
    let sandbox = start().await;
    let key: Value = serde_json::from_str(&sandbox.service_account_json()).unwrap();
    assert_eq!(key["type"], "service_account");
    assert_eq!(key["token_uri"], sandbox.token_url());
    let sa_claims = |aud: &str, iss: &str| {
        let now = now();
        json!({
            "iss": iss,
            "scope": "items:read events:read",
            "aud": aud,
            "iat": now,
            "exp": now + 3600,
        })
    };
    let pem = key["private_key"].as_str().unwrap();
    let kid = key["private_key_id"].as_str();
    let email = key["client_email"].as_str().unwrap();
    let token_uri = key["token_uri"].as_str().unwrap();

    let assertion = sign(pem, Algorithm::RS256, kid, &sa_claims(token_uri, email));
    let body = post(
        token_uri,
        &[("grant_type", JWT_BEARER), ("assertion", &assertion)],
    )
    .await
    .ok();
    assert_eq!(body["scope"], "items:read events:read");
    assert!(body.get("refresh_token").is_none());
    assert_eq!(
        items_status(&sandbox, body["access_token"].as_str().unwrap()).await,
        200
    );

    let wrong_aud = sign(
        pem,
        Algorithm::RS256,
        kid,
        &sa_claims("https://x.test/token", email),
    );
    post(
        token_uri,
        &[("grant_type", JWT_BEARER), ("assertion", &wrong_aud)],
    )
    .await
    .error(
        400,
        "invalid_grant",
        "The assertion's aud `https://x.test/token` is not this token endpoint",
    );
    let stranger = sign(
        pem,
        Algorithm::RS256,
        None,
        &sa_claims(token_uri, "who@x.test"),
    );
    post(
        token_uri,
        &[("grant_type", JWT_BEARER), ("assertion", &stranger)],
    )
    .await
    .error(
        400,
        "invalid_grant",
        "The assertion's issuer `who@x.test` is unknown: no key is registered for it",
    );
    let mut expired = sa_claims(token_uri, email);
    expired["exp"] = json!(now() - 30);
    expired["iat"] = json!(now() - 90);
    let expired = sign(pem, Algorithm::RS256, kid, &expired);
    post(
        token_uri,
        &[("grant_type", JWT_BEARER), ("assertion", &expired)],
    )
    .await
    .error(400, "invalid_grant", "The assertion has expired");
    let forged = sign(
        TEST_UNREGISTERED_RSA_PRIVATE_KEY,
        Algorithm::RS256,
        kid,
        &sa_claims(token_uri, email),
    );
    post(
        token_uri,
        &[("grant_type", JWT_BEARER), ("assertion", &forged)],
    )
    .await
    .error(
        400,
        "invalid_grant",
        "The assertion's signature does not verify with the keys registered for \
             `service-account@sandbox.test`",
    );
    sandbox.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Refresh tokens

async fn refresh(sandbox: &Sandbox, token: &str) -> Answer {
    post(
        &sandbox.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret/+=%:"),
        ],
    )
    .await
}

#[tokio::test]
async fn refresh_tokens_rotate() {
    let sandbox = start().await;
    let first = sandbox.config().refresh_token.clone();
    assert!(
        sandbox.refresh_tokens().is_empty(),
        "the configured one is not listed"
    );

    let body = refresh(&sandbox, &first).await.ok();
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(sandbox.refresh_tokens(), std::slice::from_ref(&second));
    assert!(sandbox.issued().contains(&second));
    assert_eq!(
        items_status(&sandbox, body["access_token"].as_str().unwrap()).await,
        200
    );

    refresh(&sandbox, &first).await.error(
        400,
        "invalid_grant",
        "The refresh token was already used",
    );
    refresh(&sandbox, "nope").await.error(
        400,
        "invalid_grant",
        "The refresh token is unknown or revoked",
    );
    refresh(&sandbox, &second).await.ok();

    // Without client authentication: a confidential client's refresh token.
    let third = sandbox.refresh_tokens().remove(0);
    post(
        &sandbox.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &third),
            ("client_id", "sandbox-client"),
        ],
    )
    .await
    .error(
        401,
        "invalid_client",
        "A public client (client_id without a secret) may only use refresh tokens from \
         authorization codes issued with PKCE",
    );
    assert_eq!(sandbox.stats().refresh_grants, 5);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn refresh_tokens_can_stay() {
    let sandbox = start_with(Config {
        rotate_refresh_tokens: false,
        ..Config::default()
    })
    .await;
    let token = sandbox.config().refresh_token.clone();
    for _ in 0..2 {
        let body = refresh(&sandbox, &token).await.ok();
        assert!(body.get("refresh_token").is_none(), "{body}");
    }
    assert!(sandbox.refresh_tokens().is_empty());

    // The password grant issues a refresh token; client credentials does not.
    let body = post(
        &sandbox.token_url(),
        &[
            ("grant_type", "password"),
            ("username", "demo"),
            ("password", "demo-password"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret/+=%:"),
        ],
    )
    .await
    .ok();
    assert!(body["refresh_token"].is_string());
    sandbox.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Authorization code

#[tokio::test]
async fn authorization_code_with_pkce() {
    let sandbox = start().await;
    let challenge = challenge(VERIFIER);
    let answer = authorize(
        &sandbox,
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("resource", "https://api.sandbox.test"),
        ],
    )
    .await;
    assert_eq!(answer.status, 302, "{}", answer.body);
    let location = answer.location.unwrap();
    assert!(
        location.starts_with("http://127.0.0.1:9/cb?keep=1&code="),
        "{location}"
    );
    let params = redirect_params(&location);
    assert_eq!(param(&params, "state"), Some("st-123"));
    let code = param(&params, "code").unwrap().to_owned();
    assert!(sandbox.issued().contains(&code));

    // A public client: client_id only.
    let redeem = |verifier: &'static str| {
        let code = code.clone();
        let url = sandbox.token_url();
        async move {
            post(
                &url,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", "http://127.0.0.1:9/cb?keep=1"),
                    ("client_id", "sandbox-client"),
                    ("code_verifier", verifier),
                ],
            )
            .await
        }
    };
    redeem("a-wrong-verifier-of-at-least-43-characters-000000000")
        .await
        .error(
            400,
            "invalid_grant",
            "The code_verifier does not match the code_challenge",
        );
    let body = redeem(VERIFIER).await.ok();
    assert_eq!(body["scope"], "items:read events:read");
    assert_eq!(body["resource"], "https://api.sandbox.test");
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    redeem(VERIFIER).await.error(
        400,
        "invalid_grant",
        "The authorization code was already used",
    );

    // The public client may refresh the token of its PKCE code.
    let body = post(
        &sandbox.token_url(),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
            ("client_id", "sandbox-client"),
        ],
    )
    .await
    .ok();
    assert!(body["refresh_token"].is_string());

    // But not use client credentials.
    post(
        &sandbox.token_url(),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
        ],
    )
    .await
    .error(401, "invalid_client", "Client authentication failed");
    assert_eq!(sandbox.stats().authorizations, 1);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn authorization_errors() {
    let sandbox = start().await;
    let challenge = challenge(VERIFIER);
    let pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];

    // A redirect URI that is not loopback http: shown, not redirected.
    let answer = authorize(&sandbox, &[("redirect_uri", "https://evil.test/cb")]).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.location.is_none());

    let expect_redirect_error = |answer: Answer, error: &str, description: &str| {
        assert_eq!(answer.status, 302, "{}", answer.body);
        let params = redirect_params(&answer.location.unwrap());
        assert_eq!(param(&params, "error"), Some(error));
        assert_eq!(param(&params, "error_description"), Some(description));
        assert_eq!(param(&params, "state"), Some("st-123"));
    };
    let plain = authorize(&sandbox, &[("code_challenge", VERIFIER)]).await;
    expect_redirect_error(
        plain,
        "invalid_request",
        "The code_challenge_method `plain` is not supported; use S256",
    );
    let missing = authorize(&sandbox, &[]).await;
    expect_redirect_error(
        missing,
        "invalid_request",
        "The parameter `code_challenge` is missing: PKCE (RFC 7636) is required",
    );

    sandbox.set_authorize_mode(AuthorizeMode::Deny);
    let denied = authorize(&sandbox, &pkce).await;
    expect_redirect_error(
        denied,
        "access_denied",
        "The resource owner denied the request",
    );

    sandbox.set_authorize_mode(AuthorizeMode::WrongState);
    let answer = authorize(&sandbox, &pkce).await;
    let params = redirect_params(&answer.location.unwrap());
    assert!(param(&params, "code").is_some());
    assert_ne!(param(&params, "state"), Some("st-123"));
    sandbox.shutdown().await;

    let sandbox = start_with(Config {
        pkce: PkceMode::Rejected,
        ..Config::default()
    })
    .await;
    let answer = authorize(&sandbox, &pkce).await;
    expect_redirect_error(answer, "invalid_request", "PKCE is not supported");
    sandbox.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Revocation, resources, discovery

#[tokio::test]
async fn revoked_tokens_are_refused() {
    let sandbox = start().await;
    let secret_form = |extra: &[(&'static str, String)]| {
        let mut form = vec![
            ("client_id", "sandbox-client".to_owned()),
            ("client_secret", "sandbox-secret/+=%:".to_owned()),
        ];
        form.extend_from_slice(extra);
        form
    };
    let body = answer(http().post(sandbox.token_url()).form(&secret_form(&[(
        "grant_type",
        "client_credentials".to_owned(),
    )])))
    .await
    .ok();
    let token = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(items_status(&sandbox, &token).await, 200);

    let revoke = |form: Vec<(&'static str, String)>| {
        answer(http().post(sandbox.revocation_url()).form(&form))
    };
    let answer = revoke(secret_form(&[("token", token.clone())])).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, ""));
    assert_eq!(items_status(&sandbox, &token).await, 401);
    // Unknown tokens are fine; no token is not; nor a wrong secret.
    assert_eq!(
        revoke(secret_form(&[("token", "nope".into())]))
            .await
            .status,
        200
    );
    assert_eq!(
        revoke(secret_form(&[])).await.json()["error"],
        "invalid_request"
    );
    let wrong = vec![
        ("client_id", "sandbox-client".to_owned()),
        ("client_secret", "wrong".to_owned()),
        ("token", token.clone()),
    ];
    revoke(wrong)
        .await
        .error(401, "invalid_client", "Client authentication failed");

    // A refresh token.
    let refresh_token = sandbox.config().refresh_token.clone();
    let form = secret_form(&[
        ("token", refresh_token.clone()),
        ("token_type_hint", "refresh_token".into()),
    ]);
    assert_eq!(revoke(form).await.status, 200);
    assert!(sandbox.refresh_tokens().is_empty());
    refresh(&sandbox, &refresh_token).await.error(
        400,
        "invalid_grant",
        "The refresh token is unknown or revoked",
    );
    assert_eq!(sandbox.stats().revocations, 5);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn resources_and_audiences() {
    let sandbox = start().await;
    let form = |resource: &'static str| {
        [
            ("grant_type", "client_credentials"),
            ("client_id", "sandbox-client"),
            ("client_secret", "sandbox-secret/+=%:"),
            ("resource", resource),
            ("audience", "anything"),
        ]
    };
    let body = post(&sandbox.token_url(), &form("https://api.sandbox.test"))
        .await
        .ok();
    assert_eq!(body["resource"], "https://api.sandbox.test");
    assert_eq!(body["audience"], "anything");
    post(&sandbox.token_url(), &form("https://other.test"))
        .await
        .error(
            400,
            "invalid_target",
            "The resource `https://other.test` is not served here; known resources: \
             https://api.sandbox.test",
        );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn discovery_documents() {
    let sandbox = start().await;
    let base = sandbox.url();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let doc = get(&format!("{base}{path}")).await.ok();
        assert_eq!(doc["issuer"], base);
        assert_eq!(doc["token_endpoint"], sandbox.token_url());
        assert_eq!(doc["authorization_endpoint"], sandbox.authorize_url());
        assert_eq!(doc["revocation_endpoint"], sandbox.revocation_url());
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            doc["token_endpoint_auth_signing_alg_values_supported"],
            json!(["RS256", "PS256", "ES256"])
        );
    }
    let jwks = get(&format!("{base}/oauth/jwks")).await.ok();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["sandbox-rsa", "sandbox-ec", "sandbox-sa"]);
    sandbox.shutdown().await;

    let sandbox = start_with(Config {
        issuer: Some("https://issuer.test".to_owned()),
        discovery: DiscoveryMode::OpenIdOnly,
        pkce: PkceMode::Rejected,
        ..Config::default()
    })
    .await;
    let base = sandbox.url();
    let missing = get(&format!("{base}/.well-known/oauth-authorization-server")).await;
    assert_eq!(missing.status, 404);
    let doc = get(&format!("{base}/.well-known/openid-configuration"))
        .await
        .ok();
    assert_eq!(doc["issuer"], "https://issuer.test");
    assert!(doc.get("code_challenge_methods_supported").is_none());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn faults_and_the_request_log_cover_the_new_routes() {
    let sandbox = start().await;
    sandbox.add_fault(Fault {
        status: Some(503),
        ..Fault::new("/oauth/revoke")
    });
    let answer = post(&sandbox.revocation_url(), &[("token", "x")]).await;
    assert_eq!(answer.status, 503);
    let answer = get(&format!(
        "{}/.well-known/openid-configuration",
        sandbox.url()
    ))
    .await;
    assert_eq!(answer.status, 200);
    let paths: Vec<String> = sandbox.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/oauth/revoke", "/.well-known/openid-configuration"]
    );
    sandbox.shutdown().await;
}

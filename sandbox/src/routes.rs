//! The routes: one fallback handler that records, applies faults and dispatches.
//!
//! The OAuth endpoints live in their own modules: [`token`](crate::token) (token and
//! revocation), [`authorize`](crate::authorize) and [`discovery`](crate::discovery).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_TYPE, LINK};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::authorize::authorize;
use crate::discovery::{jwks, metadata, Document};
use crate::fault::{self, Fault};
use crate::http::{
    auth_scheme, basic_pair, challenge, error, form_decode, is_plain_authority, json_response,
    method_not_allowed, no_content, no_route, read_body, with_header, BodyError, Req,
};
use crate::oauth::no_store;
use crate::token::{revoke, token};
use crate::{is_live, AuthorizeMode, SeenRequest, Shared, BODY_LIMIT};

/// Events per page of `/events`.
const EVENTS_PER_PAGE: usize = 20;
/// Event types, by `seq % 3`.
const EVENT_TYPES: [&str; 3] = ["created", "updated", "deleted"];
/// Headers (and the query parameter `api_key`) that `/echo` never shows.
const REDACTED_HEADERS: [&str; 4] = ["authorization", "x-api-key", "x-session", "cookie"];
const REDACTED: &str = "<redacted>";
const BEARER_CHALLENGE: &str = r#"Bearer realm="sandbox""#;
const INVALID_TOKEN_CHALLENGE: &str = r#"Bearer realm="sandbox", error="invalid_token", error_description="The access token is invalid or expired""#;
const BASIC_CHALLENGE: &str = r#"Basic realm="sandbox""#;

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Token,
    Authorize,
    Revoke,
    Jwks,
    Metadata(Document),
    Login,
    Items,
    Item(&'a str),
    Events,
    Logs,
    Echo,
    Unknown,
}

impl Route<'_> {
    fn of(path: &str) -> Route<'_> {
        match path {
            "/oauth/token" => Route::Token,
            "/oauth/authorize" => Route::Authorize,
            "/oauth/revoke" => Route::Revoke,
            "/oauth/jwks" => Route::Jwks,
            "/.well-known/oauth-authorization-server" => Route::Metadata(Document::OAuth),
            "/.well-known/openid-configuration" => Route::Metadata(Document::OpenId),
            "/login" => Route::Login,
            "/items" => Route::Items,
            "/events" => Route::Events,
            "/logs" => Route::Logs,
            "/echo" => Route::Echo,
            _ => match path.strip_prefix("/items/") {
                Some(id) if !id.contains('/') => Route::Item(id),
                _ => Route::Unknown,
            },
        }
    }

    fn is_api(self) -> bool {
        matches!(
            self,
            Route::Items | Route::Item(_) | Route::Events | Route::Logs | Route::Echo
        )
    }
}

/// Every request goes through here.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    tracing::debug!(method = %parts.method, path = %parts.uri.path(), "sandbox request");
    let body = read_body(body, BODY_LIMIT).await;
    let req = Req {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or_default().to_owned(),
        headers: parts.headers,
        body: match &body {
            Ok(bytes) => bytes.clone(),
            Err(_) => Default::default(),
        },
    };
    if req.path == "/_sandbox" || req.path.starts_with("/_sandbox/") {
        return match body {
            Ok(_) => control(&shared, &req),
            Err(error) => body_error(error),
        };
    }

    let route = Route::of(&req.path);
    let fault = {
        let mut state = shared.lock();
        state.record(SeenRequest {
            method: req.method.to_string(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: req
                .headers
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    (name.as_str().to_owned(), value)
                })
                .collect(),
            body: String::from_utf8_lossy(&req.body).into_owned(),
        });
        match route {
            Route::Token => state.stats.token_requests += 1,
            Route::Authorize => state.stats.authorizations += 1,
            Route::Revoke => state.stats.revocations += 1,
            route if route.is_api() => state.stats.api_requests += 1,
            _ => {}
        }
        fault::take(&mut state.faults, req.method.as_str(), &req.path)
    };

    let mut response = None;
    if let Some(fault) = fault {
        if fault.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(fault.delay_ms)).await;
        }
        if fault.expire_tokens {
            shared.lock().revoke_all();
        }
        response = fault_response(&fault);
    }
    let response = match (response, body) {
        (Some(response), _) => response,
        (None, Err(error)) => body_error(error),
        (None, Ok(_)) => dispatch(&shared, &req, route),
    };
    if route.is_api() && response.status() == StatusCode::UNAUTHORIZED {
        shared.lock().stats.unauthorized += 1;
    }
    response
}

fn body_error(error: BodyError) -> Response {
    match error {
        BodyError::TooLarge => crate::http::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the sandbox reads bodies of at most 1 MiB",
        ),
        BodyError::Broken => crate::http::error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request body could not be read",
        ),
    }
}

/// The response of a fault with a status; `None` for a fault without one.
fn fault_response(fault: &Fault) -> Option<Response> {
    let status = fault.status_code()?;
    let body = match (&fault.body, &fault.content_type) {
        (Some(body), _) => body.clone(),
        (None, None) => json!({
            "error": "injected_fault",
            "error_description": format!("a sandbox fault answered {}", status.as_u16()),
        })
        .to_string(),
        (None, Some(_)) => String::new(),
    };
    let body = if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        Body::empty()
    } else {
        Body::from(body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let content_type = fault.content_type.as_deref().unwrap_or("application/json");
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    for (name, value) in &fault.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    Some(response)
}

fn dispatch(shared: &Shared, req: &Req, route: Route<'_>) -> Response {
    match route {
        Route::Token => token(shared, req),
        Route::Authorize => authorize(shared, req),
        Route::Revoke => revoke(shared, req),
        Route::Jwks => jwks(shared, req),
        Route::Metadata(document) => metadata(shared, req, document),
        Route::Login => login(shared, req),
        Route::Unknown => no_route(req),
        route => {
            if let Some(response) = unauthenticated(shared, req) {
                return response;
            }
            match route {
                Route::Items => match req.method {
                    Method::GET => list_items(shared, req),
                    Method::POST => create_item(shared, req),
                    _ => method_not_allowed(req, "GET, POST"),
                },
                Route::Item(id) if req.method == Method::GET => get_item(shared, id),
                Route::Events if req.method == Method::GET => events(shared, req),
                Route::Logs if req.method == Method::GET => logs(shared, req),
                Route::Echo => echo(req),
                _ => method_not_allowed(req, "GET"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Session login

fn login(shared: &Shared, req: &Req) -> Response {
    if req.method != Method::POST {
        return method_not_allowed(req, "POST");
    }
    let body: Option<Value> = serde_json::from_slice(&req.body).ok();
    let credentials = body.as_ref().and_then(|body| {
        let username = body.get("username")?.as_str()?;
        let password = body.get("password")?.as_str()?;
        Some((username, password))
    });
    let Some((username, password)) = credentials else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            r#"The body must be JSON {"username": "...", "password": "..."}"#,
        );
    };
    if username != shared.config.username || password != shared.config.password {
        return json_response(
            StatusCode::UNAUTHORIZED,
            &json!({
                "error": "invalid_credentials",
                "error_description": "The user name or password is wrong",
            }),
        );
    }
    let Ok(session) = shared.credential() else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "No randomness for a session",
        );
    };
    let now = Instant::now();
    {
        let mut state = shared.lock();
        state.prune(now);
        state.sessions.insert(session.clone(), shared.expiry(now));
        state.remember(&session);
    }
    no_store(json_response(
        StatusCode::OK,
        &json!({ "session": session }),
    ))
}

// ---------------------------------------------------------------------------------------------
// API authentication

/// `None` if any credential the request carries is valid; otherwise the 401 to answer.
fn unauthenticated(shared: &Shared, req: &Req) -> Option<Response> {
    let config = &shared.config;
    let now = Instant::now();
    let mut presented = false;
    let mut bad_bearer = false;
    let mut bad_basic = false;
    let mut problem = "The credentials are not valid";

    if let Some(value) = req.headers.get("authorization") {
        presented = true;
        let value = value.to_str().unwrap_or_default();
        let (scheme, credentials) = auth_scheme(value);
        if scheme.eq_ignore_ascii_case("bearer") {
            let valid = credentials == config.static_token
                || shared
                    .lock()
                    .tokens
                    .get(credentials)
                    .is_some_and(|expiry| is_live(*expiry, now));
            if valid {
                return None;
            }
            bad_bearer = true;
        } else if scheme.eq_ignore_ascii_case("basic") {
            if basic_pair(credentials)
                .is_some_and(|(u, p)| u == config.username && p == config.password)
            {
                return None;
            }
            bad_basic = true;
        } else {
            problem = "The Authorization scheme is not supported; use Bearer or Basic";
        }
    }
    let key_header = req.header("x-api-key").map(str::to_owned);
    for key in [key_header, req.query_param("api_key")]
        .into_iter()
        .flatten()
    {
        presented = true;
        if key == config.api_key {
            return None;
        }
        problem = "The API key is not valid";
    }
    if let Some(session) = req.headers.get("x-session") {
        presented = true;
        let session = session.to_str().unwrap_or_default();
        if shared
            .lock()
            .sessions
            .get(session)
            .is_some_and(|expiry| is_live(*expiry, now))
        {
            return None;
        }
        problem = "The session is not valid or has expired";
    }

    Some(if !presented {
        challenge(
            error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "No credentials: send a bearer token, HTTP Basic, an API key or a session",
            ),
            BEARER_CHALLENGE,
        )
    } else if bad_bearer {
        challenge(
            error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The access token is invalid or expired",
            ),
            INVALID_TOKEN_CHALLENGE,
        )
    } else if bad_basic {
        challenge(
            error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "The user name or password is wrong",
            ),
            BASIC_CHALLENGE,
        )
    } else {
        challenge(
            error(StatusCode::UNAUTHORIZED, "unauthorized", problem),
            BEARER_CHALLENGE,
        )
    })
}

// ---------------------------------------------------------------------------------------------
// API

/// A whole-number query parameter: `default` when absent or empty, at least `min`, at most
/// `max` (larger values are lowered to it).
fn number(req: &Req, name: &str, default: usize, min: usize, max: usize) -> Result<usize, String> {
    let Some(text) = req.query_param(name).filter(|t| !t.is_empty()) else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(n) if n >= min && !text.starts_with('+') => Ok(n.min(max)),
        _ => Err(format!(
            "`{name}` must be a whole number of at least {min}, not `{text}`"
        )),
    }
}

fn bad_request(description: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn item(i: usize) -> Value {
    json!({
        "id": i,
        "name": format!("Item {i}"),
        "price": i as f64 * 1.5,
        "active": i % 2 == 1,
    })
}

fn list_items(shared: &Shared, req: &Req) -> Response {
    let total = shared.config.items;
    let page_items = |start: usize, count: usize| -> Vec<Value> {
        (start.saturating_add(1)..=total)
            .take(count)
            .map(item)
            .collect()
    };
    let result = if req.query_param("page").is_some() {
        number(req, "page", 1, 1, usize::MAX).and_then(|page| {
            let size = number(req, "page_size", 25, 1, 100)?;
            let start = (page - 1).saturating_mul(size);
            Ok(json!({
                "items": page_items(start, size),
                "total": total,
                "page": page,
                "page_count": total.div_ceil(size),
            }))
        })
    } else {
        number(req, "offset", 0, 0, usize::MAX).and_then(|offset| {
            let limit = number(req, "limit", 25, 1, 100)?;
            Ok(json!({ "items": page_items(offset, limit), "total": total }))
        })
    };
    match result {
        Ok(body) => json_response(StatusCode::OK, &body),
        Err(description) => bad_request(&description),
    }
}

fn get_item(shared: &Shared, id: &str) -> Response {
    match id.parse::<usize>() {
        Ok(i) if (1..=shared.config.items).contains(&i) && !id.starts_with('+') => {
            json_response(StatusCode::OK, &item(i))
        }
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("There is no item `{id}`"),
        ),
    }
}

fn create_item(shared: &Shared, req: &Req) -> Response {
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(&req.body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The body must be a JSON object",
        );
    };
    let id = {
        let mut state = shared.lock();
        let id = state.next_item_id;
        state.next_item_id = id.saturating_add(1);
        id
    };
    object.insert("id".to_owned(), json!(id));
    json_response(StatusCode::CREATED, &Value::Object(object))
}

fn events(shared: &Shared, req: &Req) -> Response {
    let wanted = req.query_param("type").filter(|t| !t.is_empty());
    let all: Vec<usize> = (1..=shared.config.events)
        .filter(|i| wanted.as_deref().is_none_or(|t| t == EVENT_TYPES[i % 3]))
        .collect();
    let cursor = req.query_param("cursor").filter(|c| !c.is_empty());
    let start = match cursor.as_deref() {
        None => 0,
        Some(cursor) => match cursor
            .strip_prefix('c')
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(start) if start <= all.len() && !cursor[1..].starts_with('+') => start,
            _ => return bad_request(&format!("The cursor `{cursor}` is not valid")),
        },
    };
    let end = (start + EVENTS_PER_PAGE).min(all.len());
    let page: Vec<Value> = all[start..end]
        .iter()
        .map(|&i| json!({ "id": format!("evt-{i}"), "type": EVENT_TYPES[i % 3], "seq": i }))
        .collect();
    let next = (end < all.len()).then(|| format!("c{end}"));
    json_response(
        StatusCode::OK,
        &json!({ "events": page, "next_cursor": next }),
    )
}

fn logs(shared: &Shared, req: &Req) -> Response {
    let (per_page, page) = match (
        number(req, "per_page", 50, 1, 100),
        number(req, "page", 1, 1, usize::MAX),
    ) {
        (Ok(per_page), Ok(page)) => (per_page, page),
        (Err(description), _) | (_, Err(description)) => return bad_request(&description),
    };
    let total = shared.config.logs;
    let start = (page - 1).saturating_mul(per_page);
    let lines: Vec<Value> = (start.saturating_add(1)..=total)
        .take(per_page)
        .map(|n| json!({ "line": n, "message": format!("log line {n}") }))
        .collect();
    let response = json_response(StatusCode::OK, &json!({ "logs": lines }));
    if start.saturating_add(per_page) >= total {
        return response;
    }
    let host = req
        .header("host")
        .filter(|h| is_plain_authority(h))
        .map(str::to_owned)
        .unwrap_or_else(|| shared.addr.to_string());
    let link = format!(
        "<http://{host}/logs?page={}&per_page={per_page}>; rel=\"next\"",
        page + 1
    );
    with_header(response, LINK, &link)
}

fn echo(req: &Req) -> Response {
    let query: Vec<Value> = req
        .query_pairs()
        .into_iter()
        .map(|(name, value)| {
            let value = if name == "api_key" {
                REDACTED.to_owned()
            } else {
                value
            };
            json!([name, value])
        })
        .collect();
    let raw_query = req
        .query
        .split('&')
        .map(|part| {
            let name = part.split_once('=').map_or(part, |(name, _)| name);
            if form_decode(name) == "api_key" {
                format!("{name}={REDACTED}")
            } else {
                part.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("&");
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let parsed: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    json_response(
        StatusCode::OK,
        &json!({
            "method": req.method.as_str(),
            "path": req.path,
            "query": query,
            "raw_query": raw_query,
            "headers": echo_headers(&req.headers),
            "body": body,
            "json": parsed,
        }),
    )
}

/// Headers by lowercase name; repeated headers joined with `, `; credentials redacted.
fn echo_headers(headers: &HeaderMap) -> Map<String, Value> {
    let mut out = Map::new();
    for name in headers.keys() {
        let name = name.as_str().to_ascii_lowercase();
        let value = if REDACTED_HEADERS.contains(&name.as_str()) {
            REDACTED.to_owned()
        } else {
            headers
                .get_all(&name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.insert(name, Value::String(value));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Control routes

fn control(shared: &Shared, req: &Req) -> Response {
    let path = req.path.trim_end_matches('/');
    match (path, &req.method) {
        ("/_sandbox/faults", &Method::POST) => add_faults(shared, req),
        ("/_sandbox/faults", &Method::GET) => {
            let faults: Vec<Fault> = shared
                .lock()
                .faults
                .iter()
                .map(|active| active.fault.clone())
                .collect();
            json_response(StatusCode::OK, &json!(faults))
        }
        ("/_sandbox/faults", &Method::DELETE) => {
            shared.lock().faults.clear();
            no_content()
        }
        ("/_sandbox/faults", _) => method_not_allowed(req, "GET, POST, DELETE"),
        ("/_sandbox/requests", &Method::GET) => {
            let requests: Vec<SeenRequest> = shared.lock().requests.iter().cloned().collect();
            json_response(StatusCode::OK, &json!(requests))
        }
        ("/_sandbox/requests", &Method::DELETE) => {
            shared.lock().requests.clear();
            no_content()
        }
        ("/_sandbox/requests", _) => method_not_allowed(req, "GET, DELETE"),
        ("/_sandbox/stats", &Method::GET) => {
            let stats = shared.lock().stats;
            json_response(StatusCode::OK, &json!(stats))
        }
        ("/_sandbox/stats", _) => method_not_allowed(req, "GET"),
        ("/_sandbox/expire-tokens", &Method::POST) => {
            shared.lock().revoke_all();
            no_content()
        }
        ("/_sandbox/expire-tokens", _) => method_not_allowed(req, "POST"),
        ("/_sandbox/authorize-mode", &Method::GET) => {
            let mode = shared.lock().authorize_mode;
            json_response(StatusCode::OK, &json!(mode))
        }
        ("/_sandbox/authorize-mode", &Method::POST) => {
            match serde_json::from_slice::<AuthorizeMode>(&req.body) {
                Ok(mode) => {
                    shared.lock().authorize_mode = mode;
                    no_content()
                }
                Err(e) => error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!(r#"The body must be "approve", "deny" or "wrong_state" (JSON): {e}"#),
                ),
            }
        }
        ("/_sandbox/authorize-mode", _) => method_not_allowed(req, "GET, POST"),
        ("/_sandbox/refresh-tokens", &Method::GET) => {
            let tokens = shared.lock().grants.live_refresh_tokens();
            json_response(StatusCode::OK, &json!(tokens))
        }
        ("/_sandbox/refresh-tokens", _) => method_not_allowed(req, "GET"),
        _ => no_route(req),
    }
}

fn add_faults(shared: &Shared, req: &Req) -> Response {
    let bad = |message: String| error(StatusCode::BAD_REQUEST, "invalid_request", &message);
    let value: Value = match serde_json::from_slice(&req.body) {
        Ok(value) => value,
        Err(e) => return bad(format!("The body is not JSON: {e}")),
    };
    let faults: Result<Vec<Fault>, _> = match value {
        Value::Array(_) => serde_json::from_value(value),
        value => serde_json::from_value(value).map(|fault| vec![fault]),
    };
    let faults = match faults {
        Ok(faults) => faults,
        Err(e) => return bad(format!("The body is not a fault or a list of faults: {e}")),
    };
    for fault in &faults {
        if let Err(message) = fault.validate() {
            return bad(format!("Invalid fault for `{}`: {message}", fault.path));
        }
    }
    shared
        .lock()
        .faults
        .extend(faults.into_iter().map(fault::Active::new));
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(Route::of("/items/7"), Route::Item("7"));
        assert_eq!(Route::of("/items/7/x"), Route::Unknown);
        assert_eq!(Route::of("/oauth/token"), Route::Token);
        assert_eq!(
            Route::of("/.well-known/openid-configuration"),
            Route::Metadata(Document::OpenId)
        );
        assert_eq!(Route::of("/"), Route::Unknown);
        assert!(Route::of("/echo").is_api());
        assert!(!Route::of("/login").is_api());
    }
}

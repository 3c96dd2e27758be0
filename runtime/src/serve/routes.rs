//! The routes and their handlers.
//!
//! | status | `code` | when |
//! | --- | --- | --- |
//! | 400 | `bad_request` | the body is not a JSON object, or a path parameter is not UTF-8 |
//! | 400 | `invalid_input` | an input is unknown, missing, of the wrong type or not allowed |
//! | 401 | `unauthorized` | no API key, or the wrong one |
//! | 404 | `unknown_instance`, `unknown_endpoint`, `not_found` | no such instance, endpoint or route |
//! | 405 | `method_not_allowed` | a route called with the wrong method |
//! | 408 | `request_timeout` | the body did not arrive in full within 10 s of the head |
//! | 413 | `payload_too_large` | a body over 1 MiB (at once when `Content-Length` says so) |
//! | 502 | `connect`, `tls`, `auth_rejected`, `auth_response`, `status`, `response`, `unsupported` | the provider or the API failed |
//! | 504 | `timeout` | the provider or the API did not answer in time |

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequest as _, Path, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::error::{json, json_bytes, ApiError};
use super::{auth, log, State as Shared, BODY_LIMIT, BODY_TIMEOUT};
use crate::resolve::Given;
use crate::run::Connection;

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The router, its middleware (access log outermost, then the body limit, then the API key)
/// and its state.
pub(crate) fn router(state: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/instances", get(instances))
        .route("/v1/instances/{id}/endpoints/{name}", post(endpoint))
        .route("/v1/instances/{id}/auth/test", post(auth_test))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(state.clone(), auth::require))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(from_fn_with_state(state.clone(), log::access))
        .with_state(state)
}

/// `GET /healthz`.
async fn healthz(State(state): State<Arc<Shared>>) -> Response {
    json(
        StatusCode::OK,
        &json!({ "status": "ok", "instances": state.instances.len() }),
    )
}

/// `GET /metrics`: Prometheus text.
async fn metrics(State(state): State<Arc<Shared>>) -> Response {
    let mut resp = Response::new(Body::from(state.metrics.render()));
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `GET /v1/instances`.
async fn instances(State(state): State<Arc<Shared>>) -> Response {
    let list: Vec<Value> = state
        .instances
        .iter()
        .map(|(id, conn)| {
            let i = conn.instance();
            json!({
                "id": id,
                "connector": i.ir.connector,
                "auth": i.auth_name,
                "type": i.auth().type_name,
                "endpoints": i.ir.endpoints.keys().collect::<Vec<_>>(),
            })
        })
        .collect();
    json(StatusCode::OK, &json!({ "instances": list }))
}

/// `POST /v1/instances/{id}/endpoints/{name}`: a JSON object of inputs → the records, a
/// summary and warnings. The instance and the endpoint are looked up before the body is read.
async fn endpoint(
    State(state): State<Arc<Shared>>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Response> {
    let Path((id, name)) = path.map_err(path_error)?;
    let conn = connection(&state, &id)?;
    let instance = conn.instance();
    if !instance.ir.endpoints.contains_key(&name) {
        let names: Vec<&str> = instance.ir.endpoints.keys().map(String::as_str).collect();
        let help = compiler::suggest_help(&name, &names, |n| format!("`{n}`"))
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_endpoint",
            format!(
                "the connector `{}` of the instance `{id}` has no endpoint `{name}`{help}",
                instance.ir.connector
            ),
        ));
    }
    let inputs = inputs(&body(request).await?)?;
    // The records are written into the answer as they arrive, each as the API sent it
    // (whitespace between tokens removed).
    let mut records: Vec<u8> = Vec::with_capacity(1024);
    let stats = conn
        .call(
            &name,
            &inputs,
            &mut |r| {
                records.push(if records.is_empty() { b'[' } else { b',' });
                records.extend_from_slice(crate::run::compact(r).as_bytes());
                Ok(())
            },
            &mut |_| {},
        )
        .await?;
    if records.is_empty() {
        records.push(b'[');
    }
    records.push(b']');
    let rest = serde_json::to_vec(&json!({
        "summary": {
            "records": stats.records,
            "pages": stats.pages,
            "requests": stats.requests,
            "token_requests": stats.token_requests,
            "elapsed_ms": stats.elapsed.as_millis() as u64,
        },
        "warnings": stats.warnings,
    }))
    .unwrap_or_default();
    // `{"records":[…],` then the rest of the object after its `{`.
    let mut body = Vec::with_capacity(records.len() + rest.len() + 12);
    body.extend_from_slice(b"{\"records\":");
    body.extend_from_slice(&records);
    body.push(b',');
    body.extend_from_slice(rest.get(1..).unwrap_or_default());
    Ok(json_bytes(StatusCode::OK, body))
}

/// `POST /v1/instances/{id}/auth/test`: fetches credentials now and shows them redacted.
async fn auth_test(
    State(state): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let Path(id) = path.map_err(path_error)?;
    let conn = connection(&state, &id)?;
    let started = Instant::now();
    let creds = conn.authenticate().await?;
    let instance = conn.instance();
    let fields: serde_json::Map<String, Value> = creds
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), v.shown()))
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({
            "ok": true,
            "instance": instance.id,
            "connector": instance.ir.connector,
            "auth": instance.auth_name,
            "type": instance.auth().type_name,
            "elapsed_ms": started.elapsed().as_millis() as u64,
            "lifetime_s": creds.lifetime.map(|l| l.as_secs()),
            "fields": fields,
            "warnings": creds.warnings,
        }),
    ))
}

/// Any other path.
async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; the routes are POST /v1/instances/{id}/endpoints/{name}, POST /v1/instances/{id}/auth/test, GET /v1/instances, GET /healthz and GET /metrics",
    )
}

/// A route called with another method.
async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take this method",
    )
}

/// The connection of instance `id`.
fn connection(state: &Shared, id: &str) -> Result<Arc<Connection>> {
    if let Some(c) = state.instances.get(id) {
        return Ok(c.clone());
    }
    let names: Vec<&str> = state.instances.keys().map(String::as_str).collect();
    let help = match compiler::suggest_help(id, &names, |n| format!("`{n}`")) {
        Some(h) => format!("; {h}"),
        None => "; none is loaded".to_owned(),
    };
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_instance",
        format!("no instance `{id}`{help}"),
    ))
}

/// The inputs of a call: a JSON object whose strings, numbers and booleans are the inputs'
/// values (`null`: not given). An empty body gives none.
fn inputs(body: &[u8]) -> Result<Vec<(String, Given)>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let Value::Object(map) = doc else {
        return Err(ApiError::bad_request(
            "the body must be a JSON object of inputs, e.g. {\"id\": \"1\"}",
        ));
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        match value {
            Value::Null => {}
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                out.push((name, Given::Json(value)));
            }
            Value::Array(_) | Value::Object(_) => {
                return Err(ApiError::invalid_input(format!(
                    "the input `{name}` must be a string, a number or a boolean"
                )));
            }
        }
    }
    Ok(out)
}

fn path_error(e: PathRejection) -> ApiError {
    ApiError::bad_request(format!("the path cannot be read: {}", e.body_text()))
}

/// The whole body of `request`, at most [`BODY_LIMIT`] bytes (a larger `Content-Length` is
/// refused before anything is read), arriving within [`BODY_TIMEOUT`].
async fn body(request: Request) -> Result<Bytes> {
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, Bytes::from_request(request, &())).await {
        Ok(body) => body.map_err(body_error),
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the body did not arrive within {} s",
                BODY_TIMEOUT.as_secs()
            ),
        )),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the body is larger than {} bytes", BODY_LIMIT),
    )
}

fn body_error(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::bad_request("the body cannot be read")
    }
}

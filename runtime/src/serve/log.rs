//! One `info` line per request (method, route pattern, status, duration) and the latency of
//! each route. Never a header, a body, a path parameter or a value.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// The route a path belongs to: its pattern, and its name in the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    Endpoint,
    AuthTest,
    Instances,
    Metrics,
    Health,
    Other,
}

impl Route {
    pub(crate) fn of(path: &str) -> Route {
        match path {
            "/healthz" => return Route::Health,
            "/metrics" => return Route::Metrics,
            "/v1/instances" => return Route::Instances,
            _ => {}
        }
        let Some(rest) = path.strip_prefix("/v1/instances/") else {
            return Route::Other;
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            [id, "endpoints", name] if !id.is_empty() && !name.is_empty() => Route::Endpoint,
            [id, "auth", "test"] if !id.is_empty() => Route::AuthTest,
            _ => Route::Other,
        }
    }

    /// The pattern, for logs.
    pub(crate) fn pattern(self) -> &'static str {
        match self {
            Route::Endpoint => "/v1/instances/{id}/endpoints/{name}",
            Route::AuthTest => "/v1/instances/{id}/auth/test",
            Route::Instances => "/v1/instances",
            Route::Metrics => "/metrics",
            Route::Health => "/healthz",
            Route::Other => "(no route)",
        }
    }

    /// The name of its latency histogram.
    fn metric(self) -> Option<&'static str> {
        match self {
            Route::Endpoint => Some("endpoint"),
            Route::AuthTest => Some("auth_test"),
            Route::Instances => Some("instances"),
            Route::Metrics => Some("metrics"),
            Route::Health | Route::Other => None,
        }
    }
}

/// Middleware: times the request, logs it, records the route's latency.
pub(crate) async fn access(
    State(state): State<Arc<super::State>>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = Route::of(req.uri().path());
    let resp = next.run(req).await;
    let elapsed = started.elapsed();
    if let Some(name) = route.metric() {
        state.metrics.route(name).observe(elapsed);
    }
    tracing::info!(
        method = %method,
        route = route.pattern(),
        status = resp.status().as_u16(),
        ms = elapsed.as_micros() as f64 / 1000.0,
        "request"
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::Route;

    #[test]
    fn routes_of_paths() {
        assert_eq!(Route::of("/healthz"), Route::Health);
        assert_eq!(Route::of("/metrics"), Route::Metrics);
        assert_eq!(Route::of("/v1/instances"), Route::Instances);
        assert_eq!(
            Route::of("/v1/instances/cc/endpoints/list_items"),
            Route::Endpoint
        );
        assert_eq!(Route::of("/v1/instances/cc/auth/test"), Route::AuthTest);
        assert_eq!(Route::of("/v1/instances/cc/endpoints"), Route::Other);
        assert_eq!(Route::of("/v1/instances//auth/test"), Route::Other);
        assert_eq!(Route::of("/nope"), Route::Other);
    }
}

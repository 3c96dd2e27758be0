//! Sending requests: one shared client, timeouts, capped bodies, retries with backoff.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::error::{Error, ErrorKind, Result};

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Method.
    pub method: reqwest::Method,
    /// Absolute URL, query included.
    pub url: url::Url,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes and their content type.
    pub body: Option<(Vec<u8>, String)>,
    /// Timeout of the whole exchange.
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_bytes: u64,
    /// Whether the timeout and the cap are the endpoint's `timeout_ms` and
    /// `max_response_bytes` (errors name them), or fixed ones (token and discovery requests).
    pub configurable: bool,
}

impl Outgoing {
    /// A request with no headers and no body, a 5 s timeout and a 10 MiB cap.
    pub fn new(method: reqwest::Method, url: url::Url) -> Self {
        Outgoing {
            method,
            url,
            headers: HeaderMap::new(),
            body: None,
            timeout: Duration::from_millis(5000),
            max_bytes: 10 * 1024 * 1024,
            configurable: true,
        }
    }

    /// Adds a header; the name and value were checked when rendered.
    pub fn header(&mut self, name: &str, value: &str) -> Result<()> {
        self.header_owned(name, value.to_owned())
    }

    /// Adds a header whose value is moved in (no copy when the string has no spare
    /// capacity).
    pub fn header_owned(&mut self, name: &str, value: String) -> Result<()> {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::Usage,
                format!("`{name}` is not a valid header name"),
            )
        })?;
        let mut v = HeaderValue::from_maybe_shared(bytes::Bytes::from(value)).map_err(|_| {
            Error::new(
                ErrorKind::Usage,
                format!("the value of the header `{name}` has characters a header cannot carry"),
            )
        })?;
        if is_sensitive(&n) {
            v.set_sensitive(true);
        }
        self.headers.insert(n, v);
        Ok(())
    }

    /// Where the request goes, as it may be shown: scheme, host, port and path, no query.
    pub fn place(&self) -> String {
        shown(&self.url)
    }
}

/// `METHOD scheme://host:port/path` without the query string (which may carry an API key).
pub fn shown(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// Whether a header carries a credential (its value is then never shown by `Debug`).
fn is_sensitive(name: &HeaderName) -> bool {
    // Header names are lowercase once parsed.
    let n = name.as_str();
    n == "authorization"
        || n == "cookie"
        || n == "proxy-authorization"
        || n.contains("key")
        || n.contains("token")
        || n.contains("secret")
        || n.contains("session")
}

/// `GET https://host/path`: where a request went, written only when a message needs it.
pub struct Place<'a> {
    /// The method.
    pub method: &'a str,
    /// The URL; shown without its query string.
    pub url: &'a url::Url,
}

impl std::fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, shown(self.url))
    }
}

/// A response, its body read in full (up to the cap).
#[derive(Debug, Clone)]
pub struct Incoming {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: bytes::Bytes,
}

impl Incoming {
    /// The value of a header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The content type, without parameters.
    pub fn content_type(&self) -> String {
        self.header("content-type")
            .and_then(|c| c.split(';').next())
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    }

    /// What a body that could not be read as JSON was: `(text/html, 23 bytes)`; never its
    /// content.
    pub fn body_kind(&self) -> String {
        let ct = self.content_type();
        format!(
            "({}, {} bytes)",
            if ct.is_empty() {
                "no content type"
            } else {
                &ct
            },
            self.body.len()
        )
    }

    /// The status with its reason phrase, e.g. `404 Not Found`.
    pub fn status_text(&self) -> String {
        status_text(self.status)
    }
}

/// `404 Not Found`.
pub fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// When and how often a request is retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy<'a> {
    /// Statuses retried.
    pub statuses: &'a [u16],
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// First backoff; doubled each time, with jitter.
    pub backoff: Duration,
    /// Longest `Retry-After` honoured; a longer one is waited only this long.
    pub max_retry_after: Duration,
}

impl<'a> RetryPolicy<'a> {
    /// The policy of token requests: 429 and 5xx gateways, 3 attempts.
    pub fn token() -> RetryPolicy<'static> {
        RetryPolicy {
            statuses: &[429, 500, 502, 503, 504],
            attempts: 3,
            backoff: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(30),
        }
    }

    /// The policy of an endpoint.
    pub fn of(r: &'a compiler::ir::Retry) -> Self {
        RetryPolicy {
            statuses: &r.statuses,
            attempts: r.attempts.max(1),
            backoff: Duration::from_millis(r.backoff_ms),
            max_retry_after: Duration::from_millis(r.max_retry_after_ms),
        }
    }

    /// The wait before attempt `attempt + 1` (`attempt` from 1): the backoff doubled each
    /// time, with "equal jitter" (between half and all of it), or the server's `Retry-After`
    /// up to the cap.
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_retry_after);
        }
        let base = self
            .backoff
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(Duration::from_secs(60));
        let half = base / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// Reads `Retry-After` (RFC 9110 §10.2.3): seconds, or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// What a request's retries did, for the run's summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sent {
    /// Requests sent, retries included.
    pub requests: u64,
}

/// The HTTP client: rustls, TLS 1.2 at least, no redirects followed from token endpoints.
#[derive(Debug, Clone)]
pub struct Http {
    plain: reqwest::Client,
    redirecting: reqwest::Client,
}

impl Http {
    /// Builds the clients.
    pub fn new() -> Result<Self> {
        let build = |policy| {
            reqwest::Client::builder()
                .use_rustls_tls()
                .min_tls_version(reqwest::tls::Version::TLS_1_2)
                .redirect(policy)
                .user_agent(concat!("connector/", env!("CARGO_PKG_VERSION")))
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| Error::new(ErrorKind::Usage, format!("cannot start HTTP: {e}")))
        };
        Ok(Http {
            plain: build(reqwest::redirect::Policy::none())?,
            redirecting: build(same_origin_redirects())?,
        })
    }

    /// Sends once. `follow` follows up to 5 redirects (never from a token endpoint).
    pub async fn send_once(&self, req: &Outgoing, follow: bool) -> Result<Incoming> {
        let client = if follow {
            &self.redirecting
        } else {
            &self.plain
        };
        // The request is built here rather than through a builder, which would copy the
        // headers once more.
        let mut out = if req.url.username().is_empty() && req.url.password().is_none() {
            let mut out = reqwest::Request::new(req.method.clone(), req.url.clone());
            *out.headers_mut() = req.headers.clone();
            out
        } else {
            // The builder moves `user:password@` into a Basic `Authorization` header.
            let mut out = client
                .request(req.method.clone(), req.url.clone())
                .build()
                .map_err(|e| Error::new(ErrorKind::Usage, format!("{}: {e}", req.place())))?;
            for (name, value) in &req.headers {
                out.headers_mut().insert(name, value.clone());
            }
            out
        };
        *out.timeout_mut() = Some(req.timeout);
        if let Some((bytes, content_type)) = &req.body {
            let ct = HeaderValue::from_str(content_type).map_err(|_| {
                Error::new(
                    ErrorKind::Usage,
                    format!("`{content_type}` is not a valid content type"),
                )
            })?;
            out.headers_mut().insert(reqwest::header::CONTENT_TYPE, ct);
            *out.body_mut() = Some(bytes.clone().into());
        }
        let place = Place {
            method: req.method.as_str(),
            url: &req.url,
        };
        let mut resp = client
            .execute(out)
            .await
            .map_err(|e| classify(e, &place, req))?;
        let status = resp.status().as_u16();
        let headers = std::mem::take(resp.headers_mut());
        let body = match resp.content_length() {
            Some(len) if len > req.max_bytes => return Err(too_large(&place, req)),
            // The length is known and within the cap: one read, no copy.
            Some(_) => resp.bytes().await.map_err(|e| classify(e, &place, req))?,
            None => {
                let mut body = Vec::new();
                loop {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => {
                            if (body.len() + chunk.len()) as u64 > req.max_bytes {
                                return Err(too_large(&place, req));
                            }
                            body.extend_from_slice(&chunk);
                        }
                        Ok(None) => break,
                        Err(e) => return Err(classify(e, &place, req)),
                    }
                }
                bytes::Bytes::from(body)
            }
        };
        Ok(Incoming {
            status,
            headers,
            body,
        })
    }

    /// Sends with retries: on the policy's statuses and on connection errors (and on
    /// timeouts of idempotent methods), waiting between attempts. Returns the last response,
    /// whatever its status, or the last error.
    pub async fn send(
        &self,
        req: &Outgoing,
        policy: &RetryPolicy<'_>,
        follow: bool,
        sent: &mut Sent,
    ) -> Result<Incoming> {
        let idempotent = matches!(
            req.method,
            reqwest::Method::GET
                | reqwest::Method::HEAD
                | reqwest::Method::PUT
                | reqwest::Method::DELETE
        );
        let mut attempt = 1;
        loop {
            sent.requests += 1;
            let result = self.send_once(req, follow).await;
            let last = attempt >= policy.attempts;
            let wait = match &result {
                Ok(r) if policy.statuses.contains(&r.status) && !last => {
                    Some(policy.wait(attempt, retry_after(&r.headers)))
                }
                Err(e)
                    if !last
                        && (e.kind() == ErrorKind::Connect
                            || (e.kind() == ErrorKind::Timeout && idempotent)) =>
                {
                    Some(policy.wait(attempt, None))
                }
                _ => None,
            };
            match wait {
                None => return result,
                Some(wait) => {
                    match &result {
                        Ok(r) => tracing::info!(
                            status = r.status,
                            wait_ms = wait.as_millis() as u64,
                            attempt,
                            "{} {}: retrying",
                            req.method,
                            req.place()
                        ),
                        Err(e) => tracing::info!(
                            wait_ms = wait.as_millis() as u64,
                            attempt,
                            "{e}: retrying"
                        ),
                    }
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// Follows at most 5 redirects, and only within the origin of the first request: credentials
/// in custom headers (an API key, a session) must not reach another host. A redirect elsewhere
/// is returned as it is, and reported as an error status.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().map(|u| u.origin());
        if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else if first.is_some_and(|o| o != attempt.url().origin()) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}

fn too_large(place: &Place<'_>, req: &Outgoing) -> Error {
    let max = req.max_bytes;
    let knob = if req.configurable {
        " (`max_response_bytes`)"
    } else {
        ""
    };
    Error::new(
        ErrorKind::Response,
        format!("{place}: the response is larger than {max} bytes{knob}"),
    )
}

/// Turns a reqwest error into one line that says what failed.
fn classify(e: reqwest::Error, place: &Place<'_>, req: &Outgoing) -> Error {
    let host = match (req.url.host_str(), req.url.port_or_known_default()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => req.url.to_string(),
    };
    if let Some(tls) = tls_error(&e) {
        return Error::new(
            ErrorKind::Tls,
            format!("{place}: TLS handshake with {host} failed: {tls}"),
        );
    }
    if e.is_timeout() {
        return Error::new(
            ErrorKind::Timeout,
            format!(
                "{place}: no response within {} ms{}",
                req.timeout.as_millis(),
                if req.configurable {
                    " (`timeout_ms`)"
                } else {
                    ""
                }
            ),
        );
    }
    if e.is_connect() {
        let cause = root_cause(&e);
        return Error::new(
            ErrorKind::Connect,
            format!("{place}: cannot connect to {host}: {cause}"),
        );
    }
    Error::new(ErrorKind::Connect, format!("{place}: {}", root_cause(&e)))
}

/// The TLS error somewhere in the chain of causes, if there is one.
fn tls_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t.to_string());
        }
        // `io::Error::source` skips the error it wraps; look inside, through nested ones.
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(t) = tls_error(inner) {
                return Some(t);
            }
        }
        cur = err.source();
    }
    None
}

/// The innermost cause's message (the one that says "connection refused").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_retry_after_is_capped() {
        let p = RetryPolicy {
            statuses: &[429],
            attempts: 5,
            backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(2),
        };
        for _ in 0..50 {
            let w1 = p.wait(1, None);
            assert!(w1 >= Duration::from_millis(50) && w1 <= Duration::from_millis(100));
            let w3 = p.wait(3, None);
            assert!(w3 >= Duration::from_millis(200) && w3 <= Duration::from_millis(400));
        }
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.wait(1, Some(Duration::from_secs(90))),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    #[test]
    fn shown_urls_have_no_query() {
        let u = url::Url::parse("https://u:p@x.test/a?api_key=k#f").unwrap();
        assert_eq!(shown(&u), "https://x.test/a");
    }
}

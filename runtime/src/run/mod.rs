//! Running endpoints: inputs resolved, credentials applied, pages fetched, records
//! extracted.

pub mod body;
mod paginate;

pub use body::{compact, Body};
pub use paginate::{next_link, Pager};

/// A record as the API sent it: a slice of the page's body.
pub type Record = serde_json::value::RawValue;

use std::sync::Arc;
use std::time::{Duration, Instant};

use compiler::ir::Endpoint;

use crate::auth::{Authenticator, Credentials};
use crate::error::{Error, ErrorKind, Result};
use crate::http::{Http, Incoming, Place, RetryPolicy, Sent};
use crate::instance::Instance;
use crate::metrics::Metrics;
use crate::resolve::{resolve, Given};
use crate::secret::{scrub, Secret};
use crate::tokens::TokenCache;
use crate::value::{Scope, Values};

/// What a call did, for its summary line.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Records returned.
    pub records: u64,
    /// Pages fetched whose records were delivered.
    pub pages: u64,
    /// Requests sent to the API, retries and re-authenticated ones included.
    pub requests: u64,
    /// Requests sent to the token or auth endpoint by fetches this call waited for (not those
    /// of other callers or of background refreshes).
    pub token_requests: u64,
    /// Time taken.
    pub elapsed: Duration,
    /// Things the caller should know (a `max_pages` stop).
    pub warnings: Vec<String>,
}

/// `1 record`, `2 records`.
fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

impl Stats {
    /// `120 records, 3 pages, 3 requests, 1 token request, 41 ms`.
    pub fn summary(&self) -> String {
        format!(
            "{}, {}, {}, {}, {} ms",
            plural(self.records, "record"),
            plural(self.pages, "page"),
            plural(self.requests, "request"),
            plural(self.token_requests, "token request"),
            self.elapsed.as_millis()
        )
    }
}

/// What connections share: the HTTP client, the token cache and the metrics.
#[derive(Debug, Clone)]
pub struct Context {
    /// The HTTP client.
    pub http: Http,
    /// The token cache.
    pub tokens: Arc<TokenCache>,
    /// The counters.
    pub metrics: Arc<Metrics>,
}

impl Context {
    /// A context with an in-process token cache.
    pub fn new() -> Result<Self> {
        let metrics = Arc::new(Metrics::default());
        Ok(Context {
            http: Http::new()?,
            tokens: Arc::new(TokenCache::new(metrics.clone())),
            metrics,
        })
    }

    /// A context around an existing token cache (and its metrics).
    pub fn with_tokens(tokens: Arc<TokenCache>) -> Result<Self> {
        Ok(Context {
            http: Http::new()?,
            metrics: tokens.metrics().clone(),
            tokens,
        })
    }
}

/// An instance ready to call: its authenticator, and what it shares with other connections.
#[derive(Debug)]
pub struct Connection {
    auth: Authenticator,
    http: Http,
    metrics: Arc<Metrics>,
}

impl Connection {
    /// A connection for a loaded instance, with its own in-process token cache.
    pub fn new(instance: Instance) -> Result<Self> {
        Ok(Self::with_context(Arc::new(instance), &Context::new()?))
    }

    /// A connection that shares the HTTP client, the token cache and the metrics of `cx`.
    pub fn with_context(instance: Arc<Instance>, cx: &Context) -> Self {
        Connection {
            auth: Authenticator::new(instance, cx.http.clone(), cx.tokens.clone()),
            http: cx.http.clone(),
            metrics: cx.metrics.clone(),
        }
    }

    /// The instance.
    pub fn instance(&self) -> &Instance {
        self.auth.instance()
    }

    /// The authenticator (its cache and counters).
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    /// Fetches new credentials now (`connector auth`).
    pub async fn authenticate(&self) -> Result<Arc<Credentials>> {
        self.auth
            .refresh()
            .await
            .map_err(|e| self.scrubbed(e, None))
    }

    /// Runs `endpoint` with `inputs`, handing each record to `sink` as it arrives and
    /// `progress` the stats after each page.
    pub async fn call(
        &self,
        endpoint: &str,
        inputs: &[(String, Given)],
        sink: &mut (dyn FnMut(&Record) -> Result<()> + Send),
        progress: &mut (dyn FnMut(&Stats) + Send),
    ) -> Result<Stats> {
        let started = Instant::now();
        let mut stats = Stats::default();
        let result = self
            .call_inner(endpoint, inputs, sink, progress, &mut stats, started)
            .await;
        match result {
            // The elapsed time was taken after the last page.
            Ok(()) => Ok(stats),
            // Say how far the run got: the records of the pages before were delivered.
            Err(e) if stats.pages > 0 => Err(e.hint(format!(
                "page {} of `{endpoint}` failed after {} delivered from {}",
                stats.pages + 1,
                plural(stats.records, "record"),
                plural(stats.pages, "page"),
            ))),
            Err(e) => Err(e),
        }
    }

    async fn call_inner(
        &self,
        name: &str,
        inputs: &[(String, Given)],
        sink: &mut (dyn FnMut(&Record) -> Result<()> + Send),
        progress: &mut (dyn FnMut(&Stats) + Send),
        stats: &mut Stats,
        started: Instant,
    ) -> Result<()> {
        let instance = self.instance();
        let Some(endpoint) = instance.ir.endpoints.get(name) else {
            let names: Vec<&str> = instance.ir.endpoints.keys().map(String::as_str).collect();
            let help = compiler::suggest_help(name, &names, |n| format!("`{n}`"))
                .map(|h| format!("; {h}"))
                .unwrap_or_default();
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "the connector `{}` has no endpoint `{name}`{help}",
                    instance.ir.connector
                ),
            ));
        };
        let (inputs, problems) = resolve(&endpoint.inputs, inputs, Some(&instance.vars), "input");
        if !problems.is_empty() {
            let text: Vec<String> = problems
                .iter()
                .map(|p| match &p.help {
                    Some(h) => format!("{} ({h})", p.message),
                    None => p.message.clone(),
                })
                .collect();
            return Err(Error::new(
                ErrorKind::Usage,
                format!("endpoint `{name}`: {}", text.join("; ")),
            ));
        }
        let (mut pager, max_pages) = Pager::new(endpoint.pagination.as_ref());
        loop {
            let page = pager.request();
            let (resp, url, creds) = self
                .page(endpoint, &inputs, &page, stats)
                .await
                .map_err(|e| self.scrubbed(e, None))?;
            let place = Place {
                method: endpoint.request.method.as_str(),
                url: &url,
            };
            let doc = parse(&resp, &place).map_err(|e| self.scrubbed(e, Some(&creds)))?;
            let records = records(&doc, endpoint.records.as_deref(), &place)
                .map_err(|e| self.scrubbed(e, Some(&creds)))?;
            let count = records.len();
            for r in records {
                stats.records += 1;
                sink(r)?;
            }
            stats.pages += 1;
            stats.elapsed = started.elapsed();
            progress(stats);
            let more = pager
                .advance(&doc, resp.header("link"), count, &url)
                .map_err(|e| e.context(&place))?;
            if !more {
                return Ok(());
            }
            if stats.pages >= u64::from(max_pages) {
                let w = format!(
                    "endpoint `{name}`: stopped after `max_pages` ({max_pages}) pages; more remain"
                );
                tracing::warn!("{w}");
                stats.warnings.push(w);
                return Ok(());
            }
        }
    }

    /// Sends one page request with credentials; on a `reauth_on` status, drops the
    /// credentials, fetches new ones and sends it once more.
    async fn page(
        &self,
        endpoint: &Endpoint,
        inputs: &Values,
        page: &paginate::PageRequest,
        stats: &mut Stats,
    ) -> Result<(Incoming, url::Url, Arc<Credentials>)> {
        let policy = RetryPolicy::of(&endpoint.retry);
        let mut reauthenticated = false;
        loop {
            let (creds, token_requests) = self.auth.credentials_for_call().await?;
            stats.token_requests += token_requests;
            let instance = self.instance();
            let scope = Scope {
                vars: Some(&instance.vars),
                auth: Some(&creds.fields),
                input: Some(inputs),
                page: Some(&page.values),
            };
            let mut req = crate::request::build(
                &endpoint.request,
                &scope,
                &page.query,
                page.url.clone(),
                Duration::from_millis(endpoint.timeout_ms),
                endpoint.max_response_bytes,
            )?;
            self.auth.apply(&creds, &mut req)?;
            tracing::debug!("{} {}", req.method, req.place());
            let mut sent = Sent::default();
            let t = Instant::now();
            let result = self.http.send(&req, &policy, true, &mut sent).await;
            stats.requests += sent.requests;
            match &result {
                Ok(r) => self.metrics.upstream(r.status, t.elapsed()),
                Err(_) => {
                    self.metrics
                        .upstream_errors
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            let resp = result?;
            let place = Place {
                method: req.method.as_str(),
                url: &req.url,
            };
            if endpoint.reauth_on.contains(&resp.status) {
                if reauthenticated {
                    return Err(status_error(&resp, &place).context(
                        "the API refused fresh credentials too (check the account's permissions)",
                    ));
                }
                tracing::info!(
                    status = resp.status,
                    "{place}: credentials refused; authenticating again"
                );
                // Boxed: rare, and its future (Redis included) is large.
                Box::pin(self.auth.invalidate(&creds)).await;
                reauthenticated = true;
                continue;
            }
            if !(200..300).contains(&resp.status) {
                return Err(self.scrubbed(status_error(&resp, &place), Some(&creds)));
            }
            return Ok((resp, req.url, creds));
        }
    }

    /// The error with every known secret (the instance's, and the credentials') removed.
    fn scrubbed(&self, e: Error, creds: Option<&Credentials>) -> Error {
        let secrets: Vec<&Secret> = self
            .instance()
            .secrets()
            .chain(creds.into_iter().flat_map(|c| c.secrets()))
            .collect();
        let text = scrub(e.message(), secrets);
        if text == e.message() {
            e
        } else {
            let mut new = Error::new(e.kind(), text);
            if let Some(s) = e.status() {
                new = new.with_status(s);
            }
            new
        }
    }
}

/// An error status as one line, with the start of the body.
fn status_error(resp: &Incoming, place: &Place<'_>) -> Error {
    let body = String::from_utf8_lossy(&resp.body);
    let body = crate::auth::response::clean(body.trim());
    let detail = if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    };
    Error::new(
        ErrorKind::Status,
        format!("{place} answered {}{detail}", resp.status_text()),
    )
    .with_status(resp.status)
}

/// The response body, checked to be JSON (an empty body is `null`).
fn parse<'a>(resp: &'a Incoming, place: &Place<'_>) -> Result<Body<'a>> {
    Body::parse(&resp.body).map_err(|e| {
        Error::new(
            ErrorKind::Response,
            format!(
                "{place} answered {} with a body that is not JSON {}: {e}",
                resp.status_text(),
                resp.body_kind()
            ),
        )
    })
}

/// The records of a page: the list at `pointer`, or the whole response as one record.
fn records<'a>(
    doc: &Body<'a>,
    pointer: Option<&str>,
    place: &Place<'_>,
) -> Result<Vec<&'a Record>> {
    let Some(p) = pointer else {
        return Ok(doc.root().into_iter().collect());
    };
    match doc.pointer(p) {
        None => match doc.value("/error").filter(|e| !e.is_null()) {
            // A 200 that carries an error instead of the records is not an empty page.
            Some(error) => Err(Error::new(
                ErrorKind::Response,
                format!(
                    "{place}: the response has an `error` member and no `{p}`: {}",
                    crate::auth::response::clean(&match error {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    })
                ),
            )),
            None => Ok(Vec::new()),
        },
        Some(v) => match body::Kind::of(v) {
            body::Kind::Null => Ok(Vec::new()),
            body::Kind::List => body::items(v).map_err(|e| {
                Error::new(ErrorKind::Response, format!("{place}: `{p}`: {e}"))
            }),
            other => Err(Error::new(
                ErrorKind::Response,
                format!(
                    "{place}: `records` points at `{p}`, which is {other} in the response, not a list"
                ),
            )),
        },
    }
}

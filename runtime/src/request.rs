//! Building an HTTP request from a request of the IR.

use std::time::Duration;

use compiler::ir::{Body, Method, Request};

use crate::error::Result;
use crate::http::Outgoing;
use crate::render;
use crate::value::Scope;

/// The reqwest method of an IR method.
pub fn method(m: Method) -> reqwest::Method {
    match m {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
        Method::Head => reqwest::Method::HEAD,
    }
}

/// Renders `req` over `scope`: the URL with its values percent-encoded, the query parameters
/// (those that render empty left out) followed by `extra` ones not already there, the
/// headers, and the body. With `url` given (a `Link: rel="next"` URL), that URL is used as
/// it is instead of the template and its query.
pub fn build(
    req: &Request,
    scope: &Scope<'_>,
    extra: &[(String, String)],
    url: Option<url::Url>,
    timeout: Duration,
    max_bytes: u64,
) -> Result<Outgoing> {
    let url = match url {
        Some(u) => u,
        None => {
            let mut u = render::url(&req.url, scope)?;
            let mut pairs = render::pairs(&req.query, scope);
            for (k, v) in extra {
                if !pairs.iter().any(|(n, _)| n == k) {
                    pairs.push((k.clone(), v.clone()));
                }
            }
            append_query(&mut u, &pairs);
            u
        }
    };
    if url.as_str().len() > render::MAX_URL_BYTES {
        return Err(render::long_url(url.as_str().len()));
    }
    let mut out = Outgoing::new(method(req.method), url);
    out.timeout = timeout;
    out.max_bytes = max_bytes;
    for (name, t) in &req.headers {
        let value = render::header(name, t, scope)?;
        out.header_owned(name, value)?;
    }
    out.body = match &req.body {
        None => None,
        Some(Body::Form(fields)) => Some((
            render::form_body(&render::pairs(fields, scope)).into_bytes(),
            "application/x-www-form-urlencoded".to_owned(),
        )),
        Some(Body::Json(t)) => Some((
            serde_json::to_vec(&render::json(t, scope)).unwrap_or_default(),
            "application/json".to_owned(),
        )),
        Some(Body::Raw {
            template,
            content_type,
        }) => Some((
            render::text(template, scope).into_bytes(),
            content_type.clone(),
        )),
    };
    Ok(out)
}

/// Appends query pairs to a URL, encoded by the form serializer.
pub fn append_query(u: &mut url::Url, pairs: &[(String, String)]) {
    if pairs.is_empty() {
        return;
    }
    let mut q = u.query_pairs_mut();
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
}

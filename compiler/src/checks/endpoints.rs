//! Checks of endpoints and request shapes: `missing-base-url`, `pagination-without-records`,
//! `body-shape`, `invalid-pointer`, `invalid-status`, `invalid-header-name`.

use connector_spec::endpoint::Pagination;
use connector_spec::{AuthMethod, Body};

use super::variables::header_maps;
use super::Ctx;
use crate::diagnostic::Diagnostic;
use crate::yaml::{escape, join};

/// Whether a URL template is absolute: a scheme, or a reference that supplies one.
pub fn is_absolute(url: &str) -> bool {
    let t = url.trim_start();
    t.starts_with("{{")
        || t.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        })
}

/// `missing-base-url`: a relative endpoint URL with no `base_url` to join it to.
pub fn check_base_url(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    if ctx.connector.base_url.is_some() {
        return;
    }
    for (name, e) in &ctx.connector.endpoints {
        if !is_absolute(&e.url) {
            let at = format!("/endpoints/{}/url", escape(name));
            out.push(
                Diagnostic::error(
                    "missing-base-url",
                    format!("the URL of `{name}` is relative, and the connector has no `base_url`"),
                )
                .at(at.clone(), ctx.locs.value(&at))
                .help("add `base_url: \"https://…\"` at the top level, or write an absolute URL"),
            );
        }
    }
}

/// `pagination-without-records`: pages are walked by counting records, so the endpoint must
/// say where they are.
pub fn check_pagination(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for (name, e) in &ctx.connector.endpoints {
        if e.pagination.is_some() && e.records.is_none() {
            let at = format!("/endpoints/{}/pagination", escape(name));
            out.push(
                Diagnostic::error("pagination-without-records", format!("`{name}` pages through results but has no `records`"))
                    .at(at.clone(), ctx.locs.key(&at))
                    .help("add `records: /path/to/array` (a JSON pointer to the list of records in each page)"),
            );
        }
    }
}

/// `body-shape`: exactly one of `form`, `json`, `raw`; `content_type` with `raw` only.
pub fn check_bodies(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    let mut bodies: Vec<(String, &Body)> = Vec::new();
    for (name, e) in &ctx.connector.endpoints {
        if let Some(b) = &e.body {
            bodies.push((format!("/endpoints/{}/body", escape(name)), b));
        }
    }
    for (name, m) in &ctx.connector.auth {
        let body = match m {
            AuthMethod::Custom(c) => c.request.body.as_ref(),
            other => other.token_request().and_then(|r| r.body.as_ref()),
        };
        if let Some(b) = body {
            bodies.push((format!("/auth/{}/request/body", escape(name)), b));
        }
    }
    for (at, b) in bodies {
        let given: Vec<&str> = [
            ("form", b.form.is_some()),
            ("json", b.json.is_some()),
            ("raw", b.raw.is_some()),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(k, _)| k)
        .collect();
        if given.len() != 1 {
            let message = if given.is_empty() {
                "the body has none of `form`, `json` or `raw`".to_owned()
            } else {
                format!(
                    "the body has {}: a body is exactly one of them",
                    given
                        .iter()
                        .map(|g| format!("`{g}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                )
            };
            let point = given
                .get(1)
                .map(|g| format!("{at}/{g}"))
                .unwrap_or_else(|| at.clone());
            out.push(
                Diagnostic::error("body-shape", message)
                    .at(point.clone(), ctx.locs.key(&point))
                    .help("keep one of `form:`, `json:` or `raw:` (with `content_type:`)"),
            );
        }
        if b.raw.is_some() && b.content_type.is_none() {
            let point = format!("{at}/raw");
            out.push(
                Diagnostic::error("body-shape", "a `raw` body needs a `content_type`")
                    .at(point.clone(), ctx.locs.key(&point))
                    .help("add e.g. `content_type: text/xml` beside `raw:`"),
            );
        }
        if b.raw.is_none() && b.content_type.is_some() {
            let point = format!("{at}/content_type");
            out.push(
                Diagnostic::error("body-shape", "`content_type` applies to a `raw` body only")
                    .at(point.clone(), ctx.locs.key(&point))
                    .help("`form` and `json` bodies set their content type themselves: remove `content_type`"),
            );
        }
    }
}

/// Whether `p` is a JSON pointer (RFC 6901): empty, or `/`-separated with `~` only in `~0`/`~1`.
pub fn is_pointer(p: &str) -> bool {
    if p.is_empty() {
        return true;
    }
    if !p.starts_with('/') {
        return false;
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

/// `invalid-pointer`: `records` and the pagination pointers must be JSON pointers.
pub fn check_pointers(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for (name, e) in &ctx.connector.endpoints {
        let base = format!("/endpoints/{}", escape(name));
        let mut pointers: Vec<(String, &str)> = Vec::new();
        if let Some(r) = &e.records {
            pointers.push((format!("{base}/records"), r));
        }
        match &e.pagination {
            Some(Pagination::Offset(o)) => {
                if let Some(t) = &o.total {
                    pointers.push((format!("{base}/pagination/total"), t));
                }
            }
            Some(Pagination::Page(p)) => {
                if let Some(t) = &p.total_pages {
                    pointers.push((format!("{base}/pagination/total_pages"), t));
                }
            }
            Some(Pagination::Cursor(c)) => {
                pointers.push((format!("{base}/pagination/cursor"), &c.cursor))
            }
            _ => {}
        }
        for (at, p) in pointers {
            if !is_pointer(p) {
                let hint = if p.starts_with('/') {
                    "write `~` as `~0` and `/` inside a key as `~1`".to_owned()
                } else {
                    format!(
                        "a JSON pointer starts with `/`: did you mean `/{}`?",
                        p.replace('.', "/")
                    )
                };
                out.push(
                    Diagnostic::error("invalid-pointer", format!("`{p}` is not a JSON pointer"))
                        .at(at.clone(), ctx.locs.value(&at))
                        .help(hint),
                );
            }
        }
    }
}

/// `invalid-status`: retry and re-authentication statuses must be HTTP statuses.
pub fn check_statuses(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for (name, e) in &ctx.connector.endpoints {
        let base = format!("/endpoints/{}", escape(name));
        let lists = [
            (format!("{base}/reauth_on"), e.reauth_on.as_deref()),
            (
                format!("{base}/retry/statuses"),
                e.retry.as_ref().and_then(|r| r.statuses.as_deref()),
            ),
        ];
        for (at, list) in lists {
            for (i, status) in list.unwrap_or_default().iter().enumerate() {
                if !(100..=599).contains(status) {
                    let item = format!("{at}/{i}");
                    out.push(
                        Diagnostic::error(
                            "invalid-status",
                            format!("`{status}` is not an HTTP status"),
                        )
                        .at(item.clone(), ctx.locs.value(&item))
                        .help("HTTP statuses are between 100 and 599"),
                    );
                } else if status / 100 == 2 {
                    let item = format!("{at}/{i}");
                    out.push(
                        Diagnostic::error(
                            "invalid-status",
                            format!("`{status}` is a success status"),
                        )
                        .at(item.clone(), ctx.locs.value(&item))
                        .help("only failures are retried"),
                    );
                }
            }
        }
    }
}

/// `invalid-header-name`: a header name must be an RFC 9110 token.
pub fn check_header_names(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
    };
    let mut maps = header_maps(ctx);
    maps.sort_by(|a, b| a.0.cmp(&b.0));
    for (base, keys) in maps {
        for k in keys {
            if !token(k) {
                let at = join(&base, k);
                out.push(
                    Diagnostic::error("invalid-header-name", format!("`{k}` is not a valid header name"))
                        .at(at.clone(), ctx.locs.key(&at))
                        .help("header names are letters, digits and `!#$%&'*+-.^_`|~`, without spaces or `:`"),
                );
            }
        }
    }
}

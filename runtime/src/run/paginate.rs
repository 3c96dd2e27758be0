//! Pagination: what each style sends, and when it stops.

use compiler::ir::Pagination;

use crate::error::{Error, ErrorKind, Result};
use crate::value::{Value, Values};

/// The state of a paginated call.
#[derive(Debug, Clone)]
pub enum Pager {
    /// One request.
    Single,
    /// Offset and limit.
    Offset {
        /// Offset of the next page.
        offset: u64,
        /// Records per page.
        limit: u32,
        /// Parameter names.
        params: (String, String),
        /// JSON pointer to the total.
        total: Option<String>,
    },
    /// Page number and size.
    Page {
        /// Number of the next page.
        number: u64,
        /// First page number.
        start: u64,
        /// Records per page.
        size: u32,
        /// Parameter names.
        params: (String, String),
        /// JSON pointer to the page count.
        total_pages: Option<String>,
    },
    /// A cursor from each response.
    Cursor {
        /// The cursor to send (none on the first request).
        cursor: Option<String>,
        /// JSON pointer to the next cursor.
        pointer: String,
        /// Parameter name.
        param: String,
    },
    /// `Link: <…>; rel="next"`.
    Link {
        /// The URL of the next page (none on the first request).
        next: Option<url::Url>,
        /// The origin of the first request; links elsewhere are not followed.
        origin: Option<url::Origin>,
    },
}

/// What one page request adds.
#[derive(Debug, Default)]
pub struct PageRequest {
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// `page.*` values.
    pub values: Values,
    /// A URL to use instead of the endpoint's.
    pub url: Option<url::Url>,
}

impl Pager {
    /// The pager of an endpoint, and its `max_pages`.
    pub fn new(p: Option<&Pagination>) -> (Pager, u32) {
        match p {
            None => (Pager::Single, 1),
            Some(Pagination::Offset {
                limit,
                offset_param,
                limit_param,
                total,
                max_pages,
            }) => (
                Pager::Offset {
                    offset: 0,
                    limit: *limit,
                    params: (offset_param.clone(), limit_param.clone()),
                    total: total.clone(),
                },
                *max_pages,
            ),
            Some(Pagination::Page {
                size,
                start,
                page_param,
                size_param,
                total_pages,
                max_pages,
            }) => (
                Pager::Page {
                    number: u64::from(*start),
                    start: u64::from(*start),
                    size: *size,
                    params: (page_param.clone(), size_param.clone()),
                    total_pages: total_pages.clone(),
                },
                *max_pages,
            ),
            Some(Pagination::Cursor {
                cursor,
                cursor_param,
                max_pages,
            }) => (
                Pager::Cursor {
                    cursor: None,
                    pointer: cursor.clone(),
                    param: cursor_param.clone(),
                },
                *max_pages,
            ),
            Some(Pagination::LinkHeader { max_pages }) => (
                Pager::Link {
                    next: None,
                    origin: None,
                },
                *max_pages,
            ),
        }
    }

    /// What the next request adds.
    pub fn request(&self) -> PageRequest {
        let mut r = PageRequest::default();
        let mut put = |name: &str, value: serde_json::Value, param: Option<&str>| {
            if let Some(p) = param {
                let text = match &value {
                    serde_json::Value::String(s) => s.clone(),
                    v => v.to_string(),
                };
                r.query.push((p.to_owned(), text));
            }
            r.values.insert(name.to_owned(), Value::Plain(value));
        };
        match self {
            Pager::Single => {}
            Pager::Offset {
                offset,
                limit,
                params,
                ..
            } => {
                put("offset", (*offset).into(), Some(&params.0));
                put("limit", (*limit).into(), Some(&params.1));
            }
            Pager::Page {
                number,
                size,
                params,
                ..
            } => {
                put("number", (*number).into(), Some(&params.0));
                put("size", (*size).into(), Some(&params.1));
            }
            Pager::Cursor { cursor, param, .. } => {
                if let Some(c) = cursor {
                    put("cursor", c.clone().into(), Some(param));
                }
            }
            Pager::Link { next, .. } => r.url = next.clone(),
        }
        r
    }

    /// Moves to the next page after a response with `count` records. `Ok(false)` when there
    /// is none.
    pub fn advance(
        &mut self,
        doc: &super::Body<'_>,
        link: Option<&str>,
        count: usize,
        url: &url::Url,
    ) -> Result<bool> {
        let count = count as u64;
        Ok(match self {
            Pager::Single => false,
            Pager::Offset {
                offset,
                limit,
                total,
                ..
            } => {
                *offset += u64::from(*limit);
                let total = total.as_ref().and_then(|p| number(doc.value(p)));
                count >= u64::from(*limit) && total.is_none_or(|t| *offset < t)
            }
            Pager::Page {
                number: n,
                start,
                size,
                total_pages,
                ..
            } => {
                let pages = total_pages.as_ref().and_then(|p| number(doc.value(p)));
                let fetched = *n - *start + 1;
                *n += 1;
                count >= u64::from(*size) && pages.is_none_or(|t| fetched < t)
            }
            Pager::Cursor {
                cursor, pointer, ..
            } => {
                let next = match doc.value(pointer) {
                    Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
                    Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                match next {
                    Some(n) if cursor.as_deref() == Some(n.as_str()) => {
                        return Err(Error::new(
                            ErrorKind::Response,
                            format!(
                                "the API sent the same cursor twice at `{pointer}`; stopped to avoid a loop"
                            ),
                        ))
                    }
                    Some(n) => {
                        *cursor = Some(n);
                        true
                    }
                    None => false,
                }
            }
            Pager::Link { next, origin } => {
                let origin = origin.get_or_insert_with(|| url.origin());
                match link.and_then(next_link) {
                    None => false,
                    Some(target) => {
                        let u = url.join(&target).map_err(|e| {
                            Error::new(
                                ErrorKind::Response,
                                format!("the `Link` header's next URL is not valid: {e}"),
                            )
                        })?;
                        if &u.origin() != origin {
                            return Err(Error::new(
                                ErrorKind::Response,
                                format!(
                                    "the `Link` header's next page is on another origin ({}); it is not followed, so that credentials stay with {}",
                                    u.origin().ascii_serialization(),
                                    origin.ascii_serialization()
                                ),
                            ));
                        }
                        *next = Some(u);
                        true
                    }
                }
            }
        })
    }
}

fn number(v: Option<serde_json::Value>) -> Option<u64> {
    match v? {
        serde_json::Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The target of the `rel="next"` link of a `Link` header (RFC 8288 §3): links are
/// separated by commas outside `<…>` and quotes; `rel` may list several relation types.
pub fn next_link(header: &str) -> Option<String> {
    let mut rest = header;
    loop {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        rest = &rest[end + 1..];
        // The parameters run to the next comma outside quotes.
        let mut in_quotes = false;
        let mut cut = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '"' => in_quotes = !in_quotes,
                ',' if !in_quotes => {
                    cut = i;
                    break;
                }
                _ => {}
            }
        }
        let params = &rest[..cut];
        for p in params.split(';') {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("rel")
                && v.trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            {
                return Some(target.to_owned());
            }
        }
        rest = &rest[cut..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(
                r#"<https://a.test/x?page=2>; rel="next", <https://a.test/x?page=9>; rel="last""#
            ),
            Some("https://a.test/x?page=2".into())
        );
        assert_eq!(
            next_link(r#"<https://a.test/1>; rel="prev"; title="a, b", </x?p=3>; rel="last next""#),
            Some("/x?p=3".into())
        );
        assert_eq!(next_link(r#"<https://a.test/1>; rel=prev"#), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn offset_stops_on_a_short_page_or_the_total() {
        let (mut p, _) = Pager::new(Some(&Pagination::Offset {
            limit: 50,
            offset_param: "offset".into(),
            limit_param: "limit".into(),
            total: Some("/total".into()),
            max_pages: 10,
        }));
        let u = url::Url::parse("http://x.test/").unwrap();
        let text = r#"{"total": 120}"#;
        let doc = super::super::Body::parse(text.as_bytes()).unwrap();
        assert!(p.advance(&doc, None, 50, &u).unwrap());
        assert!(p.advance(&doc, None, 50, &u).unwrap());
        assert_eq!(p.request().query[0], ("offset".into(), "100".into()));
        assert!(!p.advance(&doc, None, 20, &u).unwrap());
        let (mut p, _) = Pager::new(Some(&Pagination::Offset {
            limit: 50,
            offset_param: "offset".into(),
            limit_param: "limit".into(),
            total: Some("/total".into()),
            max_pages: 10,
        }));
        // Exactly on the total: no empty page is fetched.
        let text = r#"{"total": 50}"#;
        let doc = super::super::Body::parse(text.as_bytes()).unwrap();
        assert!(!p.advance(&doc, None, 50, &u).unwrap());
    }
}

//! Endpoints: the API calls a connector offers.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::connector::Variable;

/// An API call: its request, its inputs, where its records are and how it pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// What the endpoint does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// HTTP method. Defaults to `GET`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// URL (a template): absolute, or a path joined to the connector's `base_url`. Values are
    /// percent-encoded for you.
    pub url: String,
    /// Query parameters (templates). A parameter that renders empty is left out.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub query: IndexMap<String, String>,
    /// Headers (templates).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub headers: IndexMap<String, String>,
    /// Body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// Inputs the caller passes, usable as `input.NAME`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub inputs: IndexMap<String, Variable>,
    /// JSON pointer to the array of records in the response, e.g. `/entities`. Without it the
    /// whole response is one record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
    /// How to fetch the following pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
    /// Timeout of each request, in milliseconds. Defaults to 5000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
    /// Largest response body accepted, in bytes. Defaults to 10 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_response_bytes: Option<u64>,
    /// When and how often to retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Statuses on which the token is dropped, fetched again and the request retried once.
    /// Defaults to `[401]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reauth_on: Option<Vec<StatusCode>>,
}

/// An HTTP status code.
pub type StatusCode = u16;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// HEAD
    Head,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
        }
    }
}

/// A request body: exactly one of `form`, `json` or `raw`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Body {
    /// Form fields, sent as `application/x-www-form-urlencoded` (templates; a field that
    /// renders empty is left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<IndexMap<String, String>>,
    /// A JSON document; every string in it is a template, and a string that is exactly one
    /// reference keeps the value's JSON type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<serde_json::Value>,
    /// A raw body (a template), sent as it renders: the escape hatch. Needs `content_type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// Content type of a `raw` body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
}

/// How an endpoint fetches its following pages. Every style stops at `max_pages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Pagination {
    /// `offset` and `limit` parameters; stops when a page is shorter than the limit or the
    /// offset reaches the total.
    Offset(OffsetPagination),
    /// A page number and a page size; stops on a short page or at the page count.
    Page(PagePagination),
    /// A cursor read from each response and sent with the next request.
    Cursor(CursorPagination),
    /// The `Link` header's `rel="next"` URL (RFC 8288).
    LinkHeader(LinkHeaderPagination),
}

impl Pagination {
    /// The `type` written in connector files.
    pub fn type_name(&self) -> &'static str {
        match self {
            Pagination::Offset(_) => "offset",
            Pagination::Page(_) => "page",
            Pagination::Cursor(_) => "cursor",
            Pagination::LinkHeader(_) => "link_header",
        }
    }

    /// The most pages fetched, if set.
    pub fn max_pages(&self) -> Option<u32> {
        match self {
            Pagination::Offset(p) => p.max_pages,
            Pagination::Page(p) => p.max_pages,
            Pagination::Cursor(p) => p.max_pages,
            Pagination::LinkHeader(p) => p.max_pages,
        }
    }
}

/// Offset pagination. `page.offset` and `page.limit` are available to templates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OffsetPagination {
    /// Records per page. Defaults to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub limit: Option<u32>,
    /// Query parameter carrying the offset. Defaults to `offset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_param: Option<String>,
    /// Query parameter carrying the limit. Defaults to `limit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_param: Option<String>,
    /// JSON pointer to the total number of records, if the API gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<String>,
    /// Most pages fetched. Defaults to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_pages: Option<u32>,
}

/// Page-number pagination. `page.number` and `page.size` are available to templates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagePagination {
    /// Records per page. Defaults to 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub size: Option<u32>,
    /// Number of the first page. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u32>,
    /// Query parameter carrying the page number. Defaults to `page`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_param: Option<String>,
    /// Query parameter carrying the page size. Defaults to `page_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_param: Option<String>,
    /// JSON pointer to the number of pages, if the API gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_pages: Option<String>,
    /// Most pages fetched. Defaults to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_pages: Option<u32>,
}

/// Cursor pagination. `page.cursor` is available to templates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CursorPagination {
    /// JSON pointer to the next cursor in the response; stops when it is absent, null or
    /// empty.
    pub cursor: String,
    /// Query parameter carrying the cursor. Defaults to `cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_param: Option<String>,
    /// Most pages fetched. Defaults to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_pages: Option<u32>,
}

/// Link header pagination (RFC 8288 `rel="next"`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkHeaderPagination {
    /// Most pages fetched. Defaults to 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_pages: Option<u32>,
}

/// Retry policy for transient failures.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// Statuses retried. Defaults to `[429, 502, 503, 504]`; connection errors are always
    /// retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statuses: Option<Vec<StatusCode>>,
    /// Attempts in all, the first included. Defaults to 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub attempts: Option<u32>,
    /// First backoff in milliseconds, doubled each time, with jitter. Defaults to 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
    /// Longest wait honoured from a `Retry-After` header, in milliseconds. Defaults to 30000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry_after_ms: Option<u64>,
}

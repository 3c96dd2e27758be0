//! Injected faults: error statuses, delays and token expiry on chosen requests.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};

/// A fault injected into matching requests (every route except `/_sandbox/*`).
///
/// As JSON (`POST /_sandbox/faults`), every field but `path` is optional:
/// `{"path": "/items", "method": "GET", "skip": 0, "times": 1, "status": 429,
/// "headers": {"Retry-After": "1"}, "body": "...", "content_type": "application/json",
/// "delay_ms": 0, "expire_tokens": false}`. Unknown fields are refused.
///
/// A matching fault first lets [`skip`](Fault::skip) matching requests through, then applies
/// [`times`](Fault::times) times, then is removed. Applying it sleeps
/// [`delay_ms`](Fault::delay_ms), revokes every token and session if
/// [`expire_tokens`](Fault::expire_tokens), then answers with [`status`](Fault::status) if set,
/// or else lets the normal handler answer. Faults are tried in the order added, and the first
/// one that matches a request owns it, even while it is still skipping requests: the faults
/// after it are not consulted for that request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// The request path, matched exactly, or as a prefix when it ends with `*` (`*` alone
    /// matches every path).
    pub path: String,
    /// The method to match (case-insensitive); `None` matches every method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// How many matching requests go through untouched before the fault applies.
    #[serde(default)]
    pub skip: u64,
    /// How many times the fault applies before it is removed; 0 is forever.
    #[serde(default = "one")]
    pub times: u64,
    /// The status to answer with (200..=599); `None` lets the normal handler answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Headers of the fault response, e.g. `Retry-After`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body of the fault response; by default a JSON error object naming the status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The content type of the fault response; by default `application/json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// A delay before answering, in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
    /// Revoke every issued token and session before answering.
    #[serde(default)]
    pub expire_tokens: bool,
}

fn one() -> u64 {
    1
}

impl Fault {
    /// A fault on `path` that does nothing yet: any method, no skip, applied once, no status.
    /// Set the fields with struct update syntax:
    /// `Fault { status: Some(503), times: 2, ..Fault::new("/items") }`.
    pub fn new(path: impl Into<String>) -> Fault {
        Fault {
            path: path.into(),
            method: None,
            skip: 0,
            times: 1,
            status: None,
            headers: BTreeMap::new(),
            body: None,
            content_type: None,
            delay_ms: 0,
            expire_tokens: false,
        }
    }

    /// Checks what the JSON types cannot: the path, the status and the headers.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(self.path.starts_with('/') || self.path == "*") {
            return Err(format!(
                "`path` must start with `/` (or be `*`), not `{}`",
                self.path
            ));
        }
        if let Some(status) = self.status {
            if !(200..=599).contains(&status) {
                return Err(format!("`status` must be in 200..=599, not {status}"));
            }
        }
        for (name, value) in &self.headers {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a valid header name"))?;
            HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header `{name}` is not a valid header value"))?;
        }
        if let Some(content_type) = &self.content_type {
            HeaderValue::from_str(content_type)
                .map_err(|_| format!("`{content_type}` is not a valid content type"))?;
        }
        if let Some(method) = &self.method {
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(format!("`{method}` is not an HTTP method"));
            }
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let path_matches = match self.path.strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == self.path,
        };
        path_matches
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    }

    /// The status of the fault response (validated to be a real status).
    pub(crate) fn status_code(&self) -> Option<StatusCode> {
        self.status
            .map(|s| StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
    }
}

/// An installed fault and how many requests it has matched.
#[derive(Debug, Clone)]
pub(crate) struct Active {
    pub(crate) fault: Fault,
    matched: u64,
}

impl Active {
    pub(crate) fn new(fault: Fault) -> Active {
        Active { fault, matched: 0 }
    }
}

/// Finds the first fault matching the request and counts the request against it; returns the
/// fault to apply, if it is past its `skip`. A fault applied its `times` is removed.
pub(crate) fn take(faults: &mut Vec<Active>, method: &str, path: &str) -> Option<Fault> {
    let index = faults.iter().position(|a| a.fault.matches(method, path))?;
    let active = &mut faults[index];
    active.matched += 1;
    if active.matched <= active.fault.skip {
        return None;
    }
    let applied = active.matched - active.fault.skip;
    let fault = active.fault.clone();
    if fault.times != 0 && applied >= fault.times {
        faults.remove(index);
    }
    Some(fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_then_times_then_gone() {
        let mut faults = vec![Active::new(Fault {
            skip: 2,
            times: 2,
            status: Some(500),
            ..Fault::new("/items")
        })];
        let outcomes: Vec<bool> = (0..6)
            .map(|_| take(&mut faults, "GET", "/items").is_some())
            .collect();
        assert_eq!(outcomes, [false, false, true, true, false, false]);
        assert!(faults.is_empty());
    }

    #[test]
    fn times_zero_is_forever() {
        let mut faults = vec![Active::new(Fault {
            times: 0,
            ..Fault::new("/items")
        })];
        for _ in 0..50 {
            assert!(take(&mut faults, "GET", "/items").is_some());
        }
        assert_eq!(faults.len(), 1);
    }

    #[test]
    fn prefix_method_and_order() {
        let mut faults = vec![
            Active::new(Fault {
                method: Some("post".into()),
                status: Some(500),
                ..Fault::new("/items*")
            }),
            Active::new(Fault {
                status: Some(503),
                ..Fault::new("*")
            }),
        ];
        assert_eq!(
            take(&mut faults, "GET", "/items/3").and_then(|f| f.status),
            Some(503)
        );
        assert_eq!(
            take(&mut faults, "POST", "/items/3").and_then(|f| f.status),
            Some(500)
        );
        assert!(take(&mut faults, "POST", "/items").is_none());
        assert!(faults.is_empty());
    }

    #[test]
    fn json_defaults_and_validation() {
        let fault: Fault = serde_json::from_str(r#"{"path": "/x"}"#).unwrap();
        assert_eq!(fault, Fault::new("/x"));
        assert!(serde_json::from_str::<Fault>(r#"{"path": "/x", "stauts": 500}"#).is_err());
        assert!(Fault {
            status: Some(99),
            ..Fault::new("/x")
        }
        .validate()
        .is_err());
        assert!(Fault::new("x").validate().is_err());
        let mut bad_header = Fault::new("/x");
        bad_header.headers.insert("Retry After".into(), "1".into());
        assert!(bad_header.validate().is_err());
        assert!(Fault::new("*").validate().is_ok());
    }
}

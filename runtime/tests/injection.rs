//! The injection suite: hostile values (delimiters, dot segments, line breaks, NUL, control
//! characters, non-ASCII, template syntax, 64 KiB) sent through every place a template lands
//! in a request (path segment, query, header, form body, JSON body, raw JSON body, raw form
//! body), from `input.*` and from `vars.*`, to a server of our own that records the exact bytes
//! of each request. Those bytes are then parsed strictly, and the request's structure must be
//! the template's: the same method, path segments, query keys in order, header names and body
//! keys, every value coming back byte for byte, or the request refused before anything is
//! sent (a header that cannot carry the value).
//!
//! The table (`docs/runtime.md`, "Templates at run time: escaping by context") says that a
//! `raw` body is sent as it renders, with no escaping: the author's escape hatch. The suite
//! checks that it is exactly that (the value inserted byte for byte), and checks the structure
//! of a raw body only for values that cannot change it.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use runtime::instance::{self, Connectors};
use runtime::resolve::Given;
use runtime::run::{Connection, Context};
use runtime::ErrorKind;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// The recording server

/// Every request the server received, as raw bytes (head and body), oldest first.
type Seen = Arc<Mutex<Vec<Vec<u8>>>>;

/// The largest request the server reads (head and body).
const MAX_REQUEST: usize = 16 << 20;

/// What the server answers to every request.
const ANSWER: &str = r#"{"ok":true}"#;

/// Accepts connections forever; each is served by its own task.
async fn serve(listener: tokio::net::TcpListener, seen: Seen) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let seen = seen.clone();
        tokio::spawn(async move {
            let _ = connection(sock, seen).await;
        });
    }
}

/// Serves the requests of one connection (keep-alive): reads a head up to its blank line and
/// a `Content-Length` body, records the bytes as they came, and answers 200 with [`ANSWER`].
/// A request it cannot frame (no length, chunked) is recorded as far as it was read, and the
/// connection is closed.
async fn connection(mut sock: tokio::net::TcpStream, seen: Seen) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let head_end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            let n = sock.read(&mut chunk).await?;
            if n == 0 || buf.len() > MAX_REQUEST {
                if !buf.is_empty() {
                    seen.lock().unwrap().push(buf);
                }
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = &buf[..head_end];
        let chunked = header_lines(head).any(|(n, _)| n.eq_ignore_ascii_case(b"transfer-encoding"));
        let len = header_lines(head)
            .find(|(n, _)| n.eq_ignore_ascii_case(b"content-length"))
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if chunked || head_end + len > MAX_REQUEST {
            seen.lock().unwrap().push(std::mem::take(&mut buf));
            return Ok(());
        }
        while buf.len() < head_end + len {
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                seen.lock().unwrap().push(buf);
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let request: Vec<u8> = buf.drain(..head_end + len).collect();
        let head_only = request.starts_with(b"HEAD ");
        // Recorded before the answer: when a call returns, its request is in `seen`.
        seen.lock().unwrap().push(request);
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            ANSWER.len(),
            if head_only { "" } else { ANSWER }
        );
        sock.write_all(answer.as_bytes()).await?;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The `name: value` lines of a head (loosely, for framing only).
fn header_lines(head: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    head.split(|&b| b == b'\n').skip(1).filter_map(|line| {
        let i = line.iter().position(|&b| b == b':')?;
        Some((&line[..i], &line[i + 1..]))
    })
}

// ---------------------------------------------------------------------------------------------
// A strict reading of the recorded bytes

/// A request as it was on the wire.
#[derive(Debug)]
struct Wire {
    method: String,
    /// The path, still percent-encoded.
    path: String,
    /// The query string, still encoded; `None` without a `?`.
    query: Option<String>,
    /// Header names (lowercase) and values (leading and trailing spaces and tabs removed, as
    /// RFC 9110 §5.5 says a recipient does), in order.
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Wire {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// Reads one HTTP/1.1 request strictly: CR LF line ends and no other CR, LF or NUL in the
/// head, a request line of exactly three parts, an origin-form target without a fragment,
/// `token: value` header lines (no folding), no header twice, and a body of exactly
/// `Content-Length` bytes, never chunked.
fn parse(raw: &[u8]) -> Result<Wire, String> {
    let head_end = find(raw, b"\r\n\r\n").ok_or("no blank line after the head")?;
    let head = &raw[..head_end];
    let body = raw[head_end + 4..].to_vec();
    if head.contains(&0) {
        return Err("a NUL in the head".into());
    }
    let lines: Vec<&[u8]> = head.split(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let line = if i + 1 < lines.len() {
            line.strip_suffix(b"\r")
                .ok_or(format!("line {i} of the head ends with a bare LF"))?
        } else {
            line
        };
        if line.contains(&b'\r') {
            return Err(format!("line {i} of the head has a bare CR"));
        }
    }
    let lines: Vec<&[u8]> = lines
        .iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();

    let request_line =
        std::str::from_utf8(lines[0]).map_err(|_| "the request line is not UTF-8")?;
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(format!("the request line has {} parts, not 3", parts.len()));
    };
    if version != "HTTP/1.1" {
        return Err(format!("version {version:?}"));
    }
    if !target.starts_with('/') || !target.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(format!("the target is not a plain origin-form: {target:?}"));
    }
    if target.contains('#') {
        return Err("the target has a fragment".into());
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };

    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for line in &lines[1..] {
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err("a folded header line".into());
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or("a header line without a colon")?;
        let name = &line[..colon];
        let is_tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
        if name.is_empty() || !name.iter().all(is_tchar) {
            return Err(format!(
                "a header name that is not a token: {}",
                name.escape_ascii()
            ));
        }
        let name = String::from_utf8(name.to_ascii_lowercase()).unwrap();
        let mut value = &line[colon + 1..];
        while let [b' ' | b'\t', rest @ ..] = value {
            value = rest;
        }
        while let [rest @ .., b' ' | b'\t'] = value {
            value = rest;
        }
        if headers.iter().any(|(n, _)| *n == name) {
            return Err(format!("the header `{name}` twice"));
        }
        headers.push((name, value.to_vec()));
    }
    let wire = Wire {
        method: method.to_owned(),
        path,
        query,
        headers,
        body,
    };
    if wire.header("transfer-encoding").is_some() {
        return Err("a chunked body".into());
    }
    let length = match wire.header("content-length") {
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .ok_or("a Content-Length that is not a number")?,
        None => 0,
    };
    if length != wire.body.len() {
        return Err(format!(
            "Content-Length {length}, but {} bytes of body",
            wire.body.len()
        ));
    }
    Ok(wire)
}

/// Decodes `%XX` escapes (and `+` as a space when `plus`), refusing a text with anything but
/// `allowed` bytes and well-formed escapes, or that does not decode to UTF-8.
fn decode(text: &str, allowed: fn(u8) -> bool, plus: bool) -> Result<String, String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("a bad escape at byte {i} of {text:?}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c if allowed(c) => {
                out.push(c);
                i += 1;
            }
            c => {
                return Err(format!(
                    "the byte {:?} is not encoded, at {i} of {}",
                    c as char,
                    shorten(text)
                ))
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{} does not decode to UTF-8", shorten(text)))
}

/// RFC 3986 unreserved characters: all a path segment may hold unencoded.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// What the `application/x-www-form-urlencoded` serializer leaves unencoded.
fn form_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'*' | b'-' | b'.' | b'_')
}

/// The decoded segments of a path, each checked to hold only unreserved characters and
/// escapes (so that none can hold a `/`, `?` or `#` of its own).
fn segments(path: &str) -> Result<Vec<String>, String> {
    let rest = path.strip_prefix('/').ok_or("the path is not absolute")?;
    rest.split('/')
        .map(|s| decode(s, unreserved, false))
        .collect()
}

/// The decoded pairs of a query string or a form body: `&`-separated `key=value`, each with
/// exactly one `=`, every other byte form-encoded.
fn form_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split('&')
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| format!("a pair without `=`: {}", shorten(pair)))?;
            if v.contains('=') {
                return Err(format!("a pair with two `=`: {}", shorten(pair)));
            }
            Ok((decode(k, form_plain, true)?, decode(v, form_plain, true)?))
        })
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// At most 300 characters of `text`, for messages (64 KiB values are not printed whole).
fn shorten(text: &str) -> String {
    let escaped = text.escape_debug().to_string();
    if escaped.len() <= 300 {
        return escaped;
    }
    let mut end = 300;
    while !escaped.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes in all)", &escaped[..end], text.len())
}

/// Request bytes as they may be shown: escaped, the middle of a long one left out.
fn show(raw: &[u8]) -> String {
    let e = raw.escape_ascii().to_string();
    if e.len() <= 1200 {
        return format!("b\"{e}\"");
    }
    format!(
        "b\"{}\" … b\"{}\" ({} bytes in all)",
        &e[..800],
        &e[e.len() - 300..],
        raw.len()
    )
}

// ---------------------------------------------------------------------------------------------
// The connector, the values and the contexts

/// The value of the `secret` variable: it must never appear in a request of the matrix,
/// whatever `{{ vars.secret }}` text the values hold.
const CANARY: &str = "canary-7f3a9e";

/// The API key of the instances (a header, `X-API-Key`).
const API_KEY: &str = "key-0123456789";

/// A connector with one endpoint per context. Every endpoint uses `input.v` and, except
/// `header_input`, `vars.v`, and makes one attempt (so one call is one request).
const CONNECTOR: &str = r#"connector: inj
name: Injection suite
base_url: "{{ vars.base_url }}"
variables:
  base_url: { label: Base URL, required: true }
  v: { label: Value, required: true }
  secret: { label: Secret, secret: true, required: true }
auth:
  key_header:
    type: api_key
    in: header
    name: X-API-Key
  key_query:
    type: api_key
    in: query
    name: api_key
endpoints:
  path:
    url: "/items/{{ input.v }}/{{ vars.v }}/x{{ input.v }}y/end"
    inputs: { v: { label: V, required: true } }
    retry: { attempts: 1 }
  query:
    url: /q
    query:
      a: "{{ input.v }}"
      b: "{{ vars.v }}"
      c: "pre {{ input.v }} post"
      lit: "1"
      "{{ vars.v }}": "{{ input.v }}"
    inputs: { v: { label: V, required: true } }
    retry: { attempts: 1 }
  header_input:
    method: DELETE
    url: /h
    headers:
      X-In: "{{ input.v }}"
      X-Wrap: "pre {{ input.v }} post"
    inputs: { v: { label: V, required: true } }
    retry: { attempts: 1 }
  header_vars:
    url: /hv
    headers:
      X-Var: "{{ vars.v }}"
    inputs: { v: { label: V, required: true } }
    retry: { attempts: 1 }
  form:
    method: POST
    url: /f
    body:
      form:
        a: "{{ input.v }}"
        b: "{{ vars.v }}"
        c: "pre {{ input.v }} post"
        lit: "1"
    inputs: { v: { label: V, required: true } }
    retry: { attempts: 1 }
  json:
    method: PUT
    url: /j
    body:
      json:
        a: "{{ input.v }}"
        b: "{{ vars.v }}"
        c: "pre {{ input.v }} post"
        list: ["{{ input.v }}", lit, 7]
        n: 7
    inputs: { v: { label: V, required: true } }
    retry: { attempts: 1 }
  raw_json:
    method: POST
    url: /rj
    body:
      raw: '{"a": "{{ input.v }}", "b": "{{ vars.v }}", "n": 7}'
      content_type: application/json
    inputs: { v: { label: V, required: true } }
    retry: { attempts: 1 }
  raw_form:
    method: PATCH
    url: /rf
    body:
      raw: 'a={{ input.v }}&b={{ vars.v }}&lit=1'
      content_type: application/x-www-form-urlencoded
    inputs: { v: { label: V, required: true } }
    retry: { attempts: 1 }
  secret_header:
    url: /s
    headers:
      X-Secret: "{{ vars.secret }}"
    retry: { attempts: 1 }
"#;

/// The hostile values, by name.
fn values() -> Vec<(&'static str, String)> {
    let long_to = |len: usize, unit: &str| {
        let mut s = unit.repeat(len / unit.len() + 1);
        let mut end = len;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s
    };
    let long = |unit: &str| long_to(64 * 1024, unit);
    let v = |name, s: &str| (name, s.to_owned());
    vec![
        v("the table's example", "a\"b&c=d/e?f#g%h"),
        v("double quote", "a\"b"),
        v("backslash", "a\\b"),
        v("backslash quote", "\\\""),
        v("JSON break-out", "\", \"admin\": true, \"x\": \""),
        v("ampersand", "a&b"),
        v("equals", "a=b"),
        v("query break-out", "x&admin=true&y="),
        v("question mark", "a?b=c"),
        v("hash", "a#b"),
        v("slash", "a/b"),
        v("percent", "100%"),
        v("pre-encoded", "%2F%3F%23%0D%0A%00%25"),
        v("plus and space", "a+b c"),
        v("dot", "."),
        v("dot dot", ".."),
        v("dot dot slash dot dot", "../.."),
        v("traversal", "../../admin?x#y"),
        v("encoded dot dot", "%2e%2E"),
        v("backslash dot dot", "..\\..\\"),
        v("CR", "a\rb"),
        v("LF", "a\nb"),
        v("CRLF header", "x\r\nX-Injected: 1"),
        v(
            "CRLF CRLF request",
            "x\r\n\r\nGET /evil HTTP/1.1\r\nHost: evil\r\n\r\n",
        ),
        v("NUL", "a\0b"),
        v("tab", "a\tb"),
        v("control characters", "\x01\x1b[31m\x7f"),
        v("e acute", "é"),
        v("Japanese", "日本"),
        v("emoji", "🦀👍🏽"),
        v("U+2028 and U+FEFF", "a\u{2028}b\u{feff}"),
        v("template", "{{ vars.secret }}"),
        v("escaped template", "\\{{ vars.secret }}"),
        v("template of itself", "{{ input.v }}{{vars.v}}"),
        (
            "4 KiB hostile",
            long_to(4 * 1024, "a\"b&c=d/e?f#g%h/../\r\n\0é🦀"),
        ),
        ("64 KiB", long("abcé日🦀-")),
        (
            "64 KiB hostile",
            long("a\"b&c=d/e?f#g%h/../\\é🦀{{ vars.secret }}"),
        ),
        ("64 KiB with CRLF", long("ab\r\nX-Injected: 1\0")),
    ]
}

/// Where a value lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Path,
    Query,
    HeaderInput,
    HeaderVars,
    Form,
    Json,
    RawJson,
    RawForm,
}

const CONTEXTS: [Ctx; 8] = [
    Ctx::Path,
    Ctx::Query,
    Ctx::HeaderInput,
    Ctx::HeaderVars,
    Ctx::Form,
    Ctx::Json,
    Ctx::RawJson,
    Ctx::RawForm,
];

impl Ctx {
    fn endpoint(self) -> &'static str {
        match self {
            Ctx::Path => "path",
            Ctx::Query => "query",
            Ctx::HeaderInput => "header_input",
            Ctx::HeaderVars => "header_vars",
            Ctx::Form => "form",
            Ctx::Json => "json",
            Ctx::RawJson => "raw_json",
            Ctx::RawForm => "raw_form",
        }
    }

    /// The header the value goes into, for the header contexts.
    fn header(self) -> Option<&'static str> {
        match self {
            Ctx::HeaderInput => Some("X-In"),
            Ctx::HeaderVars => Some("X-Var"),
            _ => None,
        }
    }
}

/// Known runtime bugs: these pairs are left out of the matrix and each has a failing test of
/// its own (below, `bug_*`). Remove a pair once its bug is fixed.
const KNOWN_BUGS: &[(&str, Ctx)] = &[];

/// What a call gave: its records, or its error (kind and message, or the CLI's stderr).
type Outcome = Result<Vec<Value>, (Option<ErrorKind>, String)>;

/// Whether a header can carry `v`: no CR, LF, NUL, other control character or DEL (RFC 9110
/// §5.5 field-vchar, obs-text and HTAB). The runtime refuses the others.
fn header_can_carry(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Whether the URL of `ctx` with `v` is longer than the runtime sends
/// (`runtime::render::MAX_URL_BYTES`; the value goes into the URL up to three times).
fn url_too_long(ctx: Ctx, v: &str) -> bool {
    let encoded: usize = v.bytes().map(|b| if unreserved(b) { 1 } else { 3 }).sum();
    matches!(ctx, Ctx::Path | Ctx::Query) && 3 * encoded > runtime::render::MAX_URL_BYTES - 256
}

/// Checks one call of `ctx` with value `v` (from the input and from `vars`): what it returned
/// and the requests the server recorded. `baseline` is the header names of the same context's
/// call with a harmless value.
fn check(
    ctx: Ctx,
    v: &str,
    outcome: &Outcome,
    recorded: &[Vec<u8>],
    baseline: Option<&[String]>,
) -> Result<(), String> {
    if url_too_long(ctx, v) {
        // Refused before sending: a usage error that does not quote the URL.
        if let Some(raw) = recorded.first() {
            return Err(format!("an overlong URL was sent: {}", show(raw)));
        }
        return match outcome {
            Ok(_) => Err("an overlong URL: the call succeeded".into()),
            Err((kind, msg)) if kind.is_some_and(|k| k != ErrorKind::Usage) => Err(format!(
                "an overlong URL is a {kind:?} error, not a usage error: {msg}"
            )),
            Err((_, msg)) if msg.len() > 1000 => Err(format!(
                "the error about an overlong URL quotes it ({} bytes)",
                msg.len()
            )),
            Err(_) => Ok(()),
        };
    }
    if ctx == Ctx::Path && matches!(v, "." | "..") {
        // A whole segment `.` or `..` cannot be sent as a value (the URL parser resolves it
        // away): refused, nothing sent.
        return if outcome.is_err() && recorded.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "a dot segment was not refused: {} request(s)",
                recorded.len()
            ))
        };
    }
    if let Some(header) = ctx.header().filter(|_| !header_can_carry(v)) {
        // Refused before anything is sent, the header named, the value never shown.
        if !recorded.is_empty() {
            return Err(format!(
                "{} request(s) were sent, none expected: {}",
                recorded.len(),
                show(&recorded[0])
            ));
        }
        let Err((kind, message)) = outcome else {
            return Err("the call succeeded; a refusal was expected".into());
        };
        if kind.is_some_and(|k| k != ErrorKind::Usage) {
            return Err(format!("error of kind {kind:?}, not Usage: {message}"));
        }
        if !message.contains(&format!("`{header}`")) {
            return Err(format!("the error does not name `{header}`: {message}"));
        }
        if v.contains(['\r', '\n', '\0']) && !message.contains("line break or a NUL") {
            return Err(format!("the error does not say why: {message}"));
        }
        if message.contains(v) || message.contains("Injected") || message.contains(['\r', '\0']) {
            return Err(format!("the error shows the value: {}", shorten(message)));
        }
        return Ok(());
    }

    let records = match outcome {
        Ok(r) => r,
        Err((_, message)) => {
            return Err(format!(
                "the call failed: {}; requests sent: {}",
                shorten(message),
                recorded.len()
            ))
        }
    };
    if records != &[json!({"ok": true})] {
        return Err(format!("records {records:?}"));
    }
    let [raw] = recorded else {
        return Err(format!("{} requests, 1 expected", recorded.len()));
    };
    let why = |e: String| format!("{e}\n    request: {}", show(raw));
    check_request(ctx, v, raw, baseline).map_err(why)
}

fn check_request(ctx: Ctx, v: &str, raw: &[u8], baseline: Option<&[String]>) -> Result<(), String> {
    let w = parse(raw)?;
    if find(raw, CANARY.as_bytes()).is_some() {
        return Err("the secret's value is in the request (a template was rendered twice)".into());
    }
    if w.header("x-injected").is_some() || w.header("host").is_none() {
        return Err(format!("headers {:?}", w.header_names()));
    }
    if let Some(names) = baseline {
        if w.header_names() != names {
            return Err(format!(
                "headers {:?}, not {names:?} as with a harmless value",
                w.header_names()
            ));
        }
    }
    let want_method = match ctx {
        Ctx::Path | Ctx::Query | Ctx::HeaderVars => "GET",
        Ctx::HeaderInput => "DELETE",
        Ctx::Form | Ctx::RawJson => "POST",
        Ctx::Json => "PUT",
        Ctx::RawForm => "PATCH",
    };
    if w.method != want_method {
        return Err(format!("method {}, not {want_method}", w.method));
    }
    let want_path: &[&str] = match ctx {
        Ctx::Path => &[],
        Ctx::Query => &["api", "q"],
        Ctx::HeaderInput => &["api", "h"],
        Ctx::HeaderVars => &["api", "hv"],
        Ctx::Form => &["api", "f"],
        Ctx::Json => &["api", "j"],
        Ctx::RawJson => &["api", "rj"],
        Ctx::RawForm => &["api", "rf"],
    };
    let got = segments(&w.path)?;
    if ctx == Ctx::Path {
        let xy = format!("x{v}y");
        let want = ["api", "items", v, v, &xy, "end"];
        if got != want {
            return Err(format!(
                "path {} has the segments {:?}, not {:?}",
                shorten(&w.path),
                got.iter().map(|s| shorten(s)).collect::<Vec<_>>(),
                want.iter().map(|s| shorten(s)).collect::<Vec<_>>()
            ));
        }
    } else if got != want_path {
        return Err(format!("path {}", shorten(&w.path)));
    }
    match (ctx, &w.query) {
        (Ctx::Query, Some(q)) => {
            let pre = format!("pre {v} post");
            // A key is not a template: `{{ vars.v }}` is its literal name.
            let want = pairs(&[
                ("a", v),
                ("b", v),
                ("c", &pre),
                ("lit", "1"),
                ("{{ vars.v }}", v),
            ]);
            let got = form_pairs(q)?;
            if got != want {
                return Err(format!("query pairs {got:?}"));
            }
        }
        (Ctx::Query, None) => return Err("no query".into()),
        (_, Some(q)) => return Err(format!("a query: {}", shorten(q))),
        (_, None) => {}
    }
    let content_type = w.header("content-type");
    let body = std::str::from_utf8(&w.body).map_err(|_| "the body is not UTF-8".to_owned())?;
    match ctx {
        Ctx::Path | Ctx::Query | Ctx::HeaderVars | Ctx::HeaderInput => {
            if !w.body.is_empty() || content_type.is_some() {
                return Err("a body".into());
            }
        }
        Ctx::Form => {
            if content_type != Some(b"application/x-www-form-urlencoded") {
                return Err(format!(
                    "content type {:?}",
                    content_type.map(|c| c.escape_ascii().to_string())
                ));
            }
            let pre = format!("pre {v} post");
            let want = pairs(&[("a", v), ("b", v), ("c", &pre), ("lit", "1")]);
            let got = form_pairs(body)?;
            if got != want {
                return Err(format!("form pairs {got:?}"));
            }
        }
        Ctx::Json => {
            if content_type != Some(b"application/json") {
                return Err("content type".into());
            }
            if let Some(b) = w.body.iter().find(|b| **b < 0x20) {
                return Err(format!(
                    "the JSON body holds the control byte {b:#04x} unescaped"
                ));
            }
            let got: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
            let want = json!({
                "a": v, "b": v, "c": format!("pre {v} post"), "list": [v, "lit", 7], "n": 7
            });
            let keys: Vec<&String> = got
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            if got != want || keys != ["a", "b", "c", "list", "n"] {
                return Err(format!("JSON {}", shorten(&got.to_string())));
            }
        }
        Ctx::RawJson => {
            if content_type != Some(b"application/json") {
                return Err("content type".into());
            }
            // As it renders: the value inserted byte for byte, nothing escaped.
            let want = format!(r#"{{"a": "{v}", "b": "{v}", "n": 7}}"#);
            if body != want {
                return Err(format!(
                    "raw body {}, not the template as rendered",
                    shorten(body)
                ));
            }
            if json_cannot_break(v) {
                let got: Value =
                    serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
                if got != json!({"a": v, "b": v, "n": 7}) {
                    return Err(format!("JSON {}", shorten(&got.to_string())));
                }
            }
        }
        Ctx::RawForm => {
            if content_type != Some(b"application/x-www-form-urlencoded") {
                return Err("content type".into());
            }
            let want = format!("a={v}&b={v}&lit=1");
            if body != want {
                return Err(format!(
                    "raw body {}, not the template as rendered",
                    shorten(body)
                ));
            }
            if form_cannot_break(v) {
                let got = form_pairs(body)?;
                if got != pairs(&[("a", v), ("b", v), ("lit", "1")]) {
                    return Err(format!("form pairs {got:?}"));
                }
            }
        }
    }
    if let Some(header) = ctx.header() {
        let want: Vec<(&str, String)> = match ctx {
            Ctx::HeaderInput => vec![("x-in", v.to_owned()), ("x-wrap", format!("pre {v} post"))],
            _ => vec![(header, v.to_owned())],
        };
        for (name, value) in want {
            let got = w.header(&name.to_ascii_lowercase());
            if got != Some(value.as_bytes()) {
                return Err(format!(
                    "{name}: {:?}",
                    got.map(|g| shorten(&String::from_utf8_lossy(g)))
                ));
            }
        }
    }
    Ok(())
}

/// Whether `v`, inserted between the quotes of a JSON string, leaves it one string: no `"`,
/// `\` or control character.
fn json_cannot_break(v: &str) -> bool {
    !v.chars().any(|c| c == '"' || c == '\\' || c < ' ')
}

/// Whether `v`, inserted as a form value, leaves it one value: only what the form serializer
/// leaves unencoded.
fn form_cannot_break(v: &str) -> bool {
    v.bytes().all(form_plain)
}

// ---------------------------------------------------------------------------------------------
// The harness: the server, a scratch folder with the connector and an instance, calls

struct Harness {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    seen: Seen,
    dir: support::TempDir,
    cx: Context,
    connectors: Connectors,
}

impl Harness {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let seen = Seen::default();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(serve(listener, seen.clone()));
        let cx = rt.block_on(async { Context::new() }).unwrap();
        let h = Harness {
            rt,
            addr,
            seen,
            dir: support::TempDir::new(),
            cx,
            connectors: Connectors::default(),
        };
        h.write("inj.yaml", CONNECTOR);
        h.write("secret.txt", &format!("{CANARY}\n"));
        h.write("key.txt", &format!("{API_KEY}\n"));
        h.instance("main", "key_header", "  v: placeholder\n");
        h
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.0.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Writes the instance `NAME.yaml` with `auth`, the base URL, the secret and the API key
    /// from `secret.txt` and `key.txt`, and `values` (YAML lines indented by two spaces).
    fn instance(&self, name: &str, auth: &str, values: &str) -> PathBuf {
        self.instance_with(name, auth, "secret.txt", "key.txt", values)
    }

    /// The same, with the secret and the API key from the files `secret` and `key`.
    fn instance_with(
        &self,
        name: &str,
        auth: &str,
        secret: &str,
        key: &str,
        values: &str,
    ) -> PathBuf {
        self.write(
            &format!("{name}.yaml"),
            &format!(
                "connector: inj.yaml\nauth: {auth}\nvalues:\n  base_url: http://{}/api\n  secret: {{ file: {secret} }}\n  api_key: {{ file: {key} }}\n{values}",
                self.addr
            ),
        )
    }

    /// A connection to `main.yaml` with `vars.v` set to `v` (given as an override, exactly).
    fn connect(&mut self, v: &str) -> Connection {
        let path = self.dir.0.join("main.yaml");
        self.connect_to(&path, &[("v", v)])
    }

    fn connect_to(&mut self, path: &Path, overrides: &[(&str, &str)]) -> Connection {
        let overrides: Vec<(String, Given)> = overrides
            .iter()
            .map(|(k, v)| (k.to_string(), Given::Text(v.to_string())))
            .collect();
        let i = instance::load_with(path, &overrides, &mut self.connectors)
            .unwrap_or_else(|e| panic!("the instance does not load: {:?}", e.diagnostics));
        Connection::with_context(Arc::new(i), &self.cx)
    }

    /// Calls `endpoint` with `input.v` = `v` (when given); returns what it gave and the
    /// requests recorded meanwhile.
    fn call(&self, conn: &Connection, endpoint: &str, v: Option<&str>) -> (Outcome, Vec<Vec<u8>>) {
        self.take();
        let inputs: Vec<(String, Given)> = v
            .map(|v| ("v".to_owned(), Given::Text(v.to_owned())))
            .into_iter()
            .collect();
        let mut records = Vec::new();
        let result = self
            .rt
            .block_on(support::call_into(conn, endpoint, &inputs, &mut records));
        let outcome = match result {
            Ok(_) => Ok(records),
            Err(e) => Err((Some(e.kind()), e.message().to_owned())),
        };
        (outcome, self.take())
    }

    /// Takes the requests recorded so far.
    fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// Runs `connector run INSTANCE ENDPOINT [--input v=V]` in the scratch folder; returns
    /// its output and the requests recorded meanwhile.
    fn cli_run(&self, instance: &str, endpoint: &str, v: Option<&str>) -> (Output, Vec<Vec<u8>>) {
        self.take();
        let mut args = vec!["run".to_owned(), instance.to_owned(), endpoint.to_owned()];
        if let Some(v) = v {
            args.extend(["--input".to_owned(), format!("v={v}")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = support::cli_in(&self.dir.0, &args, &[]);
        (out, self.take())
    }

    /// The header names of `ctx`'s request with a harmless value.
    fn baseline(&mut self) -> Vec<Vec<String>> {
        let conn = self.connect("plain");
        CONTEXTS
            .iter()
            .map(|ctx| {
                let (outcome, recorded) = self.call(&conn, ctx.endpoint(), Some("plain"));
                check(*ctx, "plain", &outcome, &recorded, None)
                    .unwrap_or_else(|e| panic!("{ctx:?} with a harmless value: {e}"));
                parse(&recorded[0])
                    .unwrap()
                    .header_names()
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The matrix

#[test]
fn every_value_keeps_the_structure_of_every_context() {
    let started = Instant::now();
    let mut h = Harness::new();
    let baseline = h.baseline();
    let mut failures = Vec::new();
    let mut checked = 0;
    let mut refused = 0;
    for (name, v) in values() {
        let conn = h.connect(&v);
        for (ctx, names) in CONTEXTS.iter().zip(&baseline) {
            if KNOWN_BUGS.contains(&(name, *ctx)) {
                continue;
            }
            let (outcome, recorded) = h.call(&conn, ctx.endpoint(), Some(&v));
            checked += 1;
            refused += usize::from(outcome.is_err());
            if let Err(e) = check(*ctx, &v, &outcome, &recorded, Some(names)) {
                failures.push(format!("value `{name}` ({}) in {ctx:?}: {e}", shorten(&v)));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} value × context cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked >= 38 * 8 - KNOWN_BUGS.len(), "{checked} cases");
    eprintln!(
        "{checked} value × context cases ({refused} refused before sending) in {} ms",
        started.elapsed().as_millis()
    );
}

// ---------------------------------------------------------------------------------------------
// Dot segments

/// A value that is a whole path segment `.` or `..` would be resolved away by the URL parser
/// (`..` in `/api/items/{{ input.v }}/…` would climb out of its segment and out of the base
/// URL's `/api`; `%2e%2e` is a dot segment too): it is refused before anything is sent,
/// naming the reference. Inside a segment (`x..y`) dots are kept.
#[test]
fn a_dot_segment_value_is_refused() {
    let mut h = Harness::new();
    for (input, var, named) in [
        ("..", "x", "input.v"),
        ("x", "..", "vars.v"),
        (".", "x", "input.v"),
        ("..", "..", "v"),
    ] {
        let conn = h.connect(var);
        let (outcome, recorded) = h.call(&conn, "path", Some(input));
        assert!(recorded.is_empty(), "input {input:?}, vars {var:?}: sent");
        match outcome {
            Err((kind, msg)) => {
                assert_eq!(kind, Some(ErrorKind::Usage), "{msg}");
                assert!(msg.contains(named) && msg.contains("path segment"), "{msg}");
            }
            Ok(_) => panic!("input {input:?}, vars {var:?}: not refused"),
        }
    }
    // Dots inside a segment, or a segment of three dots, are plain text and are sent.
    let conn = h.connect("...");
    let (outcome, recorded) = h.call(&conn, "path", Some("a..b"));
    assert!(outcome.is_ok(), "{outcome:?}");
    let [raw] = &recorded[..] else {
        panic!("{} requests", recorded.len())
    };
    let got = parse(raw).and_then(|w| segments(&w.path)).unwrap();
    assert_eq!(got, ["api", "items", "a..b", "...", "xa..by", "end"]);
}

// ---------------------------------------------------------------------------------------------
// Secrets and auth values

/// A secret with a line break in a header: refused, the header named, nothing of the secret
/// shown, nothing sent. The same for the API key the `api_key` method puts in `X-API-Key`.
#[test]
fn a_secret_with_a_line_break_is_never_sent_nor_shown() {
    let mut h = Harness::new();
    h.write("bad-secret.txt", "tok-SECRET\r\nX-Injected: 1\n");
    h.write("bad-key.txt", "key-SECRET\nX-Injected: 1\n");
    let cases = [
        (
            "secret",
            "key_header",
            "bad-secret.txt",
            "key.txt",
            "secret_header",
            "X-Secret",
        ),
        (
            "key",
            "key_header",
            "secret.txt",
            "bad-key.txt",
            "json",
            "X-API-Key",
        ),
    ];
    for (name, auth, secret, key, endpoint, header) in cases {
        let path = h.instance_with(name, auth, secret, key, "  v: x\n");
        let conn = h.connect_to(&path, &[]);
        let input = (endpoint != "secret_header").then_some("x");
        let (outcome, recorded) = h.call(&conn, endpoint, input);
        assert!(recorded.is_empty(), "{name}: sent {}", show(&recorded[0]));
        let Err((kind, message)) = outcome else {
            panic!("{name}: the call succeeded");
        };
        assert_eq!(kind, Some(ErrorKind::Usage), "{name}: {message}");
        assert!(
            message.contains(&format!("`{header}`")),
            "{name}: {message}"
        );
        assert!(message.contains("line break or a NUL"), "{name}: {message}");
        for part in ["SECRET", "Injected", "\r", "\n"] {
            assert!(
                !message.contains(part),
                "{name}: the error shows the value: {message:?}"
            );
        }

        // The command line: one error line, exit status 2, nothing sent, nothing shown.
        let file = format!("{name}.yaml");
        let (out, recorded) = h.cli_run(&file, endpoint, input);
        let err = support::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            recorded.is_empty(),
            "{name}: the CLI sent {}",
            show(&recorded[0])
        );
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(
            err.starts_with("error: ") && err.contains(&format!("`{header}`")),
            "{err}"
        );
        assert!(
            !err.contains("SECRET") && !err.contains("Injected"),
            "{err}"
        );
        assert!(support::stdout(&out).is_empty());
    }
}

/// A hostile API key stays one value: one query parameter of its own (`in: query`), or
/// exactly the header's value (`in: header`).
#[test]
fn a_hostile_api_key_stays_one_value() {
    let mut h = Harness::new();
    let key = "k&admin=1#x/y?z %25+é";
    h.write("hostile-key.txt", &format!("{key}\n"));

    let path = h.instance_with(
        "kq",
        "key_query",
        "secret.txt",
        "hostile-key.txt",
        "  v: x\n",
    );
    let conn = h.connect_to(&path, &[]);
    let (outcome, recorded) = h.call(&conn, "query", Some("y"));
    assert!(outcome.is_ok(), "{outcome:?}");
    let [raw] = &recorded[..] else {
        panic!("{} requests", recorded.len())
    };
    let w = parse(raw).unwrap();
    assert_eq!(
        form_pairs(w.query.as_deref().unwrap()).unwrap(),
        pairs(&[
            ("a", "y"),
            ("b", "x"),
            ("c", "pre y post"),
            ("lit", "1"),
            ("{{ vars.v }}", "y"),
            ("api_key", key)
        ]),
        "{}",
        show(raw)
    );
    assert!(w.header("x-api-key").is_none());

    let path = h.instance_with(
        "kh",
        "key_header",
        "secret.txt",
        "hostile-key.txt",
        "  v: x\n",
    );
    let conn = h.connect_to(&path, &[]);
    let (outcome, recorded) = h.call(&conn, "json", Some("y"));
    assert!(outcome.is_ok(), "{outcome:?}");
    let w = parse(&recorded[0]).unwrap();
    assert_eq!(
        w.header("x-api-key"),
        Some(key.as_bytes()),
        "{}",
        show(&recorded[0])
    );
    assert_eq!(w.query, None);
}

// ---------------------------------------------------------------------------------------------
// The escape hatch

/// `raw` is sent as it renders (`docs/runtime.md`): a value can add a key to a raw JSON body
/// or a pair to a raw form body. This pins that documented behaviour, so that it is a decision
/// and not an accident; connectors should use `json` or `form` for values from callers.
#[test]
fn raw_bodies_are_sent_as_rendered_so_a_value_can_change_them() {
    let mut h = Harness::new();
    let conn = h.connect("x");

    let (_, recorded) = h.call(&conn, "raw_json", Some("\", \"admin\": true, \"z\": \""));
    let body = parse(&recorded[0]).unwrap().body;
    let got: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        got,
        json!({"a": "", "admin": true, "z": "", "b": "x", "n": 7})
    );

    let (_, recorded) = h.call(&conn, "raw_form", Some("y&admin=true"));
    let body = parse(&recorded[0]).unwrap().body;
    assert_eq!(
        form_pairs(std::str::from_utf8(&body).unwrap()).unwrap(),
        pairs(&[("a", "y"), ("admin", "true"), ("b", "x"), ("lit", "1")])
    );
}

// ---------------------------------------------------------------------------------------------
// The command line

/// `connector run … --input v=VALUE` with `vars.v` read from a file: the same bytes on the
/// wire as through the library, in every context.
#[test]
fn connector_run_keeps_the_structure_of_every_context() {
    let mut h = Harness::new();
    let baseline = h.baseline();
    let values = [
        "a\"b&c=d/e?f#g%h ../.. \\ é日本🦀 {{ vars.secret }}\ttab %0D%0A",
        "x\r\nX-Injected: 1",
    ];
    let mut failures = Vec::new();
    for v in values {
        h.write("v.txt", &format!("{v}\n"));
        h.instance("cli", "key_header", "  v: { file: v.txt }\n");
        for (ctx, names) in CONTEXTS.iter().zip(&baseline) {
            let (out, recorded) = h.cli_run("cli.yaml", ctx.endpoint(), Some(v));
            let stdout = support::stdout(&out);
            let stderr = support::stderr(&out);
            let outcome: Outcome = match out.status.code() {
                Some(0) => Ok(stdout
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap_or(Value::Null))
                    .collect()),
                Some(2) if stderr.lines().count() == 1 => Err((None, stderr.clone())),
                code => Err((None, format!("exit status {code:?}: {stderr}"))),
            };
            if let Err(e) = check(*ctx, v, &outcome, &recorded, Some(names)) {
                failures.push(format!("`connector run` {} in {ctx:?}: {e}", shorten(v)));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// The strict reader itself

/// The checks above pass only if the reader would see an injection: each of these requests is
/// what a broken escaping would send, and each is caught, for the right reason.
#[test]
fn the_strict_reader_catches_a_changed_structure() {
    let with_body = |head: &str, body: &str| {
        format!("{head}\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()
    };
    let ok =
        b"GET /api/q?a=x&b=x&c=pre+x+post&lit=1&%7B%7B+vars.v+%7D%7D=x HTTP/1.1\r\nhost: h\r\n\r\n";
    check_request(Ctx::Query, "x", ok, None).unwrap();
    let ok = with_body(
        "PUT /api/j HTTP/1.1\r\nhost: h\r\ncontent-type: application/json",
        r#"{"a":"\n","b":"\n","c":"pre \n post","list":["\n","lit",7],"n":7}"#,
    );
    check_request(Ctx::Json, "\n", &ok, None).unwrap();

    let json = "PUT /api/j HTTP/1.1\r\nhost: h\r\ncontent-type: application/json";
    let form = "POST /api/f HTTP/1.1\r\nhost: h\r\ncontent-type: application/x-www-form-urlencoded";
    let broken: Vec<(Ctx, &str, Vec<u8>, &str)> = vec![
        // A header line added by a CR LF, a bare LF, a NUL.
        (
            Ctx::HeaderVars,
            "a",
            b"GET /api/hv HTTP/1.1\r\nhost: h\r\nx-var: a\r\nX-Injected: 1\r\n\r\n".to_vec(),
            "x-injected",
        ),
        (
            Ctx::HeaderVars,
            "a\nb",
            b"GET /api/hv HTTP/1.1\r\nhost: h\r\nx-var: a\nb\r\n\r\n".to_vec(),
            "bare LF",
        ),
        (
            Ctx::HeaderVars,
            "a\0b",
            b"GET /api/hv HTTP/1.1\r\nhost: h\r\nx-var: a\0b\r\n\r\n".to_vec(),
            "NUL",
        ),
        // A query key added by `&`, a fragment by `#`, a segment by `/`, a space in the target.
        (
            Ctx::Query,
            "x&y=1",
            b"GET /api/q?a=x&y=1&b=x&c=pre+x+post&lit=1 HTTP/1.1\r\nhost: h\r\n\r\n".to_vec(),
            "query pairs",
        ),
        (
            Ctx::Query,
            "x#y",
            b"GET /api/q?a=x#y HTTP/1.1\r\nhost: h\r\n\r\n".to_vec(),
            "fragment",
        ),
        (
            Ctx::Path,
            "a/b",
            b"GET /api/items/a/b/a%2Fb/xa%2Fby/end HTTP/1.1\r\nhost: h\r\n\r\n".to_vec(),
            "segments",
        ),
        (
            Ctx::Path,
            "a b",
            b"GET /api/items/a b/a%20b/xa%20by/end HTTP/1.1\r\nhost: h\r\n\r\n".to_vec(),
            "4 parts",
        ),
        // A JSON body with a raw control character, or with a key added by a `"`.
        (
            Ctx::Json,
            "\n",
            with_body(
                json,
                "{\"a\":\"\n\",\"b\":\"\n\",\"c\":\"pre \n post\",\"list\":[\"\n\",\"lit\",7],\"n\":7}",
            ),
            "control byte",
        ),
        (
            Ctx::Json,
            "\",\"z\":\"",
            with_body(json, r#"{"a":"","z":"","b":"","z":"","c":"","list":[],"n":7}"#),
            "JSON",
        ),
        // A form body with a pair added by `&`.
        (
            Ctx::Form,
            "x&z=1",
            with_body(form, "a=x&z=1&b=x%26z%3D1&c=pre+x%26z%3D1+post&lit=1"),
            "form pairs",
        ),
        // A body longer than its Content-Length (a second request smuggled after it).
        (
            Ctx::HeaderVars,
            "a",
            b"GET /api/hv HTTP/1.1\r\nhost: h\r\nx-var: a\r\n\r\nGET /evil HTTP/1.1\r\n\r\n".to_vec(),
            "Content-Length 0",
        ),
    ];
    for (ctx, v, raw, why) in broken {
        match check_request(ctx, v, &raw, None) {
            Err(e) if e.contains(why) => {}
            other => panic!("{ctx:?} {v:?}: {other:?}, not `{why}`, for {}", show(&raw)),
        }
    }
}

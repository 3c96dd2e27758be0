//! Diagnostics: what the compiler found, where, and what to do about it.
//!
//! A [`Diagnostic`] carries a stable code, a message, a 1-based line and column, the JSON
//! pointer of the node it is about and an optional help text. It renders in two forms: the
//! human form of rustc (header, `-->` location, source line with carets) and the JSON form of
//! `connector check --format json`.

use serde::Serialize;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The connector cannot be compiled.
    Error,
    /// The connector compiles, but something is probably wrong.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A position in a source file: 1-based line and column (in characters), and the length in
/// characters of the text it covers on that line (at least 1 for the carets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
    /// Characters covered on that line.
    pub len: usize,
}

/// One finding of the compiler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code, e.g. `undefined-reference`; `docs/authoring.md` lists them all.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// The file, as it was named on the command line.
    pub file: String,
    /// Line, from 1 (0 when the finding is about the whole file).
    pub line: usize,
    /// Column in characters, from 1 (0 when the finding is about the whole file).
    pub column: usize,
    /// JSON pointer of the node the finding is about (`""` for the whole document).
    pub pointer: String,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Characters covered by the carets.
    #[serde(skip)]
    pub len: usize,
    /// Short text printed beside the carets.
    #[serde(skip)]
    pub label: Option<String>,
}

impl Diagnostic {
    /// A new error at `pos`.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, code, message)
    }

    /// A new warning at `pos`.
    pub fn warning(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, code, message)
    }

    fn new(severity: Severity, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity,
            code,
            message: message.into(),
            file: String::new(),
            line: 0,
            column: 0,
            pointer: String::new(),
            help: None,
            len: 1,
            label: None,
        }
    }

    /// Places the diagnostic at `pos`, about the node at `pointer`.
    pub fn at(mut self, pointer: impl Into<String>, pos: Pos) -> Self {
        self.pointer = pointer.into();
        self.line = pos.line;
        self.column = pos.column;
        self.len = pos.len.max(1);
        self
    }

    /// Adds a help text.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds a short label printed beside the carets.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Whether this is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic the way rustc does, with the source line and carets when
    /// `source` is given and the line exists in it.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = format!(
            "{}[{}]: {}\n",
            self.severity.as_str(),
            self.code,
            printable(&self.message)
        );
        if self.line == 0 {
            out.push_str(&format!("  --> {}\n", self.file));
        } else {
            let number = self.line.to_string();
            let gutter = " ".repeat(number.len());
            out.push_str(&format!(
                "{gutter}--> {}:{}:{}\n",
                self.file, self.line, self.column
            ));
            if let Some(snippet) = source.and_then(|s| Snippet::new(s, self.line, self.column)) {
                let text = printable(&snippet.text);
                let shown = text.chars().count();
                let before = snippet.caret.min(shown);
                let pad: String = text
                    .chars()
                    .take(before)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let carets = self.len.min(shown.saturating_sub(before)).max(1);
                out.push_str(&format!("{gutter} |\n"));
                out.push_str(&format!("{number} | {text}\n"));
                out.push_str(&format!("{gutter} | {pad}{}", "^".repeat(carets)));
                if let Some(label) = &self.label {
                    out.push(' ');
                    out.push_str(&printable(label));
                }
                out.push('\n');
            }
            if self.help.is_some() {
                out.push_str(&format!("{gutter} |\n"));
            }
        }
        if let Some(help) = &self.help {
            let gutter = " ".repeat(self.line.max(1).to_string().len());
            out.push_str(&format!("{gutter} = help: {}\n", printable(help)));
        }
        out
    }

    /// Renders the diagnostic on one line: `error[code]: file:line:column: message`.
    pub fn render_short(&self) -> String {
        if self.line == 0 {
            format!(
                "{}[{}]: {}: {}",
                self.severity.as_str(),
                self.code,
                self.file,
                printable(&self.message)
            )
        } else {
            format!(
                "{}[{}]: {}:{}:{}: {}",
                self.severity.as_str(),
                self.code,
                self.file,
                self.line,
                self.column,
                printable(&self.message)
            )
        }
    }
}

/// Longest source line printed whole; a longer one is printed as a window around the column,
/// so that a huge line (a minified file, a pasted blob) cannot flood the terminal.
const LINE_CHARS: usize = 200;
/// Characters of a long line printed, and how many of them before the column.
const WINDOW_CHARS: usize = 120;
const WINDOW_BEFORE: usize = 40;

/// The text of one source line to print under a diagnostic.
struct Snippet {
    /// The line, or a window of it with `…` where it is cut.
    text: String,
    /// Characters of `text` before the column.
    caret: usize,
}

impl Snippet {
    /// Line `line` of `source` (1-based; line breaks are LF, CRLF or a lone CR, as in YAML;
    /// a byte-order mark is not part of the first line), cut around `column` when long.
    /// `None` when the line does not exist.
    fn new(source: &str, line: usize, column: usize) -> Option<Snippet> {
        let source = source.strip_prefix('\u{FEFF}').unwrap_or(source);
        let bytes = source.as_bytes();
        let mut start = 0;
        for _ in 1..line {
            let end = start
                + bytes[start..]
                    .iter()
                    .position(|b| *b == b'\n' || *b == b'\r')?;
            start = end + 1;
            if bytes[end] == b'\r' && bytes.get(start) == Some(&b'\n') {
                start += 1;
            }
        }
        if start == source.len() && line > 1 {
            return None;
        }
        let chars = || {
            source[start..]
                .chars()
                .take_while(|c| *c != '\n' && *c != '\r')
        };
        let column = column.saturating_sub(1);
        if chars().nth(LINE_CHARS).is_none() {
            return Some(Snippet {
                text: chars().collect(),
                caret: column,
            });
        }
        let from = column.saturating_sub(WINDOW_BEFORE);
        let mut window = chars().skip(from);
        let mut text: String = if from > 0 {
            "…".into()
        } else {
            String::new()
        };
        text.extend(window.by_ref().take(WINDOW_CHARS));
        if window.next().is_some() {
            text.push('…');
        }
        Some(Snippet {
            text,
            caret: column - from + usize::from(from > 0),
        })
    }
}

/// The text with control characters other than tab, and the characters that reorder text
/// (bidirectional overrides and isolates), replaced, so that a hostile file cannot drive the
/// terminal or make what is printed read differently from what is there: the source line, and
/// the message, label and help, which quote names and values from the file.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            let reorders = matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
            if (c.is_control() && c != '\t') || reorders {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

/// Sorts the diagnostics of one file by position, errors first at the same place.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (a.line, a.column, a.severity, a.code).cmp(&(b.line, b.column, b.severity, b.code))
    });
}

/// Most diagnostics reported for one file; the others are summed up in one more,
/// `too-many-diagnostics`. This bounds what a hostile file makes the compiler print.
pub const MAX_DIAGNOSTICS: usize = 100;

/// Keeps the first [`MAX_DIAGNOSTICS`] and sums up the others in one `too-many-diagnostics`,
/// placed where the first of them was: an error if any of them is one, else a warning (so that
/// whether the file has errors does not change).
pub fn cap(diagnostics: &mut Vec<Diagnostic>) {
    if diagnostics.len() <= MAX_DIAGNOSTICS {
        return;
    }
    let rest = diagnostics.split_off(MAX_DIAGNOSTICS);
    let errors = rest.iter().filter(|d| d.is_error()).count();
    let warnings = rest.len() - errors;
    let count = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let what = match (errors, warnings) {
        (e, 0) => count(e, "more error"),
        (0, w) => count(w, "more warning"),
        (e, w) => format!("{} and {}", count(e, "more error"), count(w, "warning")),
    };
    let severity = if errors > 0 {
        Severity::Error
    } else {
        Severity::Warning
    };
    let first = &rest[0];
    diagnostics.push(Diagnostic {
        file: first.file.clone(),
        line: first.line,
        column: first.column,
        pointer: first.pointer.clone(),
        ..Diagnostic::new(
            severity,
            "too-many-diagnostics",
            format!("{what} from here on not shown: only the first {MAX_DIAGNOSTICS} of a file are reported"),
        )
        .help("fix the problems above and check again; this many usually means the file is not a connector")
    });
}

/// Every diagnostic code, with its severity and what it means. `docs/authoring.md` lists them
/// and a test proves each one is produced by some input.
pub const CODES: &[(&str, Severity, &str)] = &[
    ("io", Severity::Error, "a file or folder could not be read"),
    (
        "no-connectors",
        Severity::Error,
        "a folder holds no `*.yaml` or `*.yml` file",
    ),
    (
        "file-too-large",
        Severity::Error,
        "a file over 1 MiB (1,048,576 bytes)",
    ),
    ("binary-file", Severity::Error, "the file is not UTF-8 text"),
    ("empty-file", Severity::Error, "the file has no content"),
    ("yaml-syntax", Severity::Error, "the file is not valid YAML"),
    (
        "multiple-documents",
        Severity::Error,
        "the file holds more than one YAML document",
    ),
    ("yaml-tag", Severity::Error, "a YAML tag other than `!!str`"),
    (
        "yaml-number",
        Severity::Error,
        "a number that is not finite (`.inf`, `.nan`)",
    ),
    (
        "yaml-key",
        Severity::Error,
        "a mapping or list used as a key",
    ),
    (
        "yaml-too-deep",
        Severity::Error,
        "nesting deeper than 64 levels",
    ),
    (
        "yaml-too-large",
        Severity::Error,
        "more than 100,000 nodes (keys, values, list items), aliases expanded",
    ),
    (
        "yaml-aliases",
        Severity::Error,
        "aliases that expand to more than 10,000 nodes or 1 MiB of text in all",
    ),
    (
        "yaml-key-too-long",
        Severity::Error,
        "a key whose path from the top of the file is over 512 characters",
    ),
    (
        "duplicate-key",
        Severity::Error,
        "a key written twice in one mapping",
    ),
    (
        "unknown-key",
        Severity::Error,
        "a key the format does not have here",
    ),
    ("missing-key", Severity::Error, "a required key is missing"),
    (
        "unknown-type",
        Severity::Error,
        "an auth or pagination `type` that does not exist",
    ),
    (
        "wrong-type",
        Severity::Error,
        "a value of the wrong type (text for a number, a list for a mapping)",
    ),
    (
        "invalid-value",
        Severity::Error,
        "a value outside what is allowed (unknown name, out of range, bad pattern)",
    ),
    (
        "template-syntax",
        Severity::Error,
        "a `{{ … }}` that does not parse",
    ),
    (
        "undefined-reference",
        Severity::Error,
        "a reference to something not declared, or not available there",
    ),
    (
        "unused-variable",
        Severity::Warning,
        "a variable nobody uses",
    ),
    (
        "unused-input",
        Severity::Warning,
        "an endpoint input nobody uses",
    ),
    (
        "variable-cycle",
        Severity::Error,
        "variable defaults that depend on each other in a loop",
    ),
    (
        "value-type",
        Severity::Error,
        "a default or `enum` value that does not match the variable's `type`",
    ),
    (
        "default-not-in-enum",
        Severity::Error,
        "a default that is not one of the `enum` values",
    ),
    (
        "required-with-default",
        Severity::Warning,
        "a required variable with a default that can never be used",
    ),
    (
        "duplicate-name",
        Severity::Error,
        "a name declared twice (connector and auth variable, headers differing in case, a token parameter the request sends already)",
    ),
    (
        "secret-default",
        Severity::Error,
        "a secret with a default value",
    ),
    (
        "secret-in-url",
        Severity::Error,
        "a secret put in a URL or query parameter",
    ),
    (
        "insecure-token-url",
        Severity::Error,
        "credentials sent over plain `http://` to a host other than loopback",
    ),
    ("broad-scope", Severity::Warning, "a scope of `*` or `…:*`"),
    (
        "client-auth-conflict",
        Severity::Error,
        "an `Authorization` header written beside a `client_auth` that sets credentials",
    ),
    (
        "missing-base-url",
        Severity::Error,
        "a relative endpoint URL with no `base_url`",
    ),
    (
        "pagination-without-records",
        Severity::Error,
        "`pagination` without `records`",
    ),
    (
        "body-shape",
        Severity::Error,
        "a body that is not exactly one of `form`, `json`, `raw` (with `content_type`)",
    ),
    (
        "invalid-pointer",
        Severity::Error,
        "a `records` or pagination path that is not a JSON pointer",
    ),
    (
        "invalid-status",
        Severity::Error,
        "a retry or re-authentication status that is not an HTTP failure status",
    ),
    (
        "invalid-header-name",
        Severity::Error,
        "a header name that is not an HTTP token",
    ),
    (
        "missing-token-url",
        Severity::Error,
        "an OAuth 2 method with neither `request.url` nor `issuer`",
    ),
    (
        "missing-authorize-url",
        Severity::Error,
        "an authorization code method with no authorization URL",
    ),
    (
        "wrong-grant",
        Severity::Error,
        "a key of another grant: `authorize` (PKCE) or `token_sharing` outside `oauth2_authorization_code`, `assertion` outside `oauth2_jwt_bearer`, `service_account` in a `client_assertion`",
    ),
    (
        "unknown-algorithm",
        Severity::Error,
        "a JWT signing `algorithm` other than `RS256`, `PS256`, `ES256`",
    ),
    (
        "no-client-auth",
        Severity::Error,
        "`client_auth: none` on the client credentials grant, with no credentials sent by hand",
    ),
    (
        "client-assertion-ignored",
        Severity::Error,
        "a `client_assertion` on a method whose `client_auth` is not `private_key_jwt`",
    ),
    (
        "empty-signing-key",
        Severity::Error,
        "a `key` or `service_account` that is empty, or a variable for it that is not `required`",
    ),
    (
        "signing-key-not-secret",
        Severity::Error,
        "a `key` or `service_account` that is not exactly one reference to a secret variable (a PEM or a file path written inline, a variable without `secret: true`)",
    ),
    (
        "ambiguous-signing-key",
        Severity::Error,
        "a JWT bearer `assertion` with both `key` and `service_account`",
    ),    (
        "too-many-diagnostics",
        Severity::Error,
        "more than 100 diagnostics in one file: the others are summed up in this one (a warning when they are all warnings)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_snippet_with_caret_and_help() {
        let source = "a: 1\nurl: \"{{ vars.regoin }}\"\n";
        let d = Diagnostic::error("undefined-reference", "unknown variable `regoin`")
            .at(
                "/url",
                Pos {
                    line: 2,
                    column: 10,
                    len: 11,
                },
            )
            .label("not declared")
            .help("did you mean `vars.region`?");
        let d = Diagnostic {
            file: "x.yaml".into(),
            ..d
        };
        let text = d.render(Some(source));
        assert_eq!(
            text,
            "error[undefined-reference]: unknown variable `regoin`\n \
             --> x.yaml:2:10\n  |\n2 | url: \"{{ vars.regoin }}\"\n  |          ^^^^^^^^^^^ not declared\n  |\n  \
             = help: did you mean `vars.region`?\n"
        );
    }
}

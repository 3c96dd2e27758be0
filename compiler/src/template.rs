//! Templates: `"text {{ ns.name }} text"`.
//!
//! A template is literal text with references. A reference is `{{ ns.name }}` (spaces inside
//! the braces optional) where `ns` is `vars`, `auth`, `input` or `page` and `name` is a letter
//! or `_` followed by letters, digits and `_`. `\{{` writes a literal `{{`. Parsing keeps the
//! character offset of each reference so diagnostics point at it.

use serde::{Deserialize, Serialize};

/// A namespace of references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    /// Connector and auth method variables: an instance's values.
    Vars,
    /// Fields of the auth response.
    Auth,
    /// Endpoint inputs.
    Input,
    /// Pagination state.
    Page,
}

impl Namespace {
    /// The name written in templates.
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Vars => "vars",
            Namespace::Auth => "auth",
            Namespace::Input => "input",
            Namespace::Page => "page",
        }
    }

    /// Every namespace's name.
    pub const NAMES: [&'static str; 4] = ["vars", "auth", "input", "page"];

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "vars" => Namespace::Vars,
            "auth" => Namespace::Auth,
            "input" => Namespace::Input,
            "page" => Namespace::Page,
            _ => return None,
        })
    }
}

/// A reference to a value: `ns.name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ref {
    /// The namespace.
    pub ns: Namespace,
    /// The name inside the namespace.
    pub name: String,
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.ns.as_str(), self.name)
    }
}

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// A reference, with the character offset and length of its `{{ … }}` in the source.
    Ref {
        /// What is referenced.
        target: Ref,
        /// Offset of `{{` in the template, in characters.
        offset: usize,
        /// Length of `{{ … }}`, in characters.
        len: usize,
    },
}

/// A syntax error in a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub help: String,
    /// Offset of the error in the template, in characters.
    pub offset: usize,
    /// Characters covered.
    pub len: usize,
}

/// Parses a template into pieces. Adjacent text is merged; empty text is dropped.
pub fn parse(source: &str) -> Result<Vec<Piece>, TemplateError> {
    let chars: Vec<char> = source.chars().collect();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && chars.get(i + 1) == Some(&'{') && chars.get(i + 2) == Some(&'{') {
            text.push_str("{{");
            i += 3;
            continue;
        }
        if chars[i] == '{' && chars.get(i + 1) == Some(&'{') {
            let start = i;
            let Some(close) = (i + 2..chars.len().saturating_sub(1))
                .find(|&j| chars[j] == '}' && chars[j + 1] == '}')
            else {
                return Err(TemplateError {
                    message: "`{{` is not closed by `}}`".into(),
                    help: "close the reference with `}}`, or write `\\{{` for a literal `{{`"
                        .into(),
                    offset: start,
                    len: 2,
                });
            };
            let inner: String = chars[i + 2..close].iter().collect();
            let len = close + 2 - start;
            let target = parse_ref(inner.trim()).map_err(|(message, help)| TemplateError {
                message,
                help,
                offset: start,
                len,
            })?;
            if !text.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut text)));
            }
            pieces.push(Piece::Ref {
                target,
                offset: start,
                len,
            });
            i = close + 2;
            continue;
        }
        text.push(chars[i]);
        i += 1;
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn parse_ref(inner: &str) -> Result<Ref, (String, String)> {
    let valid_name = |s: &str| {
        let mut c = s.chars();
        matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
            && c.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if inner.is_empty() {
        return Err((
            "empty reference `{{ }}`".into(),
            "write a reference such as `{{ vars.name }}`, or `\\{{` for a literal `{{`".into(),
        ));
    }
    let Some((ns, name)) = inner.split_once('.') else {
        let help = match crate::suggest::did_you_mean(inner, Namespace::NAMES) {
            Some(_) => format!("a reference names a namespace and a name, e.g. `{{{{ {inner}.name }}}}`"),
            None => format!("a reference names its namespace: `{{{{ vars.{inner} }}}}`, `{{{{ input.{inner} }}}}`, …"),
        };
        return Err((format!("`{inner}` is not a reference"), help));
    };
    let Some(namespace) = Namespace::parse(ns) else {
        let help = match crate::suggest::did_you_mean(ns, Namespace::NAMES) {
            Some(best) => format!("did you mean `{best}.{name}`?"),
            None => "the namespaces are `vars`, `auth`, `input` and `page`".into(),
        };
        return Err((format!("unknown namespace `{ns}` in `{inner}`"), help));
    };
    if !valid_name(name) {
        return Err((
            format!("`{name}` is not a valid name in `{inner}`"),
            "a name is a letter or `_` followed by letters, digits and `_`; filters and nested paths are not supported"
                .into(),
        ));
    }
    Ok(Ref {
        ns: namespace,
        name: name.to_owned(),
    })
}

/// The references of parsed pieces.
pub fn refs(pieces: &[Piece]) -> impl Iterator<Item = (&Ref, usize, usize)> {
    pieces.iter().filter_map(|p| match p {
        Piece::Ref {
            target,
            offset,
            len,
        } => Some((target, *offset, *len)),
        Piece::Text(_) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(ns: Namespace, name: &str, offset: usize, len: usize) -> Piece {
        Piece::Ref {
            target: Ref {
                ns,
                name: name.into(),
            },
            offset,
            len,
        }
    }

    #[test]
    fn parses_text_and_references() {
        assert_eq!(
            parse("https://login.{{ vars.region }}/x{{auth.t}}").unwrap(),
            vec![
                Piece::Text("https://login.".into()),
                r(Namespace::Vars, "region", 14, 17),
                Piece::Text("/x".into()),
                r(Namespace::Auth, "t", 33, 10),
            ]
        );
    }

    #[test]
    fn escape_writes_literal_braces() {
        assert_eq!(
            parse(r"a \{{ b }}").unwrap(),
            vec![Piece::Text("a {{ b }}".into())]
        );
        assert_eq!(
            parse("}} alone").unwrap(),
            vec![Piece::Text("}} alone".into())]
        );
    }

    #[test]
    fn syntax_errors_point_at_the_reference() {
        let e = parse("ab {{ vars.x").unwrap_err();
        assert_eq!((e.offset, e.len), (3, 2));
        let e = parse("ab {{ var.x }}").unwrap_err();
        assert!(e.help.contains("vars.x"), "{}", e.help);
        assert!(parse("{{ }}").is_err());
        assert!(parse("{{ vars.a.b }}").is_err());
        assert!(parse("{{ vars.x | upper }}").is_err());
        assert!(parse("{{ region }}").is_err());
    }
}

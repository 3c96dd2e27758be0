//! One parse of a YAML file into a JSON value and the position of every node.
//!
//! The events of `saphyr-parser` are folded into a [`serde_json::Value`] with an explicit stack
//! (no recursion, so nesting cannot overflow the stack), scalars are resolved by the YAML 1.2
//! core schema, and every node's key and value positions are recorded under its JSON pointer in
//! [`Locations`]. Duplicate keys, tags, non-scalar keys, excessive nesting and alias bombs are
//! reported as diagnostics.

use std::collections::HashMap as StdHashMap;

/// Maps keyed by JSON pointers and mapping keys of the file: foldhash, randomly seeded (fast,
/// and still resistant to keys crafted to collide).
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

use crate::diagnostic::{Diagnostic, Pos};

/// Deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 64;
/// Most nodes in a document, aliases expanded.
pub const MAX_NODES: usize = 1_000_000;

/// A parsed document: its value and where each node was written.
#[derive(Debug)]
pub struct Document {
    /// The document as JSON.
    pub value: Value,
    /// The position of each node, by JSON pointer.
    pub locations: Locations,
}

/// How a scalar was written; decides how offsets inside it map to columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A plain scalar: offsets are columns.
    Plain,
    /// A quoted scalar: offsets are columns after the opening quote.
    Quoted,
    /// A literal block scalar (`|`): offsets count lines below the indicator.
    Literal,
    /// A folded block scalar (`>`) or a mapping or sequence: only the start is known.
    Other,
}

/// Where a node was written.
#[derive(Debug, Clone, Copy)]
pub struct Loc {
    /// The key of the node, for a value in a mapping.
    pub key: Option<Pos>,
    /// The node itself.
    pub value: Pos,
    /// How the node was written.
    pub style: Style,
}

/// Positions of the nodes of a document, by JSON pointer.
#[derive(Debug, Default)]
pub struct Locations {
    map: HashMap<String, Loc>,
}

impl Locations {
    /// The location of the node at `pointer`, if it was written in the file.
    pub fn get(&self, pointer: &str) -> Option<&Loc> {
        self.map.get(pointer)
    }

    /// Every written node: its pointer and location, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Loc)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Whether the node at `pointer` was written in the file.
    pub fn contains(&self, pointer: &str) -> bool {
        self.map.contains_key(pointer)
    }

    /// The position of the value at `pointer`, or of its nearest written ancestor's key.
    pub fn value(&self, pointer: &str) -> Pos {
        match self.map.get(pointer) {
            Some(loc) => loc.value,
            None => self.ancestor(pointer),
        }
    }

    /// The position of the key of the node at `pointer` (its value for a sequence item), or
    /// of its nearest written ancestor's key.
    pub fn key(&self, pointer: &str) -> Pos {
        match self.map.get(pointer) {
            Some(loc) => loc.key.unwrap_or(loc.value),
            None => self.ancestor(pointer),
        }
    }

    fn ancestor(&self, pointer: &str) -> Pos {
        let mut p = pointer;
        while let Some(cut) = p.rfind('/') {
            p = &p[..cut];
            if let Some(loc) = self.map.get(p) {
                return loc.key.unwrap_or(loc.value);
            }
        }
        self.map.get("").map(|l| l.value).unwrap_or(Pos {
            line: 1,
            column: 1,
            len: 1,
        })
    }

    /// The position of the character at `offset` (in characters) inside the string at
    /// `pointer`, `len` characters long, when the way it was written allows it; else the
    /// string's own position.
    pub fn inside(&self, pointer: &str, source: &str, offset: usize, len: usize) -> Pos {
        let Some(loc) = self.map.get(pointer) else {
            return self.ancestor(pointer);
        };
        let start = loc.value;
        match loc.style {
            Style::Plain => Pos {
                line: start.line,
                column: start.column + offset,
                len,
            },
            Style::Quoted => Pos {
                line: start.line,
                column: start.column + 1 + offset,
                len,
            },
            Style::Literal => {
                // The scalar's span starts at its content, at the block's indentation; each
                // line of content is one line of the string.
                let mut lines = source.lines().enumerate().skip(start.line - 1);
                let Some((_, first)) = lines.clone().next() else {
                    return start;
                };
                let indent = first.chars().take_while(|c| *c == ' ').count();
                let mut remaining = offset;
                for (index, text) in lines.by_ref() {
                    let width = text.chars().count().saturating_sub(indent);
                    if remaining <= width {
                        return Pos {
                            line: index + 1,
                            column: indent + 1 + remaining,
                            len,
                        };
                    }
                    remaining -= width + 1;
                }
                start
            }
            Style::Other => start,
        }
    }
}

/// Escapes one segment of a JSON pointer (RFC 6901).
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Appends a segment to a JSON pointer.
pub fn join(pointer: &str, segment: &str) -> String {
    format!("{pointer}/{}", escape(segment))
}

/// A value being built.
enum Frame {
    Map {
        map: Map<String, Value>,
        pointer: String,
        anchor: usize,
        key: Option<(String, Pos)>,
        seen: HashMap<String, Pos>,
    },
    Seq {
        items: Vec<Value>,
        pointer: String,
        anchor: usize,
    },
}

/// Parses `source`. On failure the diagnostics say why (positions only; the caller sets the
/// file name).
pub fn parse(source: &str) -> Result<Document, Vec<Diagnostic>> {
    let mut builder = Builder::default();
    let mut documents = 0;
    for item in Parser::new_from_str(source) {
        let (event, span) = match item {
            Ok(pair) => pair,
            Err(e) => {
                let m = e.marker();
                return Err(vec![Diagnostic::error(
                    "yaml-syntax",
                    format!("YAML syntax error: {}", e.info()),
                )
                .at(
                    "",
                    Pos {
                        line: m.line().max(1),
                        column: m.col() + 1,
                        len: 1,
                    },
                )
                .help("fix the YAML syntax; `connector check` reads YAML 1.2")]);
            }
        };
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(vec![Diagnostic::error(
                        "multiple-documents",
                        "a connector file holds one YAML document, this one has several",
                    )
                    .at("", pos(&span))
                    .help(
                        "split the documents into one file each, or remove the `---` line",
                    )]);
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(tag) = tag {
                    let name = format!("{}{}", tag.handle, tag.suffix);
                    if !(tag.handle == "!!" && tag.suffix == "str")
                        && name != "tag:yaml.org,2002:str"
                    {
                        builder.error(
                            Diagnostic::error(
                                "yaml-tag",
                                format!("the YAML tag `{name}` is not supported"),
                            )
                            .at("", pos(&span))
                            .help("remove the tag; only `!!str` is accepted"),
                        );
                    }
                    builder.scalar(
                        Value::String(text.into_owned()),
                        text_style(style),
                        anchor,
                        &span,
                    )?;
                } else {
                    let value = match style {
                        ScalarStyle::Plain => resolve_plain(&text),
                        _ => Ok(Value::String(text.into_owned())),
                    };
                    match value {
                        Ok(v) => builder.scalar(v, text_style(style), anchor, &span)?,
                        Err(msg) => {
                            builder.error(Diagnostic::error("yaml-number", msg).at("", pos(&span)));
                            builder.scalar(Value::Null, Style::Plain, anchor, &span)?;
                        }
                    }
                }
            }
            Event::MappingStart(anchor, _) => builder.open(true, anchor, &span)?,
            Event::SequenceStart(anchor, _) => builder.open(false, anchor, &span)?,
            Event::MappingEnd | Event::SequenceEnd => builder.close()?,
            Event::Alias(id) => builder.alias(id, &span)?,
            Event::StreamEnd => break,
            _ => {}
        }
    }
    builder.finish()
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    locations: Locations,
    anchors: HashMap<usize, (Value, usize)>,
    nodes: usize,
    errors: Vec<Diagnostic>,
}

impl Builder {
    fn error(&mut self, d: Diagnostic) {
        self.errors.push(d);
    }

    fn count(&mut self, n: usize, span: &Span) -> Result<(), Vec<Diagnostic>> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(vec![Diagnostic::error(
                "yaml-too-large",
                format!("the document has more than {MAX_NODES} nodes once aliases are expanded"),
            )
            .at("", pos(span))
            .help(
                "a connector is far smaller than this; remove the aliases that multiply nodes",
            )]);
        }
        Ok(())
    }

    /// The pointer of the next node, with its key position; `None` when the node is a key.
    fn next_pointer(&mut self) -> Option<(String, Option<Pos>)> {
        match self.stack.last_mut() {
            None => Some((String::new(), None)),
            Some(Frame::Seq { items, pointer, .. }) => {
                Some((format!("{pointer}/{}", items.len()), None))
            }
            Some(Frame::Map {
                key: Some((k, p)),
                pointer,
                ..
            }) => Some((join(pointer, k), Some(*p))),
            Some(Frame::Map { key: None, .. }) => None,
        }
    }

    fn scalar(
        &mut self,
        value: Value,
        style: Style,
        anchor: usize,
        span: &Span,
    ) -> Result<(), Vec<Diagnostic>> {
        self.count(1, span)?;
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), 1));
        }
        self.leaf(value, style, span, |value| match value {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        });
        Ok(())
    }

    /// Places a scalar or an alias: the value of the pending key or sequence item, or else the
    /// next key (`key_text` turns the value into the key's text).
    fn leaf(
        &mut self,
        value: Value,
        style: Style,
        span: &Span,
        key_text: impl FnOnce(Value) -> String,
    ) {
        match self.next_pointer() {
            Some((pointer, key)) => {
                let value_pos = pos(span);
                self.locations.map.insert(
                    pointer,
                    Loc {
                        key,
                        value: value_pos,
                        style,
                    },
                );
                self.push(value);
            }
            None => self.key(key_text(value), pos(span)),
        }
    }

    fn key(&mut self, text: String, at: Pos) {
        let mut duplicate = None;
        if let Some(Frame::Map {
            key, seen, pointer, ..
        }) = self.stack.last_mut()
        {
            if let Some(first) = seen.get(&text) {
                duplicate = Some(
                    Diagnostic::error(
                        "duplicate-key",
                        format!("the key `{text}` is written twice in this mapping"),
                    )
                    .at(join(pointer, &text), at)
                    .help(format!("the first is on line {}; keep one", first.line)),
                );
            } else {
                seen.insert(text.clone(), at);
            }
            *key = Some((text, at));
        }
        if let Some(d) = duplicate {
            self.error(d);
        }
    }

    fn open(&mut self, is_map: bool, anchor: usize, span: &Span) -> Result<(), Vec<Diagnostic>> {
        self.count(1, span)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(vec![Diagnostic::error(
                "yaml-too-deep",
                format!("the document nests more than {MAX_DEPTH} levels deep"),
            )
            .at("", pos(span))
            .help("a connector needs only a few levels; flatten the structure")]);
        }
        let pointer = match self.next_pointer() {
            Some((pointer, key)) => {
                let style = Style::Other;
                self.locations.map.insert(
                    pointer.clone(),
                    Loc {
                        key,
                        value: pos(span),
                        style,
                    },
                );
                pointer
            }
            None => {
                self.error(
                    Diagnostic::error(
                        "yaml-key",
                        "a mapping key must be a plain value, not a mapping or a list",
                    )
                    .at("", pos(span)),
                );
                // Parse the complex key into a throwaway frame.
                "/\u{0}complex-key".to_string()
            }
        };
        self.stack.push(if is_map {
            Frame::Map {
                map: Map::new(),
                pointer,
                anchor,
                key: None,
                seen: HashMap::default(),
            }
        } else {
            Frame::Seq {
                items: Vec::new(),
                pointer,
                anchor,
            }
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), Vec<Diagnostic>> {
        let (value, pointer, anchor) = match self.stack.pop() {
            Some(Frame::Map {
                map,
                pointer,
                anchor,
                ..
            }) => (Value::Object(map), pointer, anchor),
            Some(Frame::Seq {
                items,
                pointer,
                anchor,
            }) => (Value::Array(items), pointer, anchor),
            None => return Ok(()),
        };
        if anchor > 0 {
            let size = count_nodes(&value);
            self.anchors.insert(anchor, (value.clone(), size));
        }
        if pointer.starts_with("/\u{0}") {
            let at = self
                .locations
                .map
                .get(&pointer)
                .map(|l| l.value)
                .unwrap_or_default();
            self.key(String::from("\u{0}"), at);
        } else {
            self.push(value);
        }
        Ok(())
    }

    fn alias(&mut self, id: usize, span: &Span) -> Result<(), Vec<Diagnostic>> {
        let Some((value, size)) = self.anchors.get(&id).cloned() else {
            return Err(vec![Diagnostic::error(
                "yaml-syntax",
                "YAML syntax error: unknown alias",
            )
            .at("", pos(span))]);
        };
        self.count(size, span)?;
        self.leaf(value, Style::Other, span, |value| match value {
            Value::String(s) => s,
            other => other.to_string(),
        });
        Ok(())
    }

    fn push(&mut self, value: Value) {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map { map, key, .. }) => {
                if let Some((k, _)) = key.take() {
                    map.insert(k, value);
                }
            }
        }
    }

    fn finish(mut self) -> Result<Document, Vec<Diagnostic>> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        match self.root.take() {
            None | Some(Value::Null) => Err(vec![Diagnostic::error(
                "empty-file",
                "the file has no content",
            )
            .help(
                "a connector needs at least `connector`, `name` and `auth`; see docs/authoring.md",
            )]),
            Some(value) => Ok(Document {
                value,
                locations: self.locations,
            }),
        }
    }
}

fn count_nodes(value: &Value) -> usize {
    let mut n = 0;
    let mut todo = vec![value];
    while let Some(v) = todo.pop() {
        n += 1;
        match v {
            Value::Array(items) => todo.extend(items),
            Value::Object(map) => todo.extend(map.values()),
            _ => {}
        }
    }
    n
}

fn text_style(style: ScalarStyle) -> Style {
    match style {
        ScalarStyle::Plain => Style::Plain,
        ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
        ScalarStyle::Literal => Style::Literal,
        _ => Style::Other,
    }
}

fn pos(span: &Span) -> Pos {
    let (s, e) = (span.start, span.end);
    let len = if e.line() == s.line() && e.col() > s.col() {
        e.col() - s.col()
    } else {
        1
    };
    Pos {
        line: s.line().max(1),
        column: s.col() + 1,
        len,
    }
}

/// Resolves a plain scalar by the YAML 1.2 core schema.
fn resolve_plain(text: &str) -> Result<Value, String> {
    Ok(match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF"
        | ".nan" | ".NaN" | ".NAN" => {
            return Err(format!(
                "`{text}` is not a finite number; quote it if you mean text"
            ));
        }
        _ => {
            if let Some(n) = resolve_int(text) {
                n
            } else if is_float(text) {
                match text.parse::<f64>().ok().and_then(Number::from_f64) {
                    Some(n) => Value::Number(n),
                    None => {
                        return Err(format!(
                            "`{text}` is not a finite number; quote it if you mean text"
                        ))
                    }
                }
            } else {
                Value::String(text.to_owned())
            }
        }
    })
}

fn resolve_int(text: &str) -> Option<Value> {
    let (digits, radix) = if let Some(h) = text.strip_prefix("0x") {
        (h, 16)
    } else if let Some(o) = text.strip_prefix("0o") {
        (o, 8)
    } else {
        let body = text.strip_prefix(['-', '+']).unwrap_or(text);
        if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        return match text.parse::<i64>() {
            Ok(i) => Some(Value::from(i)),
            Err(_) => text
                .parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number),
        };
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    i64::from_str_radix(digits, radix).ok().map(Value::from)
}

fn is_float(text: &str) -> bool {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], Some(&mantissa[i + 1..])),
        None => (mantissa, None),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && digits(int),
    };
    let exponent_ok = match exponent {
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && digits(e)
        }
        None => true,
    };
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn core_schema_scalars() {
        let doc =
            parse("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: 0x1f\ng: 1e3\nh: yes\ni: -7\n").unwrap();
        assert_eq!(
            doc.value,
            json!({"a":1,"b":1.5,"c":true,"d":null,"e":"1","f":31,"g":1000.0,"h":"yes","i":-7})
        );
    }

    #[test]
    fn records_key_and_value_positions() {
        let doc = parse("top:\n  inner: \"x\"\n  list:\n    - a\n    - b: 2\n").unwrap();
        let loc = doc.locations.get("/top/inner").unwrap();
        assert_eq!(
            loc.key.unwrap(),
            Pos {
                line: 2,
                column: 3,
                len: 5
            }
        );
        assert_eq!((loc.value.line, loc.value.column), (2, 10));
        assert_eq!(doc.locations.value("/top/list/1/b").line, 5);
        assert_eq!(doc.locations.key("/top/list/1/missing").line, 5);
        assert_eq!(doc.locations.get("/top/list/0").unwrap().value.column, 7);
    }

    #[test]
    fn offsets_inside_literal_blocks_map_to_lines() {
        let source = "raw: |\n  first {{ a }}\n  second {{ b }}\n";
        let doc = parse(source).unwrap();
        let text = doc.value["raw"].as_str().unwrap();
        let offset = text.find("{{ b").unwrap();
        let pos = doc.locations.inside("/raw", source, offset, 6);
        assert_eq!((pos.line, pos.column), (3, 10));
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let errors = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(errors[0].code, "duplicate-key");
        assert_eq!(errors[0].line, 3);
    }

    #[test]
    fn syntax_error_has_a_line() {
        let errors = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert_eq!(errors[0].code, "yaml-syntax");
        assert!(errors[0].line >= 2);
    }

    #[test]
    fn empty_and_comment_only_files_are_empty() {
        assert_eq!(parse("").unwrap_err()[0].code, "empty-file");
        assert_eq!(parse("# nothing\n").unwrap_err()[0].code, "empty-file");
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            bomb.push_str(&format!("l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        assert_eq!(parse(&bomb).unwrap_err()[0].code, "yaml-too-large");
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(parse(&deep).unwrap_err()[0].code, "yaml-too-deep");
    }

    #[test]
    fn aliases_are_expanded() {
        let doc = parse("h: &h {Accept: json}\nx: *h\n").unwrap();
        assert_eq!(doc.value["x"], json!({"Accept": "json"}));
    }
}

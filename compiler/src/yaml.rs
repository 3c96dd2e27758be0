//! One parse of a YAML file into a JSON value and the position of every node.
//!
//! The events of `saphyr-parser` are folded into a [`serde_json::Value`] with an explicit stack
//! (no recursion, so nesting cannot overflow the stack), scalars are resolved by the YAML 1.2
//! core schema, and every node's key and value positions are recorded under its JSON pointer in
//! [`Locations`]. Duplicate keys, tags, non-scalar keys, excessive nesting, oversized documents
//! and keys, and alias bombs are reported as diagnostics.
//!
//! An alias is expanded into a copy of its anchor's node (the runtime reads plain JSON), so the
//! copies are counted before they are made: aliases may copy at most [`MAX_ALIAS_NODES`] nodes
//! and [`MAX_ALIAS_BYTES`] bytes of text in all, which refuses a "billion laughs" file after a
//! few thousand nodes of work. An anchored mapping or list is not copied when it is defined: an
//! alias finds it in the document being built.

use std::collections::HashMap as StdHashMap;

/// Maps keyed by JSON pointers and mapping keys of the file: foldhash, randomly seeded (fast,
/// and still resistant to keys crafted to collide).
type HashMap<K, V> = StdHashMap<K, V, foldhash::fast::RandomState>;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span};
use serde_json::{Map, Number, Value};

use crate::diagnostic::{Diagnostic, Pos};

/// Deepest nesting of mappings and sequences accepted (`yaml-too-deep`).
pub const MAX_DEPTH: usize = 64;
/// Most nodes in a document, keys included and aliases expanded (`yaml-too-large`).
pub const MAX_NODES: usize = 100_000;
/// Most nodes that all the aliases of a document may copy together (`yaml-aliases`).
pub const MAX_ALIAS_NODES: usize = 10_000;
/// Most bytes of text (scalars and keys) that all the aliases of a document may copy together
/// (`yaml-aliases`).
pub const MAX_ALIAS_BYTES: usize = 1 << 20;
/// Longest path of keys from the top of the document down to a key, in characters, as a JSON
/// pointer (`yaml-key-too-long`). Every node's pointer is kept in [`Locations`], so this and
/// [`MAX_NODES`] bound their size.
pub const MAX_KEY_PATH: usize = 512;

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
    /// Where each line starts, for positions inside literal block scalars.
    line_starts: Vec<usize>,
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
        self.inside_all(pointer, source, &[(offset, len)])[0]
    }

    /// [`Locations::inside`] for several `(offset, len)` spans of one string, in one pass over
    /// it (a string with thousands of references costs no more than one).
    pub fn inside_all(&self, pointer: &str, source: &str, spans: &[(usize, usize)]) -> Vec<Pos> {
        let Some(loc) = self.map.get(pointer) else {
            return vec![self.ancestor(pointer); spans.len()];
        };
        let start = loc.value;
        match loc.style {
            Style::Plain => self.flowing(start, 0, source, spans),
            Style::Quoted => self.flowing(start, 1, source, spans),
            Style::Literal => self.literal(start, source, spans),
            Style::Other => vec![start; spans.len()],
        }
    }

    /// Spans inside a plain or quoted scalar, whose content starts `shift` characters after
    /// its position. On one line, offsets are columns. Written over several lines, the scalar
    /// is folded: each next line loses its indentation, and the line break before it is one
    /// space (or, after blank lines, one line feed per blank line); an offset in a fold points
    /// at the start of the next line. Escapes of double quotes are counted as written, which
    /// stays on the right line.
    fn flowing(
        &self,
        start: Pos,
        shift: usize,
        source: &str,
        spans: &[(usize, usize)],
    ) -> Vec<Pos> {
        let mut out = vec![start; spans.len()];
        let Some(text) = self.line_onwards(source, start.line) else {
            return out;
        };
        let mut lines = text.lines().enumerate();
        let Some((_, first)) = lines.next() else {
            return out;
        };
        let skip = start.column - 1 + shift;
        // The current line: its index from the first, the column of its first character of
        // content, how many characters of content it has; and how many came before it.
        let (mut index, mut column, mut length) =
            (0, skip + 1, first.chars().count().saturating_sub(skip));
        let mut before = 0;
        let mut order = by_offset(spans).into_iter().peekable();
        loop {
            while let Some(&i) = order.peek() {
                let (offset, len) = spans[i];
                if offset > before + length {
                    break;
                }
                out[i] = Pos {
                    line: start.line + index,
                    column: column + offset.saturating_sub(before),
                    len,
                };
                order.next();
            }
            if order.peek().is_none() {
                break;
            }
            let mut blanks = 0;
            let next = lines.by_ref().find(|(_, text)| {
                let blank = text.trim().is_empty();
                blanks += usize::from(blank);
                !blank
            });
            let Some((next, text)) = next else {
                break;
            };
            let content = text.trim_start_matches([' ', '\t']).chars().count();
            before += length + blanks.max(1);
            (index, column, length) = (next, text.chars().count() - content + 1, content);
        }
        out
    }

    /// The source from the start of `line` (1-based) to its end.
    fn line_onwards<'s>(&self, source: &'s str, line: usize) -> Option<&'s str> {
        self.line_starts
            .get(line.checked_sub(1)?)
            .and_then(|from| source.get(*from..))
    }

    /// Spans inside a literal block scalar: its span starts at its content, at the block's
    /// indentation, and each line of content is one line of the string.
    fn literal(&self, start: Pos, source: &str, spans: &[(usize, usize)]) -> Vec<Pos> {
        let mut out = vec![start; spans.len()];
        let Some(text) = self.line_onwards(source, start.line) else {
            return out;
        };
        let mut lines = text.lines().enumerate();
        let Some((_, first)) = lines.clone().next() else {
            return out;
        };
        let indent = first.chars().take_while(|c| *c == ' ').count();
        let mut order = by_offset(spans).into_iter().peekable();
        // Characters of the string before the current line.
        let mut before = 0;
        for (index, text) in lines.by_ref() {
            let width = text.chars().count().saturating_sub(indent);
            while let Some(&i) = order.peek() {
                let (offset, len) = spans[i];
                if offset > before + width {
                    break;
                }
                out[i] = Pos {
                    line: start.line + index,
                    column: indent + 1 + offset - before,
                    len,
                };
                order.next();
            }
            if order.peek().is_none() {
                break;
            }
            before += width + 1;
        }
        out
    }
}

/// The indices of `spans`, by offset.
fn by_offset(spans: &[(usize, usize)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..spans.len()).collect();
    order.sort_by_key(|i| spans[*i].0);
    order
}

/// The byte offset where each line of `source` starts (lines end at LF; a CR before it is part
/// of the line, as for [`str::lines`]).
fn line_starts(source: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(source.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
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
        start: Pos,
        key: Option<(String, Pos)>,
        seen: HashMap<String, Pos>,
    },
    Seq {
        items: Vec<Value>,
        pointer: String,
        anchor: usize,
        start: Pos,
    },
}

/// Parses `source`. On failure the diagnostics say why (positions only; the caller sets the
/// file name).
pub fn parse(source: &str) -> Result<Document, Vec<Diagnostic>> {
    // The scanner reads the end of the file as one more line break: a node or an error there
    // is placed on a line the file may not have, and is moved back to the end of the file.
    let end = End::of(source);
    match parse_events(source) {
        Ok(mut document) => {
            for loc in document.locations.map.values_mut() {
                loc.value = end.clamp(loc.value);
                loc.key = loc.key.map(|k| end.clamp(k));
            }
            document.locations.line_starts = line_starts(source);
            Ok(document)
        }
        Err(mut errors) => {
            for d in errors.iter_mut().filter(|d| d.line > end.line) {
                (d.line, d.column, d.len) = (end.line, end.column, 1);
            }
            Err(errors)
        }
    }
}

/// The position just after the last character of a text.
struct End {
    line: usize,
    column: usize,
}

impl End {
    fn of(source: &str) -> End {
        let mut line = 1;
        let mut last = source;
        let bytes = source.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\n' || (*b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                line += 1;
                last = &source[i + 1..];
            }
        }
        End {
            line,
            column: last.chars().count() + 1,
        }
    }

    /// `at`, or the end when `at` is on a line after the last.
    fn clamp(&self, at: Pos) -> Pos {
        if at.line <= self.line {
            return at;
        }
        Pos {
            line: self.line,
            column: self.column,
            len: 1,
        }
    }
}

fn parse_events(source: &str) -> Result<Document, Vec<Diagnostic>> {
    let mut builder = Builder::default();
    let mut documents = 0;
    for item in Parser::new_from_str(source) {
        let (event, span) = match item {
            Ok(pair) => pair,
            Err(e) => return Err(vec![syntax_error(source, &e)]),
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

/// The `yaml-syntax` error of a scanner error. Tabs get their own help, and the caret points at
/// the first tab of the line's indentation rather than after it.
fn syntax_error(source: &str, e: &ScanError) -> Diagnostic {
    let m = e.marker();
    let mut at = Pos {
        line: m.line().max(1),
        column: m.col() + 1,
        len: 1,
    };
    let mut help = "fix the YAML syntax; `connector check` reads YAML 1.2";
    let info = e.info();
    let key_error = info.contains("mapping values are not allowed") || info.contains("simple key");
    if key_error && at.column > 1024 {
        // The scanner gave up on a key longer than YAML allows a key without `?` to be.
        help = "a key written without `?` may be at most 1024 characters long (a YAML rule); keys are short names: shorten this one";
    } else if info.contains("tab") {
        help = "indent with spaces: YAML does not allow tabs in indentation";
        let text = source.split('\n').nth(at.line - 1).unwrap_or_default();
        if let Some(i) = text
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .position(|c| c == '\t')
        {
            at.column = i + 1;
        }
    }
    Diagnostic::error("yaml-syntax", format!("YAML syntax error: {}", e.info()))
        .at("", at)
        .help(help)
}

/// What an anchor (`&name`) names.
enum Anchor {
    /// A scalar, kept as it was read (it may have been a key, which is not in the tree).
    Scalar(Value),
    /// A mapping or list, found again in the document by its pointer when an alias needs it.
    Node(String),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    locations: Locations,
    anchors: HashMap<usize, Anchor>,
    nodes: usize,
    alias_nodes: usize,
    alias_bytes: usize,
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
                format!("the document has more than {MAX_NODES} nodes (keys, values and list items, aliases expanded)"),
            )
            .at("", pos(span))
            .label("the limit is passed here")
            .help(
                "a connector has a few hundred nodes; check that this is the right file, or split it into several connectors",
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
            self.anchors.insert(anchor, Anchor::Scalar(value.clone()));
        }
        self.leaf(value, style, span, |value| match value {
            Value::String(s) => s,
            Value::Null => String::new(),
            other => other.to_string(),
        })
    }

    /// Places a scalar or an alias: the value of the pending key or sequence item, or else the
    /// next key (`key_text` turns the value into the key's text).
    fn leaf(
        &mut self,
        value: Value,
        style: Style,
        span: &Span,
        key_text: impl FnOnce(Value) -> String,
    ) -> Result<(), Vec<Diagnostic>> {
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
                Ok(())
            }
            None => self.key(key_text(value), pos(span)),
        }
    }

    fn key(&mut self, text: String, at: Pos) -> Result<(), Vec<Diagnostic>> {
        self.set_key(text, at, true)
    }

    /// Sets the pending key of the current mapping; `check` says whether it may be reported as
    /// a duplicate (not the placeholder of a mapping or list used as a key, already an error).
    fn set_key(&mut self, text: String, at: Pos, check: bool) -> Result<(), Vec<Diagnostic>> {
        let mut duplicate = None;
        if let Some(Frame::Map {
            key, seen, pointer, ..
        }) = self.stack.last_mut()
        {
            let length = pointer.chars().count() + 1 + escape(&text).chars().count();
            if length > MAX_KEY_PATH {
                return Err(vec![key_too_long(pointer, &text, length, at)]);
            }
            if !check {
            } else if let Some(first) = seen.get(&text) {
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
        Ok(())
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
        let start = pos(span);
        self.stack.push(if is_map {
            Frame::Map {
                map: Map::new(),
                pointer,
                anchor,
                start,
                key: None,
                seen: HashMap::default(),
            }
        } else {
            Frame::Seq {
                items: Vec::new(),
                pointer,
                anchor,
                start,
            }
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), Vec<Diagnostic>> {
        let (value, pointer, anchor, start) = match self.stack.pop() {
            Some(Frame::Map {
                map,
                pointer,
                anchor,
                start,
                ..
            }) => (Value::Object(map), pointer, anchor, start),
            Some(Frame::Seq {
                items,
                pointer,
                anchor,
                start,
            }) => (Value::Array(items), pointer, anchor, start),
            None => return Ok(()),
        };
        if anchor > 0 {
            self.anchors.insert(anchor, Anchor::Node(pointer.clone()));
        }
        if pointer.starts_with("/\u{0}") {
            self.set_key(String::from("\u{0}"), start, false)?;
        } else {
            self.push(value);
        }
        Ok(())
    }

    /// The finished node at `pointer`: inside the deepest open mapping or list that holds it.
    fn lookup(&self, pointer: &str) -> Option<&Value> {
        for frame in self.stack.iter().rev() {
            let (Frame::Map { pointer: at, .. } | Frame::Seq { pointer: at, .. }) = frame;
            let Some(rest) = pointer.strip_prefix(at.as_str()) else {
                continue;
            };
            let Some(rest) = rest.strip_prefix('/') else {
                continue;
            };
            let (first, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let child = match frame {
                Frame::Map { map, .. } => map.get(&first.replace("~1", "/").replace("~0", "~")),
                Frame::Seq { items, .. } => first.parse::<usize>().ok().and_then(|i| items.get(i)),
            };
            return child.and_then(|c| c.pointer(tail));
        }
        None
    }

    fn alias(&mut self, id: usize, span: &Span) -> Result<(), Vec<Diagnostic>> {
        // Measure what the alias would copy, stopping as soon as it is over the budget, and
        // copy it only when it fits.
        let (nodes, bytes, value) = {
            let target = match self.anchors.get(&id) {
                Some(Anchor::Scalar(v)) => Some(v),
                Some(Anchor::Node(pointer)) => self.lookup(pointer),
                None => {
                    return Err(vec![Diagnostic::error(
                        "yaml-syntax",
                        "YAML syntax error: unknown alias",
                    )
                    .at("", pos(span))]);
                }
            };
            match target {
                // An anchor inside a mapping used as a key (already an error): nothing to copy.
                None => (1, 0, Value::Null),
                Some(v) => {
                    let node_room = MAX_ALIAS_NODES - self.alias_nodes;
                    let byte_room = MAX_ALIAS_BYTES - self.alias_bytes;
                    let (nodes, bytes) = measure(v, node_room, byte_room);
                    let fits = nodes <= node_room && bytes <= byte_room;
                    (nodes, bytes, if fits { v.clone() } else { Value::Null })
                }
            }
        };
        self.alias_nodes += nodes;
        self.alias_bytes += bytes;
        if self.alias_nodes > MAX_ALIAS_NODES || self.alias_bytes > MAX_ALIAS_BYTES {
            let what = if self.alias_nodes > MAX_ALIAS_NODES {
                format!("{MAX_ALIAS_NODES} nodes")
            } else {
                format!("1 MiB ({MAX_ALIAS_BYTES} bytes) of text")
            };
            return Err(vec![Diagnostic::error(
                "yaml-aliases",
                format!("the aliases in this file expand to more than {what}"),
            )
            .at("", pos(span))
            .label("the limit is passed here")
            .help(
                "an alias (`*name`) is a copy of everything its anchor (`&name`) holds, so aliases of aliases multiply; write the values out, or alias only small ones",
            )]);
        }
        self.count(nodes, span)?;
        self.leaf(value, Style::Other, span, |value| match value {
            Value::String(s) => s,
            other => other.to_string(),
        })
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

/// The `yaml-key-too-long` error of a key whose path is `length` characters long.
fn key_too_long(pointer: &str, key: &str, length: usize, at: Pos) -> Diagnostic {
    let path = crate::schema_check::place(&join(pointer, key));
    let path = path.trim_matches('`');
    let short: String = path.chars().take(60).collect();
    let shown = if short.len() < path.len() {
        format!("`{short}…`")
    } else {
        format!("`{short}`")
    };
    Diagnostic::error(
        "yaml-key-too-long",
        format!("the path to this key, {shown}, is {length} characters long, more than the {MAX_KEY_PATH} allowed"),
    )
    .at("", Pos { len: at.len.min(key.chars().count()).max(1), ..at })
    .help("keys are short names (of endpoints, variables, headers, fields): shorten this one, or nest less deeply")
}

/// The nodes (keys included) and bytes of text (scalars and keys) in `value`; stops counting
/// once either is over its room.
fn measure(value: &Value, node_room: usize, byte_room: usize) -> (usize, usize) {
    let (mut nodes, mut bytes) = (0, 0);
    let mut todo = vec![value];
    while let Some(v) = todo.pop() {
        nodes += 1;
        match v {
            Value::String(s) => bytes += s.len(),
            Value::Array(items) => todo.extend(items),
            Value::Object(map) => {
                for (k, v) in map {
                    nodes += 1;
                    bytes += k.len();
                    todo.push(v);
                }
            }
            _ => {}
        }
        if nodes > node_room || bytes > byte_room {
            break;
        }
    }
    (nodes, bytes)
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
        assert_eq!(parse(&bomb).unwrap_err()[0].code, "yaml-aliases");
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(parse(&deep).unwrap_err()[0].code, "yaml-too-deep");
        let wide = format!("[{}1]", "1,".repeat(MAX_NODES));
        assert_eq!(parse(&wide).unwrap_err()[0].code, "yaml-too-large");
    }

    #[test]
    fn aliases_of_long_text_are_counted_by_bytes() {
        let text = format!(
            "a: &a \"{}\"\nb: [{}]\n",
            "x".repeat(100_000),
            "*a, ".repeat(20)
        );
        let errors = parse(&text).unwrap_err();
        assert_eq!(errors[0].code, "yaml-aliases");
        assert!(errors[0].message.contains("1 MiB (1048576 bytes) of text"));
        assert_eq!((errors[0].line, errors[0].column), (2, 45));
    }

    #[test]
    fn aliases_are_expanded() {
        let doc = parse("h: &h {Accept: json}\nx: *h\n").unwrap();
        assert_eq!(doc.value["x"], json!({"Accept": "json"}));
        // Anchors inside anchored nodes, and aliases of both, in mappings and lists.
        let doc = parse("a: &a [1, &b {k: [2, 3]}]\nb: *b\nc: [*a, *b]\nd: &d x\ne: {*d : *d}\n")
            .unwrap();
        assert_eq!(doc.value["b"], json!({"k": [2, 3]}));
        assert_eq!(doc.value["c"], json!([[1, {"k": [2, 3]}], {"k": [2, 3]}]));
        assert_eq!(doc.value["e"], json!({"x": "x"}));
    }

    #[test]
    fn an_alias_is_charged_for_what_it_copies() {
        // A duplicate key writes a large list over the anchored one: the aliases copy the
        // large list, and are charged for it.
        let text = format!(
            "a: &x [1]\na: [{}1]\nb: [{}]\n",
            "1,".repeat(5000),
            "*x, ".repeat(5000)
        );
        let errors = parse(&text).unwrap_err();
        assert_eq!(errors[0].code, "yaml-aliases");
        assert_eq!(errors[0].line, 3);
    }

    #[test]
    fn long_keys_are_refused() {
        let text = format!("a:\n  {}: 1\n", "k".repeat(MAX_KEY_PATH));
        let errors = parse(&text).unwrap_err();
        assert_eq!(errors[0].code, "yaml-key-too-long");
        assert_eq!((errors[0].line, errors[0].column), (2, 3));
        let nested: String = (0..40)
            .map(|i| format!("{}{}:\n", " ".repeat(i * 2), "k".repeat(30)))
            .collect();
        assert_eq!(parse(&nested).unwrap_err()[0].code, "yaml-key-too-long");
        assert!(parse(&format!("{}: 1\n", "k".repeat(MAX_KEY_PATH - 1))).is_ok());
    }

    #[test]
    fn mappings_as_keys_are_located_and_not_duplicates() {
        let errors = parse("a: 1\n? [x]\n: 1\n? {y: 1}\n: 2\n").unwrap_err();
        let found: Vec<(&str, usize, usize)> =
            errors.iter().map(|d| (d.code, d.line, d.column)).collect();
        assert_eq!(found, [("yaml-key", 2, 3), ("yaml-key", 4, 3)]);
    }

    #[test]
    fn positions_at_the_end_of_the_file_stay_in_it() {
        // The scanner reads the end as one more line break.
        let errors = parse("a: [1").unwrap_err();
        assert_eq!((errors[0].line, errors[0].column), (1, 6));
        let doc = parse("? ").unwrap();
        assert_eq!(doc.locations.key("/").line, 1);
    }

    #[test]
    fn tabs_in_indentation_point_at_the_tab() {
        let errors = parse("a:\n\tb: 1\n").unwrap_err();
        assert_eq!(errors[0].code, "yaml-syntax");
        assert_eq!((errors[0].line, errors[0].column), (2, 1));
        assert!(errors[0].help.as_deref().unwrap().contains("spaces"));
    }

    #[test]
    fn many_offsets_inside_one_literal_block() {
        let source = "raw: |\n  a {{ x }}\n\n  bb {{ y }} {{ z }}\n";
        let doc = parse(source).unwrap();
        let text = doc.value["raw"].as_str().unwrap();
        let spans: Vec<(usize, usize)> = ["{{ z", "{{ x", "{{ y"]
            .iter()
            .map(|s| (text.find(s).unwrap(), 1))
            .collect();
        let at: Vec<(usize, usize)> = doc
            .locations
            .inside_all("/raw", source, &spans)
            .iter()
            .map(|p| (p.line, p.column))
            .collect();
        assert_eq!(at, [(4, 14), (2, 5), (4, 6)]);
    }
}

//! The connector compiler: YAML in, located diagnostics and IR out.
//!
//! The pipeline, each stage in its own module:
//!
//! 1. [`yaml`]: one parse of the text into a JSON value plus the position of every node;
//! 2. [`schema_check`]: JSON Schema validation, errors walked back to lines;
//! 3. typed deserialization into [`connector_spec::Connector`];
//! 4. [`expand`]: the defaults of typed auth methods and endpoints written out;
//! 5. [`checks`]: the semantic checks, each with its own code;
//! 6. [`lower`]: the [`ir::Ir`] the runtime runs.
//!
//! Every stage that can run does, and all diagnostics are collected before failing. The
//! compiler does no I/O: callers hand it the text (or bytes) of one file.

pub mod diagnostic;
pub mod emit;
pub mod expand;
pub mod ir;
pub mod schema_check;
pub mod template;
pub mod yaml;

mod checks;
mod lower;
mod suggest;

use connector_spec::{Connector, Instance};
use serde::de::DeserializeOwned;

pub use diagnostic::{Diagnostic, Pos, Severity};
pub use ir::Ir;
pub use lower::tpl as parse_template;
pub use schema_check::Kind;
pub use suggest::did_you_mean;
pub use suggest::help as suggest_help;

/// What compiling one file produced.
#[derive(Debug)]
pub struct Compiled {
    /// Every diagnostic, sorted by position; past [`diagnostic::MAX_DIAGNOSTICS`], the others
    /// are summed up in one last `too-many-diagnostics`.
    pub diagnostics: Vec<Diagnostic>,
    /// The connector with every default written out, when it could be read.
    pub expanded: Option<Connector>,
    /// The IR, when there was no error.
    pub ir: Option<Ir>,
}

impl Compiled {
    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// A file read and validated against its schema.
#[derive(Debug)]
pub struct Loaded<T> {
    /// The typed value.
    pub value: T,
    /// Where each node was written.
    pub locations: yaml::Locations,
    /// The text as decoded: without a byte-order mark, a lone CR made a LF.
    pub text: String,
    /// Unknown keys that were reported and set aside so that the rest could be read.
    pub unknown_keys: Vec<Diagnostic>,
}

/// The largest connector or instance file read, in bytes: 1 MiB (`file-too-large`). The
/// other limits are in [`yaml`]: [`yaml::MAX_DEPTH`], [`yaml::MAX_NODES`],
/// [`yaml::MAX_ALIAS_NODES`], [`yaml::MAX_ALIAS_BYTES`], [`yaml::MAX_KEY_PATH`].
pub const MAX_FILE_BYTES: usize = 1 << 20;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Decodes bytes as UTF-8 text, refusing files over [`MAX_FILE_BYTES`] and binary files. The
/// byte-order mark is dropped, and a lone carriage return becomes a line feed (YAML reads both
/// as a line break; this keeps line numbers the same for every reader of the text).
pub fn decode(bytes: &[u8]) -> Result<String, Box<Diagnostic>> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(Box::new(
            Diagnostic::error(
                "file-too-large",
                format!(
                    "the file is larger than the {MAX_FILE_BYTES} bytes (1 MiB) a connector or instance file may have"
                ),
            )
            .at("", position(bytes, MAX_FILE_BYTES))
            .label("1 MiB is passed here")
            .help(
                "a connector is a few kilobytes: check that this is the right file; a large value such as a key or a certificate belongs in a file that an instance names (`file:`)",
            ),
        ));
    }
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    if bytes.contains(&0) {
        return Err(Box::new(
            Diagnostic::error(
                "binary-file",
                "this is a binary file, not YAML text (it contains NUL bytes)",
            )
            .help("give the path of a `.yaml` connector file"),
        ));
    }
    let mut bytes = bytes.to_vec();
    for i in 0..bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n') {
            bytes[i] = b'\n';
        }
    }
    String::from_utf8(bytes).map_err(|e| {
        Diagnostic::error(
            "binary-file",
            format!(
                "the file is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
        .help("save the file as UTF-8")
        .into()
    })
}

/// The line and column (in characters, after a byte-order mark) of the byte at `offset`; line
/// breaks are LF, CRLF or a lone CR, as in YAML.
fn position(bytes: &[u8], offset: usize) -> Pos {
    let mut line = 1;
    let mut start = if bytes.starts_with(BOM) { BOM.len() } else { 0 };
    for (i, b) in bytes.iter().enumerate().take(offset) {
        let is_break = *b == b'\n' || (*b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
        if is_break {
            line += 1;
            start = i + 1;
        }
    }
    let column = bytes
        .get(start..offset)
        .unwrap_or_default()
        .iter()
        .filter(|b| (**b & 0xC0) != 0x80)
        .count()
        + 1;
    Pos {
        line,
        column,
        len: 1,
    }
}

/// Parses, validates and deserializes a file of the given kind.
pub fn load<T: DeserializeOwned>(
    kind: Kind,
    file: &str,
    bytes: &[u8],
) -> Result<Loaded<T>, Vec<Diagnostic>> {
    let text = decode(bytes).map_err(|d| vec![*d])?;
    let doc = yaml::parse(&text).map_err(|ds| with_file(ds, file))?;
    let mut value = doc.value;
    let errors = schema_check::validate(kind, &value, &doc.locations);
    // Unknown keys alone do not stop the later checks: they are set aside and reported.
    if errors.iter().any(|d| d.code != "unknown-key") {
        return Err(with_file(errors, file));
    }
    remove(&mut value, errors.iter().map(|d| d.pointer.as_str()));
    match serde_json::from_value::<T>(value) {
        Ok(value) => Ok(Loaded {
            value,
            locations: doc.locations,
            text,
            unknown_keys: with_file(errors, file),
        }),
        Err(e) => Err(with_file(
            vec![Diagnostic::error(
                "invalid-value",
                format!("the file does not match the format: {e}"),
            )
            .at("", yaml::Locations::default().value(""))],
            file,
        )),
    }
}

/// Reads an instance file (its values are checked against the connector by the runtime).
pub fn load_instance(file: &str, bytes: &[u8]) -> Result<Loaded<Instance>, Vec<Diagnostic>> {
    match load(Kind::Instance, file, bytes) {
        Ok(mut loaded) => {
            diagnostic::cap(&mut loaded.unknown_keys);
            Ok(loaded)
        }
        Err(mut diagnostics) => {
            diagnostic::cap(&mut diagnostics);
            Err(diagnostics)
        }
    }
}

/// Compiles the connector file `file` whose content is `bytes`.
pub fn compile(file: &str, bytes: &[u8]) -> Compiled {
    let loaded = match load::<Connector>(Kind::Connector, file, bytes) {
        Ok(l) => l,
        Err(mut diagnostics) => {
            diagnostic::sort(&mut diagnostics);
            diagnostic::cap(&mut diagnostics);
            return Compiled {
                diagnostics: with_file(diagnostics, file),
                expanded: None,
                ir: None,
            };
        }
    };
    let expanded = expand::expand(&loaded.value);
    let mut diagnostics = checks::run(&loaded.text, &loaded.locations, &expanded);
    diagnostics.extend(loaded.unknown_keys);
    diagnostic::sort(&mut diagnostics);
    diagnostics.dedup();
    let mut diagnostics = with_file(diagnostics, file);
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    diagnostic::cap(&mut diagnostics);
    let ir = if has_errors {
        None
    } else {
        Some(lower::lower(&expanded))
    };
    Compiled {
        diagnostics,
        expanded: Some(expanded),
        ir,
    }
}

/// Removes the nodes at `pointers` from `value`: each mapping once, in one pass.
fn remove<'a>(value: &mut serde_json::Value, pointers: impl Iterator<Item = &'a str>) {
    let mut by_parent: std::collections::HashMap<&str, std::collections::HashSet<String>> =
        std::collections::HashMap::new();
    for pointer in pointers {
        if let Some((parent, last)) = pointer.rsplit_once('/') {
            let key = last.replace("~1", "/").replace("~0", "~");
            by_parent.entry(parent).or_default().insert(key);
        }
    }
    for (parent, keys) in by_parent {
        if let Some(serde_json::Value::Object(map)) = value.pointer_mut(parent) {
            map.retain(|k, _| !keys.contains(k));
        }
    }
}

fn with_file(mut diagnostics: Vec<Diagnostic>, file: &str) -> Vec<Diagnostic> {
    for d in &mut diagnostics {
        d.file = file.to_owned();
    }
    diagnostics
}

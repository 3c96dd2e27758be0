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
    /// Every diagnostic, sorted by position.
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
    /// The text, without a byte-order mark.
    pub text: String,
    /// Unknown keys that were reported and set aside so that the rest could be read.
    pub unknown_keys: Vec<Diagnostic>,
}

/// Decodes bytes as UTF-8 text, refusing binary files.
pub fn decode(bytes: &[u8]) -> Result<String, Box<Diagnostic>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.contains(&0) {
        return Err(Box::new(
            Diagnostic::error(
                "binary-file",
                "this is a binary file, not YAML text (it contains NUL bytes)",
            )
            .help("give the path of a `.yaml` connector file"),
        ));
    }
    String::from_utf8(bytes.to_vec()).map_err(|e| {
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
    for d in &errors {
        remove(&mut value, &d.pointer);
    }
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
    load(Kind::Instance, file, bytes)
}

/// Compiles the connector file `file` whose content is `bytes`.
pub fn compile(file: &str, bytes: &[u8]) -> Compiled {
    let loaded = match load::<Connector>(Kind::Connector, file, bytes) {
        Ok(l) => l,
        Err(mut diagnostics) => {
            diagnostic::sort(&mut diagnostics);
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
    let diagnostics = with_file(diagnostics, file);
    let ir = if diagnostics.iter().any(Diagnostic::is_error) {
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

/// Removes the node at `pointer` from `value`.
fn remove(value: &mut serde_json::Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = last.replace("~1", "/").replace("~0", "~");
    if let Some(serde_json::Value::Object(map)) = value.pointer_mut(parent) {
        map.shift_remove(&key);
    }
}

fn with_file(mut diagnostics: Vec<Diagnostic>, file: &str) -> Vec<Diagnostic> {
    for d in &mut diagnostics {
        d.file = file.to_owned();
    }
    diagnostics
}

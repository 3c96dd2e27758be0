//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// The bundled connector files, sorted.
pub fn bundled_connectors() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("connectors"))
        .expect("connectors/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The path of `path` relative to the workspace root, with `/` separators.
pub fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Compiles a file the way `connector check` does and renders its diagnostics in human form.
pub fn render(path: &Path) -> (compiler::Compiled, String) {
    let bytes = std::fs::read(path).expect("fixture readable");
    let compiled = compiler::compile(&relative(path), &bytes);
    let source = String::from_utf8_lossy(&bytes).into_owned();
    let text: String = compiled
        .diagnostics
        .iter()
        .map(|d| d.render(Some(&source)) + "\n")
        .collect();
    (compiled, text)
}

/// Codes of diagnostics about a whole file, which have no line or column (both 0).
pub const WHOLE_FILE_CODES: [&str; 2] = ["binary-file", "empty-file"];

/// Runs what `connector check` runs on a file's `bytes` (the instance sniffing through
/// `decode` and `yaml::parse`, `compile`, `load_instance`) and renders every diagnostic the
/// way it prints them; returns a description of the first problem: a diagnostic outside the
/// file, one that prints a control character (see [`unprintable`]), or more of them than the
/// cap. A panic is a problem too, left to the caller (the test
/// harness or the fuzzer) to catch.
///
/// Inside the file means: line and column from 1, on a line the file has (lines end at LF,
/// CRLF or a lone CR, as in YAML; the position just after a final line break counts, as the
/// end of the file), at a column at most one past the end of that line. Diagnostics about a
/// whole file ([`WHOLE_FILE_CODES`]) have line and column 0 instead.
pub fn check_hostile(bytes: &[u8]) -> Result<(), String> {
    if let Ok(text) = compiler::decode(bytes) {
        let _ = compiler::yaml::parse(&text);
    }
    let source = String::from_utf8_lossy(bytes);
    let compiled = compiler::compile("hostile.yaml", bytes);
    let instance = compiler::load_instance("hostile.yaml", bytes)
        .map(|loaded| loaded.unknown_keys)
        .unwrap_or_else(|diagnostics| diagnostics);
    for (what, diagnostics) in [
        ("compile", &compiled.diagnostics),
        ("load_instance", &instance),
    ] {
        if diagnostics.len() > compiler::diagnostic::MAX_DIAGNOSTICS + 1 {
            return Err(format!("{what}: {} diagnostics", diagnostics.len()));
        }
        for d in diagnostics {
            misplaced(&source, d).map_err(|e| format!("{what}: {e}: {}", d.render_short()))?;
            for shown in [d.render(Some(&source)), d.render_short()] {
                if let Some(c) = shown.chars().find(|c| unprintable(*c)) {
                    return Err(format!("{what}: {c:?} printed: {shown}"));
                }
            }
        }
    }
    if compiled.has_errors() != compiled.ir.is_none() {
        return Err("an IR was produced despite errors, or none without".into());
    }
    Ok(())
}

/// A character a diagnostic must not print: a control character other than line feed and
/// tab, or one that reorders text (bidirectional overrides and isolates).
pub fn unprintable(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether diagnostic `d` points inside `source` (see [`check_hostile`]).
pub fn misplaced(source: &str, d: &compiler::Diagnostic) -> Result<(), String> {
    if WHOLE_FILE_CODES.contains(&d.code) {
        return match (d.line, d.column) {
            (0, 0) => Ok(()),
            _ => Err("a whole-file diagnostic with a position".into()),
        };
    }
    if d.line == 0 || d.column == 0 {
        return Err("line or column 0".into());
    }
    let lines = yaml_lines(source);
    let Some(line) = lines.get(d.line - 1) else {
        return Err(format!("the file has {} lines", lines.len()));
    };
    let width = line.chars().count();
    if d.column > width + 1 {
        return Err(format!("line {} has {width} characters", d.line));
    }
    Ok(())
}

/// The lines of `source` as YAML counts them: a byte-order mark is not part of the first line;
/// lines end at LF, CRLF or a lone CR; after a final line break there is one more, empty line.
pub fn yaml_lines(source: &str) -> Vec<&str> {
    let source = source.strip_prefix('\u{FEFF}').unwrap_or(source);
    let mut lines = Vec::new();
    let mut rest = source;
    while let Some(i) = rest.find(['\n', '\r']) {
        lines.push(&rest[..i]);
        let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + skip..];
    }
    lines.push(rest);
    lines
}

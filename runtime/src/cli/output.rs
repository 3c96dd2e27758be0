//! Printing diagnostics and writing output files.

use std::io::Write;
use std::path::Path;

use compiler::Diagnostic;

use super::Format;

/// Diagnostics that are about a whole file and read best on one line.
fn one_line(d: &Diagnostic) -> bool {
    matches!(
        d.code,
        "io" | "binary-file"
            | "empty-file"
            | "yaml-syntax"
            | "multiple-documents"
            | "no-connectors"
    )
}

/// Prints the diagnostics of one file in human form on stderr.
pub fn print_human(diagnostics: &[Diagnostic], source: Option<&str>) {
    let mut err = std::io::stderr().lock();
    for d in diagnostics {
        let text = if one_line(d) {
            format!("{}\n", d.render_short())
        } else {
            d.render(source)
        };
        let _ = writeln!(err, "{text}");
    }
}

/// Prints `{"diagnostics": [...]}` on stdout.
pub fn print_json(diagnostics: &[Diagnostic]) {
    let doc = serde_json::json!({ "diagnostics": diagnostics });
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("diagnostics serialize")
    );
}

/// The summary line of a run.
pub fn summary(format: Format, files: usize, diagnostics: &[Diagnostic]) {
    if format != Format::Human {
        return;
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    eprintln!(
        "checked {}: {}, {}",
        plural(files, "file"),
        plural(errors, "error"),
        plural(warnings, "warning")
    );
}

/// An I/O problem as a diagnostic about `path`.
pub fn io_error(path: &Path, message: impl std::fmt::Display) -> Diagnostic {
    let mut d = Diagnostic::error("io", message.to_string());
    d.file = path.display().to_string();
    d
}

/// Writes `contents` to `path` atomically: a temporary file beside it, then a rename, so a
/// failure never leaves a half-written file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes to `out` if given, else to stdout.
pub fn emit(out: Option<&Path>, contents: &str) -> u8 {
    match out {
        Some(path) => match write_atomic(path, contents.as_bytes()) {
            Ok(()) => super::exit::OK,
            Err(e) => {
                eprintln!("error[io]: {}: cannot write: {e}", path.display());
                super::exit::IO
            }
        },
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(contents.as_bytes())
                .and_then(|_| stdout.flush())
            {
                Ok(()) => super::exit::OK,
                Err(_) => super::exit::IO,
            }
        }
    }
}

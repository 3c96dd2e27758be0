//! `connector check [PATHS...]`: every problem of every file, located.

use std::path::{Path, PathBuf};

use compiler::Diagnostic;

use super::output::{self, io_error};
use super::{exit, Format};

/// Arguments of `connector check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Connector files, or folders searched for `*.yaml` and `*.yml` files. Defaults to
    /// `connectors`.
    paths: Vec<PathBuf>,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Folders never searched.
const SKIPPED: [&str; 3] = ["node_modules", "target", ".git"];

/// The YAML files under `dir`, sorted.
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() {
            if !name.starts_with('.') && !SKIPPED.contains(&name.as_str()) {
                yaml_files(&path, out)?;
            }
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Runs the command.
pub fn run(args: Args) -> u8 {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("connectors")]
    } else {
        args.paths
    };
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut io_failed = false;
    let mut files = 0;
    for path in &paths {
        let targets = if path.is_dir() {
            let mut found = Vec::new();
            match yaml_files(path, &mut found) {
                Ok(()) if found.is_empty() => {
                    let mut d = io_error(
                        path,
                        "no connector files (`*.yaml`, `*.yml`) in this folder",
                    );
                    d.code = "no-connectors";
                    report(args.format, &[d], None, &mut all);
                    io_failed = true;
                    continue;
                }
                Ok(()) => found,
                Err(e) => {
                    report(
                        args.format,
                        &[io_error(path, format!("cannot read the folder: {e}"))],
                        None,
                        &mut all,
                    );
                    io_failed = true;
                    continue;
                }
            }
        } else {
            vec![path.clone()]
        };
        for file in targets {
            let bytes = match runtime::read_capped(&file) {
                Ok(b) => b,
                Err(e) => {
                    report(
                        args.format,
                        &[io_error(&file, cannot_read(&e))],
                        None,
                        &mut all,
                    );
                    io_failed = true;
                    continue;
                }
            };
            files += 1;
            let name = file.display().to_string();
            let diagnostics = check_file(&name, &bytes);
            let text = String::from_utf8_lossy(&bytes);
            report(args.format, &diagnostics, Some(&text), &mut all);
        }
    }
    if args.format == Format::Json {
        output::print_json(&all);
    }
    output::summary(args.format, files, &all);
    if io_failed {
        exit::IO
    } else if all.iter().any(Diagnostic::is_error) {
        exit::ERRORS
    } else {
        exit::OK
    }
}

/// Checks one file: a connector, or an instance file (recognised by its `auth` being a name).
pub fn check_file(name: &str, bytes: &[u8]) -> Vec<Diagnostic> {
    let looks_like_instance = compiler::decode(bytes)
        .ok()
        .and_then(|t| compiler::yaml::parse(&t).ok())
        .is_some_and(|doc| doc.value.get("auth").is_some_and(|a| a.is_string()));
    if looks_like_instance {
        return match compiler::load_instance(name, bytes) {
            Ok(loaded) => loaded.unknown_keys,
            Err(ds) => ds,
        };
    }
    compiler::compile(name, bytes).diagnostics
}

fn cannot_read(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => format!("cannot read: {e}"),
    }
}

fn report(
    format: Format,
    diagnostics: &[Diagnostic],
    source: Option<&str>,
    all: &mut Vec<Diagnostic>,
) {
    if format == Format::Human {
        output::print_human(diagnostics, source);
    }
    all.extend_from_slice(diagnostics);
}

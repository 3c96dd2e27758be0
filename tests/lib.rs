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

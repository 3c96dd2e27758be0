//! The editor test: the real `yaml-language-server`, headless over stdio, on a good connector
//! (no diagnostics) and on bad ones (the expected diagnostics on the expected lines). The server
//! is pinned in `tests/editor/package-lock.json` and installed with `npm ci` on first use.

use std::process::Command;

use connector_tests::root;

#[test]
fn yaml_language_server_reports_schema_errors_on_their_lines() {
    let dir = root().join("tests/editor");
    if !dir.join("node_modules/yaml-language-server").exists() {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm is needed to install the editor test's pinned yaml-language-server");
        assert!(status.success(), "npm ci failed in tests/editor");
    }
    let out = Command::new("node")
        .arg("run.mjs")
        .current_dir(&dir)
        .output()
        .expect("node is needed for the editor test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the editor test failed:\n{stdout}\n{stderr}"
    );
}

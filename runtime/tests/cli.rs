//! The `connector` binary: exit statuses, one-line errors for unusable files, JSON output,
//! atomic writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn connector(args: &[&str], dir: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_connector"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked"),
        "the binary panicked: {stderr}"
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("connector-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

const GOOD: &str = "connector: demo\nname: Demo\nauth:\n  cc:\n    type: oauth2_client_credentials\n    request: { url: \"https://login.example.com/oauth/token\" }\n";

#[test]
fn bundled_connectors_check_clean() {
    let out = connector(&["check", "connectors"], &root());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("checked 7 files: 0 errors, 0 warnings"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unusable_inputs_are_one_line_errors_with_the_path() {
    let dir = scratch("unusable");
    std::fs::write(dir.join("binary.yaml"), b"\x00\x01\x02ELF").unwrap();
    std::fs::write(dir.join("empty.yaml"), b"").unwrap();
    std::fs::write(dir.join("syntax.yaml"), b"connector: demo\nname: [oops\n").unwrap();
    std::fs::create_dir_all(dir.join("nothing")).unwrap();
    let cases: [(&str, i32, &str); 5] = [
        ("missing.yaml", 2, "error[io]: missing.yaml: no such file"),
        (
            "nothing",
            2,
            "error[no-connectors]: nothing: no connector files",
        ),
        (
            "binary.yaml",
            1,
            "error[binary-file]: binary.yaml: this is a binary file",
        ),
        (
            "empty.yaml",
            1,
            "error[empty-file]: empty.yaml: the file has no content",
        ),
        (
            "syntax.yaml",
            1,
            "error[yaml-syntax]: syntax.yaml:3:1: YAML syntax error",
        ),
    ];
    for (path, status, first_line) in cases {
        let out = connector(&["check", path], &dir);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(status), "{path}: {err}");
        let line = err.lines().next().unwrap_or_default();
        assert!(line.starts_with(first_line), "{path}: {line}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error")).count(),
            1,
            "{path}: {err}"
        );
    }
}

#[test]
fn json_format_has_the_documented_shape() {
    let dir = scratch("json");
    std::fs::write(dir.join("bad.yaml"), GOOD.replace("request:", "requets:")).unwrap();
    let out = connector(&["check", "bad.yaml", "--format", "json"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = doc["diagnostics"].as_array().unwrap();
    // The unknown key is set aside, so the method is also missing its token URL.
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0]["code"], "missing-token-url");
    let first = &all[1];
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["severity", "code", "message", "file", "line", "column", "pointer", "help"]
    );
    assert_eq!(first["severity"], "error");
    assert_eq!(first["code"], "unknown-key");
    assert_eq!(first["file"], "bad.yaml");
    assert_eq!(first["line"], 6);
    assert_eq!(first["column"], 5);
    assert_eq!(first["pointer"], "/auth/cc/requets");
    assert_eq!(first["help"], "did you mean `request`?");
}

#[test]
fn warnings_alone_exit_zero() {
    let dir = scratch("warnings");
    std::fs::write(
        dir.join("w.yaml"),
        format!("{GOOD}variables:\n  unused: {{ default: x }}\n"),
    )
    .unwrap();
    let out = connector(&["check", "w.yaml"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning[unused-variable]"));
}

#[test]
fn compile_writes_atomically_and_never_over_a_good_file_on_error() {
    let dir = scratch("compile");
    std::fs::write(dir.join("good.yaml"), GOOD).unwrap();
    std::fs::write(
        dir.join("bad.yaml"),
        GOOD.replace("oauth2_client_credentials", "oauth2_nope"),
    )
    .unwrap();
    let out = connector(&["compile", "good.yaml", "-o", "out.json"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let written = std::fs::read_to_string(dir.join("out.json")).unwrap();
    let ir: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(ir["ir_version"], 1);
    assert_eq!(ir["auth"]["cc"]["flow"]["client_auth"], "basic");

    let out = connector(&["compile", "bad.yaml", "-o", "out.json"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(dir.join("out.json")).unwrap(),
        written,
        "a failed compile changed the output"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let out = connector(
        &["compile", "good.yaml", "-o", "no/such/dir/out.json"],
        &dir,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("error[io]: no/such/dir/out.json: cannot write"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn expand_prints_the_explicit_connector() {
    let dir = scratch("expand");
    std::fs::write(dir.join("good.yaml"), GOOD).unwrap();
    let out = connector(&["compile", "good.yaml", "--expand"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("# yaml-language-server: $schema="),
        "{text}"
    );
    for expected in [
        "client_auth: basic",
        "client_secret:",
        "grant_type: \"{{ vars.grant_type }}\"",
        "Authorization: \"Bearer {{ auth.access_token }}\"",
    ] {
        assert!(text.contains(expected), "missing {expected}:\n{text}");
    }
    std::fs::write(dir.join("expanded.yaml"), &text).unwrap();
    let again = connector(&["check", "expanded.yaml"], &dir);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
}

#[test]
fn schema_command_prints_the_committed_schemas() {
    for (which, file) in [
        ("connector", "schemas/connector.schema.json"),
        ("instance", "schemas/instance.schema.json"),
    ] {
        let out = connector(&["schema", which], &root());
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            std::fs::read_to_string(root().join(file)).unwrap()
        );
    }
}

#[test]
fn usage_errors_exit_two() {
    let out = connector(&["frobnicate"], &root());
    assert_eq!(out.status.code(), Some(2));
    let out = connector(&["check", "--format", "xml"], &root());
    assert_eq!(out.status.code(), Some(2));
}

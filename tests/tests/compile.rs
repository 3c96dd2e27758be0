//! Snapshot tests of the compiler over folders of inputs: good connectors snapshot their IR,
//! `err_*` and `warn_*` connectors their diagnostics as `connector check` prints them.

use std::collections::BTreeSet;

use compiler::diagnostic::{Severity, CODES};
use connector_tests::{bundled_connectors, relative, render, root};

#[test]
fn fixtures() {
    insta::glob!("../fixtures", "compile/*.yaml", |path| {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (compiled, text) = render(path);
        if name.starts_with("err_") {
            assert!(
                compiled.has_errors(),
                "{name} should have errors, got:\n{text}"
            );
            insta::assert_snapshot!(text);
        } else if name.starts_with("warn_") {
            assert!(
                !compiled.has_errors(),
                "{name} should have no errors, got:\n{text}"
            );
            assert!(
                !compiled.diagnostics.is_empty(),
                "{name} should have warnings"
            );
            insta::assert_snapshot!(text);
        } else {
            assert!(
                compiled.diagnostics.is_empty(),
                "{name} should be clean, got:\n{text}"
            );
            insta::assert_json_snapshot!(compiled.ir.expect("a clean connector lowers"));
        }
    });
}

#[test]
fn bundled_connectors_are_clean_and_lower() {
    insta::glob!("../../connectors", "*.yaml", |path| {
        let (compiled, text) = render(path);
        assert!(
            compiled.diagnostics.is_empty(),
            "{} is not clean:\n{text}",
            relative(path)
        );
        insta::assert_json_snapshot!(compiled.ir.expect("a clean connector lowers"));
    });
}

#[test]
fn bundled_connectors_start_with_the_schema_modeline() {
    for path in bundled_connectors() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.lines().next(),
            Some("# yaml-language-server: $schema=../schemas/connector.schema.json"),
            "{}",
            relative(&path)
        );
    }
}

/// `compile --expand` writes every default out; compiling that output gives the same IR.
#[test]
fn expanded_form_compiles_to_the_same_ir() {
    let mut files = bundled_connectors();
    files.extend(
        std::fs::read_dir(root().join("tests/fixtures/compile"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("good_")
            }),
    );
    for path in files {
        let compiled = compiler::compile("in.yaml", &std::fs::read(&path).unwrap());
        let expanded = serde_json::to_value(compiled.expanded.as_ref().unwrap()).unwrap();
        let yaml = compiler::emit::to_yaml(&expanded, &[]);
        let again = compiler::compile("expanded.yaml", yaml.as_bytes());
        let errors: Vec<String> = again.diagnostics.iter().map(|d| d.render_short()).collect();
        assert!(
            !again.has_errors(),
            "{}: expanded form has errors: {errors:#?}\n{yaml}",
            relative(&path)
        );
        assert_eq!(again.ir, compiled.ir, "{}", relative(&path));
    }
}

/// Every diagnostic code is produced by at least one fixture, and fixtures produce no code that
/// is not documented.
#[test]
fn every_code_is_covered_and_documented() {
    let documented: BTreeSet<&str> = CODES.iter().map(|(c, _, _)| *c).collect();
    let mut seen = BTreeSet::new();
    let mut bad_inputs = 0;
    for entry in std::fs::read_dir(root().join("tests/fixtures/compile")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("err_")
        {
            bad_inputs += 1;
        }
        let (compiled, _) = render(&path);
        for d in &compiled.diagnostics {
            assert!(documented.contains(d.code), "undocumented code {}", d.code);
            let severity = CODES.iter().find(|(c, _, _)| *c == d.code).unwrap().1;
            assert_eq!(
                severity, d.severity,
                "code {} has the wrong severity",
                d.code
            );
            seen.insert(d.code.to_owned());
        }
    }
    // `io` and `no-connectors` come from the command line; tests in runtime/tests/cli.rs.
    // `file-too-large` and `too-many-diagnostics` need inputs too large to keep as fixtures;
    // tests/tests/robustness.rs generates them.
    let elsewhere = [
        "io",
        "no-connectors",
        "file-too-large",
        "too-many-diagnostics",
    ];
    let missing: Vec<&&str> = documented
        .iter()
        .filter(|c| !seen.contains(**c) && !elsewhere.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes without a fixture: {missing:?}");
    assert!(bad_inputs >= 40, "only {bad_inputs} bad inputs");
    assert!(CODES.iter().any(|(_, s, _)| *s == Severity::Warning));
}

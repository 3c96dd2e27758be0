//! Every complete connector shown in `docs/authoring.md` compiles with no diagnostic.

use connector_tests::root;

/// The fenced `yaml` blocks of a Markdown text, with the line each starts on.
fn yaml_blocks(markdown: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match &mut current {
            None if line.trim_start() == "```yaml" => current = Some((i + 2, String::new())),
            Some(_) if line.trim_start() == "```" => blocks.push(current.take().unwrap()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

#[test]
fn authoring_guide_examples_compile_cleanly() {
    let guide = std::fs::read_to_string(root().join("docs/authoring.md")).unwrap();
    let mut checked = 0;
    for (line, block) in yaml_blocks(&guide) {
        let first = block.lines().next().unwrap_or_default();
        let complete = first.contains("connector.schema.json") || first.starts_with("connector:");
        if !complete {
            continue;
        }
        checked += 1;
        let compiled = compiler::compile(&format!("docs/authoring.md:{line}"), block.as_bytes());
        let shown: Vec<String> = compiled
            .diagnostics
            .iter()
            .map(|d| d.render(Some(&block)))
            .collect();
        assert!(
            compiled.diagnostics.is_empty(),
            "the example at docs/authoring.md:{line}:\n{}",
            shown.join("\n")
        );
    }
    assert!(checked >= 10, "only {checked} complete examples found");
}

//! Every single mistake in a bundled connector is reported on the line where it was made:
//! each format key renamed, each value given the wrong type, each reference misspelt.

use compiler::yaml::{self, Style};
use connector_tests::{bundled_connectors, relative};

/// Maps whose keys are names chosen by the author, not keys of the format.
const FREE_MAPS: [&str; 11] = [
    "variables",
    "auth",
    "endpoints",
    "inputs",
    "headers",
    "query",
    "form",
    "fields",
    "claims",
    "params",
    "json",
];

fn is_free(pointer: &str) -> bool {
    let segments: Vec<&str> = pointer.split('/').collect();
    let parent = segments
        .get(segments.len().wrapping_sub(2))
        .copied()
        .unwrap_or("");
    FREE_MAPS.contains(&parent) || segments.contains(&"json")
}

/// Byte offset of (line, column in characters), both 1-based.
fn offset(source: &str, line: usize, column: usize) -> Option<usize> {
    let start: usize = source
        .split_inclusive('\n')
        .take(line - 1)
        .map(str::len)
        .sum();
    let text = source[start..].lines().next()?;
    let within = text
        .char_indices()
        .nth(column - 1)
        .map(|(i, _)| i)
        .or((column - 1 == text.chars().count()).then_some(text.len()))?;
    Some(start + within)
}

struct Outcome {
    tried: usize,
    failures: Vec<String>,
}

fn expect_error_on_line(o: &mut Outcome, what: String, mutated: &str, line: usize) {
    o.tried += 1;
    let compiled = compiler::compile("mutated.yaml", mutated.as_bytes());
    let hit = compiled
        .diagnostics
        .iter()
        .any(|d| d.is_error() && d.line == line);
    if !hit {
        let got: Vec<String> = compiled
            .diagnostics
            .iter()
            .map(|d| d.render_short())
            .collect();
        o.failures
            .push(format!("{what}: no error on line {line}; got {got:#?}"));
    }
}

#[test]
fn every_mistake_is_reported_on_its_line() {
    let mut o = Outcome {
        tried: 0,
        failures: Vec::new(),
    };
    for path in bundled_connectors() {
        let name = relative(&path);
        let source = std::fs::read_to_string(&path).unwrap();
        let doc = yaml::parse(&source).unwrap();
        let mut nodes: Vec<(&str, &yaml::Loc)> = doc.locations.iter().collect();
        nodes.sort_by_key(|(p, _)| p.to_string());
        for (pointer, loc) in nodes {
            let value = doc.value.pointer(pointer).unwrap();
            // A renamed format key.
            if let Some(key) = loc.key {
                if !is_free(pointer) {
                    let at = offset(&source, key.line, key.column + key.len).unwrap();
                    let mut mutated = source.clone();
                    mutated.insert_str(at, "zz");
                    expect_error_on_line(
                        &mut o,
                        format!("{name}: key {pointer} renamed"),
                        &mutated,
                        key.line,
                    );
                }
            }
            // A value of the wrong type.
            let single_line = matches!(loc.style, Style::Plain | Style::Quoted);
            if single_line
                && !value.is_object()
                && !value.is_array()
                && !pointer.split('/').any(|s| s == "json")
            {
                let start = offset(&source, loc.value.line, loc.value.column).unwrap();
                let end =
                    offset(&source, loc.value.line, loc.value.column + loc.value.len).unwrap();
                let mut mutated = source.clone();
                mutated.replace_range(start..end, "[1, 2]");
                expect_error_on_line(
                    &mut o,
                    format!("{name}: {pointer} given a list"),
                    &mutated,
                    loc.value.line,
                );
            }
            // A misspelt reference.
            if let Some(text) = value.as_str() {
                let Ok(pieces) = compiler::template::parse(text) else {
                    continue;
                };
                for (target, ref_offset, len) in compiler::template::refs(&pieces) {
                    let pos = doc.locations.inside(pointer, &source, ref_offset, len);
                    let Some(at) = offset(&source, pos.line, pos.column) else {
                        continue;
                    };
                    let written: String = source[at..].chars().take(len).collect();
                    if !written.starts_with("{{") || !written.contains(&target.name) {
                        o.failures.push(format!(
                            "{name}: {pointer}: reference {target} not found at {}:{}",
                            pos.line, pos.column
                        ));
                        continue;
                    }
                    let name_at = at + written.find(&target.name).unwrap() + target.name.len();
                    let mut mutated = source.clone();
                    mutated.insert_str(name_at, "zz");
                    expect_error_on_line(
                        &mut o,
                        format!("{name}: {pointer}: {target} misspelt"),
                        &mutated,
                        pos.line,
                    );
                }
            }
        }
    }
    assert!(
        o.failures.is_empty(),
        "{} of {} mutations missed:\n{}",
        o.failures.len(),
        o.tried,
        o.failures.join("\n")
    );
    assert!(o.tried > 300, "only {} mutations", o.tried);
    eprintln!("{} mutations, each reported on its line", o.tried);
}

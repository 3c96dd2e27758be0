//! Hostile input: the compiler never panics, stays bounded, and every diagnostic points inside
//! the file.
//!
//! Property tests (proptest) feed it random bytes, YAML-looking token soup and mutations of the
//! bundled connectors, and generate nesting and alias bombs around the limits; the other tests
//! take each limit in turn (file size, nesting, nodes, aliases, key length, diagnostics) and
//! the text encodings that must change nothing (byte-order mark, CRLF, lone CR). Every input
//! goes through [`connector_tests::check_hostile`], which the fuzz target in `fuzz/` runs too.
//!
//! The cases are generated from a fixed seed, 256 per property: set `PROPTEST_CASES` and
//! `PROPTEST_RNG_SEED` to run more, or others. No test measures time: boundedness is shown by
//! the limit each input hits (its code), the limits being counted before the work they bound.

use compiler::diagnostic::MAX_DIAGNOSTICS;
use compiler::yaml::{MAX_ALIAS_NODES, MAX_DEPTH, MAX_KEY_PATH, MAX_NODES};
use compiler::MAX_FILE_BYTES;
use connector_tests::{bundled_connectors, check_hostile, relative, root};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x636f_6e6e_6563_746f);
    }
    config.failure_persistence = None;
    config
}

/// Pieces of text that matter to YAML, to the format and to templates.
const TOKENS: &[&str] = &[
    "a",
    "k",
    "x",
    "1",
    "0x1f",
    "-1.5e3",
    ".nan",
    "true",
    "~",
    " ",
    "  ",
    "    ",
    "\n",
    "\n  ",
    "\r\n",
    "\r",
    "\t",
    "-",
    "- ",
    ": ",
    ":",
    "? ",
    ",",
    "[",
    "]",
    "{",
    "}",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "!!str ",
    "!tag ",
    "|",
    "|-",
    ">",
    "'",
    "\"",
    "\\",
    "#",
    "%YAML 1.2\n",
    "---\n",
    "...\n",
    "@",
    "`",
    "\u{FEFF}",
    "\u{0}",
    "\u{7}",
    "\u{1b}[31m",
    "é",
    "ß",
    "\u{202e}",
    "💥",
    "{{",
    "}}",
    "{{ vars.a }}",
    "{{ auth.access_token }}",
    "{{ input.x | url }}",
    "\\{{",
    "connector: demo\n",
    "name: Demo\n",
    "auth:\n",
    "endpoints:\n",
    "variables:\n",
    "type: ",
    "oauth2_client_credentials",
    "bearer",
    "url: ",
    "https://api.example.com/",
    "http://10.0.0.1/",
    "request:",
    "headers:",
    "body:",
    "json:",
    "form:",
    "raw:",
    "pagination:",
    "records:",
    "/data",
    "default: ",
    "secret: true",
    "required: true",
];

fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(select(TOKENS), 0..160).prop_map(|t| t.concat().into_bytes())
}

fn random_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..300)
}

fn ensure(bytes: &[u8]) -> Result<(), TestCaseError> {
    check_hostile(bytes).map_err(|e| {
        TestCaseError::fail(format!("{e}\ninput: {:?}", String::from_utf8_lossy(bytes)))
    })
}

/// One edit of a connector's text.
#[derive(Debug, Clone)]
enum Edit {
    DeleteLine(Index),
    DuplicateLine(Index),
    SwapLines(Index, Index),
    Insert(Index, String),
    ReplaceValue(Index, String),
    Indent(Index, usize),
    Dedent(Index),
    Crlf,
    LoneCr,
    Bom,
}

fn edit() -> impl Strategy<Value = Edit> {
    let text = prop::collection::vec(select(TOKENS), 1..6).prop_map(|t| t.concat());
    prop_oneof![
        any::<Index>().prop_map(Edit::DeleteLine),
        any::<Index>().prop_map(Edit::DuplicateLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        (any::<Index>(), text.clone()).prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<Index>(), any::<char>()).prop_map(|(i, c)| Edit::Insert(i, c.to_string())),
        (
            any::<Index>(),
            select(&["\t", "\u{0}", "\u{FEFF}", "\r\n", "\r", "\n"][..])
        )
            .prop_map(|(i, t)| Edit::Insert(i, t.to_string())),
        (any::<Index>(), text).prop_map(|(i, t)| Edit::ReplaceValue(i, t)),
        (any::<Index>(), 1..5usize).prop_map(|(i, n)| Edit::Indent(i, n)),
        any::<Index>().prop_map(Edit::Dedent),
        Just(Edit::Crlf),
        Just(Edit::LoneCr),
        Just(Edit::Bom),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let n = lines.len();
    match edit {
        Edit::DeleteLine(i) => {
            lines.remove(i.index(n));
        }
        Edit::DuplicateLine(i) => {
            let i = i.index(n);
            lines.insert(i, lines[i].clone());
        }
        Edit::SwapLines(a, b) => lines.swap(a.index(n), b.index(n)),
        Edit::Insert(i, piece) => {
            let bounds: Vec<usize> = text
                .char_indices()
                .map(|(b, _)| b)
                .chain([text.len()])
                .collect();
            let at = bounds[i.index(bounds.len())];
            return format!("{}{piece}{}", &text[..at], &text[at..]);
        }
        Edit::ReplaceValue(i, value) => {
            let line = &mut lines[i.index(n)];
            match line.find(": ") {
                Some(colon) => line.replace_range(colon + 2.., value),
                None => line.push_str(value),
            }
        }
        Edit::Indent(i, by) => lines[i.index(n)].insert_str(0, &" ".repeat(*by)),
        Edit::Dedent(i) => {
            let line = &mut lines[i.index(n)];
            let spaces = line.len() - line.trim_start_matches(' ').len();
            line.drain(..spaces.min(2));
        }
        Edit::Crlf => return text.replace('\n', "\r\n"),
        Edit::LoneCr => return text.replace('\n', "\r"),
        Edit::Bom => return format!("\u{FEFF}{text}"),
    }
    lines.join("\n") + "\n"
}

fn connectors() -> Vec<String> {
    bundled_connectors()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Nodes the aliases of [`laughs`] copy: level `k` is a list of `width` aliases of level
/// `k - 1`, level 1 a list of `width` scalars.
fn laughs_copies(levels: usize, width: usize) -> usize {
    let mut size = 1 + width; // level 1: the list and its items
    let mut copies = 0;
    for _ in 2..=levels {
        copies += width * size;
        size = 1 + width * size;
    }
    copies
}

fn laughs(levels: usize, width: usize) -> String {
    let mut text = format!("l1: &l1 [{}]\n", vec!["lol"; width].join(", "));
    for k in 2..=levels {
        let alias = format!("*l{}", k - 1);
        text.push_str(&format!(
            "l{k}: &l{k} [{}]\n",
            vec![alias; width].join(", ")
        ));
    }
    text
}

fn codes(bytes: &[u8]) -> Vec<&'static str> {
    compiler::compile("generated.yaml", bytes)
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// (a) Any bytes: no panic, every diagnostic inside the file.
    #[test]
    fn random_bytes_are_located(bytes in random_bytes()) {
        ensure(&bytes)?;
    }

    /// (a) Text made of what YAML, the format and templates react to.
    #[test]
    fn token_soup_is_located(bytes in token_soup()) {
        ensure(&bytes)?;
    }

    /// (b) A bundled connector with a few lines deleted, duplicated, swapped, indented,
    /// values replaced, characters inserted (tabs, NUL, BOM, line breaks), line endings changed.
    #[test]
    fn mutated_connectors_are_located(
        which in any::<Index>(),
        edits in prop::collection::vec(edit(), 1..5),
    ) {
        let sources = connectors();
        let mut text = sources[which.index(sources.len())].clone();
        for e in &edits {
            text = apply(&text, e);
        }
        ensure(text.as_bytes())?;
    }

    /// (c) Nesting, as flow lists or block mappings: refused exactly past the limit.
    #[test]
    fn nesting_is_refused_past_the_limit(depth in 1..(MAX_DEPTH * 2), flow in any::<bool>()) {
        let text = if flow {
            format!("x: {}1{}\n", "[".repeat(depth), "]".repeat(depth))
        } else {
            (0..depth).map(|d| format!("{}k:\n", "  ".repeat(d))).collect()
        };
        ensure(text.as_bytes())?;
        // `x:` (flow) or the first `k:` (block) opens the top mapping: one level more.
        let levels = depth + 1 - usize::from(!flow);
        prop_assert_eq!(codes(text.as_bytes()).contains(&"yaml-too-deep"), levels > MAX_DEPTH);
    }

    /// (c) Anchors of anchors ("billion laughs" of every size): refused exactly when the
    /// aliases would copy more than the limit, whatever the full expansion would be.
    #[test]
    fn alias_bombs_are_refused_past_the_limit(levels in 1..12usize, width in 1..12usize) {
        let text = laughs(levels, width);
        ensure(text.as_bytes())?;
        let refused = codes(text.as_bytes()).contains(&"yaml-aliases");
        prop_assert_eq!(refused, laughs_copies(levels, width) > MAX_ALIAS_NODES);
    }

    /// (c) Many aliases of one small anchor.
    #[test]
    fn many_aliases_are_refused_past_the_limit(count in 0..MAX_ALIAS_NODES) {
        // Each alias copies a list of one item: two nodes.
        let text = format!("a: &a [1]\nb: [{}]\n", vec!["*a"; count].join(","));
        let refused = codes(text.as_bytes()).contains(&"yaml-aliases");
        prop_assert_eq!(refused, count * 2 > MAX_ALIAS_NODES);
    }
}

#[test]
fn the_billion_laughs_fixture_is_refused_by_the_alias_limit() {
    let path = root().join("tests/fixtures/compile/err_yaml_billion_laughs.yaml");
    let bytes = std::fs::read(path).unwrap();
    let compiled = compiler::compile("laughs.yaml", &bytes);
    let codes: Vec<&str> = compiled.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["yaml-aliases"]);
    // Nine levels of nine: the full expansion is 9^9 copies of "lol"; refused at the first
    // alias past 10,000 copied nodes, on the fifth level.
    assert!(laughs_copies(9, 9) > 387_000_000);
    assert_eq!(compiled.diagnostics[0].line, 19);
}

#[test]
fn a_5_mb_single_line_string_is_over_the_file_size_limit() {
    let text = format!(
        "connector: demo\nname: Demo\ndescription: \"{}\"\n",
        "x".repeat(5 << 20)
    );
    check_hostile(text.as_bytes()).unwrap();
    let compiled = compiler::compile("huge.yaml", text.as_bytes());
    let d = &compiled.diagnostics[..];
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].code, "file-too-large");
    // The caret is where the 1,048,577th byte is, on line 3.
    let line_3 = "connector: demo\nname: Demo\n".len();
    assert_eq!((d[0].line, d[0].column), (3, MAX_FILE_BYTES - line_3 + 1));
    let shown = d[0].render(Some(&text));
    assert!(shown.len() < 1_000, "{} bytes printed", shown.len());
    insta::assert_snapshot!("file_too_large", shown);
}

#[test]
fn the_file_size_limit_is_inclusive() {
    let filler = |total: usize| {
        let head = "connector: demo\nname: Demo\n# ";
        format!("{head}{}\n", "x".repeat(total - head.len() - 1))
    };
    assert!(!codes(filler(MAX_FILE_BYTES).as_bytes()).contains(&"file-too-large"));
    assert_eq!(
        codes(filler(MAX_FILE_BYTES + 1).as_bytes()),
        ["file-too-large"]
    );
    // Binary or not, a file over the limit is refused for its size, before being decoded.
    assert_eq!(codes(&vec![0u8; MAX_FILE_BYTES + 1]), ["file-too-large"]);
    check_hostile(&vec![0xFFu8; MAX_FILE_BYTES + 1]).unwrap();
}

#[test]
fn a_500_kb_key_is_refused_and_printed_short() {
    let key = "k".repeat(500 << 10);
    // Written plainly, YAML itself refuses a key over 1024 characters.
    let plain = format!("connector: demo\n{key}: 1\n");
    let compiled = compiler::compile("key.yaml", plain.as_bytes());
    assert_eq!(compiled.diagnostics[0].code, "yaml-syntax");
    assert!(compiled.diagnostics[0]
        .help
        .as_deref()
        .unwrap()
        .contains("1024 characters"));
    // In a flow mapping or after `?`, YAML takes it; the key-path limit does not.
    for text in [
        format!("connector: demo\nheaders: {{ {key}: 1 }}\n"),
        format!("connector: demo\nheaders:\n  ? {key}\n  : 1\n"),
    ] {
        check_hostile(text.as_bytes()).unwrap();
        let compiled = compiler::compile("key.yaml", text.as_bytes());
        assert_eq!(compiled.diagnostics.len(), 1);
        let d = &compiled.diagnostics[0];
        assert_eq!(d.code, "yaml-key-too-long");
        let shown = d.render(Some(&text));
        assert!(
            shown.len() < 1_000,
            "{} bytes printed:\n{shown}",
            shown.len()
        );
    }
    // A key path just under the limit is fine.
    let text = format!("{}: 1\n", "k".repeat(MAX_KEY_PATH - 1));
    assert!(compiler::yaml::parse(&text).is_ok());
}

#[test]
fn more_nodes_than_the_limit_are_refused() {
    let list = |n: usize| format!("x: [{}]\n", vec!["0"; n].join(","));
    // `x` (a key), its list: two nodes besides the items, one for the top mapping.
    assert!(!codes(list(MAX_NODES - 3).as_bytes()).contains(&"yaml-too-large"));
    assert!(codes(list(MAX_NODES - 2).as_bytes()).contains(&"yaml-too-large"));
}

/// A file with a problem on every line reports the first hundred and sums up the others.
#[test]
fn diagnostics_are_capped() {
    let mut text = String::from(
        "connector: demo\nname: Demo\nauth:\n  cc:\n    type: oauth2_client_credentials\n    request: { url: \"https://login.example.com/oauth/token\" }\nendpoints:\n  ping:\n    url: \"https://api.example.com/ping\"\n",
    );
    for i in 0..150 {
        text.push_str(&format!("unknown_{i}: 1\n"));
    }
    check_hostile(text.as_bytes()).unwrap();
    let compiled = compiler::compile("many.yaml", text.as_bytes());
    let d = &compiled.diagnostics;
    assert_eq!(d.len(), MAX_DIAGNOSTICS + 1);
    assert!(d[..MAX_DIAGNOSTICS].iter().all(|d| d.code == "unknown-key"));
    let last = d.last().unwrap();
    assert_eq!(last.code, "too-many-diagnostics");
    assert!(last.is_error());
    // Placed where the first left out is: the 101st unknown key, line 10 + 100.
    assert_eq!((last.line, last.column), (110, 1));
    insta::assert_snapshot!("too_many_diagnostics", last.render(Some(&text)));

    // Warnings only: the summary is a warning, and the connector still compiles.
    let mut text = String::from("connector: demo\nname: Demo\nvariables:\n");
    for i in 0..120 {
        text.push_str(&format!("  v{i}: {{}}\n"));
    }
    text.push_str("auth:\n  cc:\n    type: oauth2_client_credentials\n    request: { url: \"https://login.example.com/oauth/token\" }\nendpoints:\n  ping:\n    url: \"https://api.example.com/ping\"\n");
    let compiled = compiler::compile("warnings.yaml", text.as_bytes());
    assert_eq!(compiled.diagnostics.len(), MAX_DIAGNOSTICS + 1);
    assert!(!compiled.has_errors());
    assert!(compiled.ir.is_some());
    let last = compiled.diagnostics.last().unwrap();
    assert_eq!(
        (last.code, last.severity),
        ("too-many-diagnostics", compiler::Severity::Warning)
    );
}

/// Names and values quoted in messages cannot drive the terminal, nor reorder what is shown.
#[test]
fn control_characters_from_the_file_are_not_printed() {
    let text = "connector: demo\nname: Demo\n\"x\\e[2J\\u202e\": 1\nauth: { cc: { type: \"\\e]0;\\a\" } }\n";
    check_hostile(text.as_bytes()).unwrap();
    let compiled = compiler::compile("escape.yaml", text.as_bytes());
    let codes: Vec<&str> = compiled.diagnostics.iter().map(|d| d.code).collect();
    assert!(codes.contains(&"unknown-key"), "{codes:?}");
    assert!(codes.contains(&"unknown-type"), "{codes:?}");
}

/// Thousands of variables whose defaults form a chain, or a loop: walked without recursion, on
/// a test thread's stack.
#[test]
fn long_chains_of_defaults_do_not_overflow_the_stack() {
    let n = 4_000;
    for looped in [false, true] {
        let mut text = String::from("connector: demo\nname: Demo\nvariables:\n");
        for i in 0..n {
            let next = if looped { (i + 1) % n } else { i + 1 };
            text.push_str(&format!(
                "  v{i}: {{ default: \"{{{{ vars.v{next} }}}}\" }}\n"
            ));
        }
        if !looped {
            text.push_str(&format!("  v{n}: {{ default: x, secret: true }}\n"));
        }
        text.push_str("auth:\n  cc:\n    type: oauth2_client_credentials\n    request: { url: \"https://login.example.com/oauth/token\" }\nendpoints:\n  ping:\n    url: \"https://api.example.com/{{ vars.v0 }}\"\n");
        check_hostile(text.as_bytes()).unwrap();
        let found = codes(text.as_bytes());
        let expected = if looped {
            "variable-cycle"
        } else {
            "secret-in-url"
        };
        assert!(found.contains(&expected), "{found:?}");
    }
}

/// The fixtures and bundled connectors with what a text editor may change: a byte-order mark,
/// Windows line endings, old Mac line endings. The diagnostics are the same, at the same
/// lines and columns, and print the same.
#[test]
fn bom_crlf_and_cr_change_no_diagnostic() {
    let mut paths = bundled_connectors();
    for entry in std::fs::read_dir(root().join("tests/fixtures/compile")).unwrap() {
        paths.push(entry.unwrap().path());
    }
    paths.sort();
    let mut compared = 0;
    for path in paths {
        let bytes = std::fs::read(&path).unwrap();
        let Ok(text) = String::from_utf8(bytes.clone()) else {
            continue;
        };
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(&text);
        // Line endings made plain LF first (good_crlf.yaml is CRLF).
        let plain = text.replace("\r\n", "\n");
        let seen = |source: &str| -> Vec<String> {
            compiler::compile("f.yaml", source.as_bytes())
                .diagnostics
                .iter()
                .map(|d| format!("{}\n{}", d.render_short(), d.render(Some(source))))
                .collect()
        };
        let expected = seen(&plain);
        for (what, variant) in [
            ("BOM", format!("\u{FEFF}{plain}")),
            ("CRLF", plain.replace('\n', "\r\n")),
            ("CR", plain.replace('\n', "\r")),
        ] {
            check_hostile(variant.as_bytes()).unwrap();
            assert_eq!(seen(&variant), expected, "{} with {what}", relative(&path));
        }
        compared += 1;
    }
    assert!(compared > 90, "only {compared} files compared");
}

/// A plain or quoted scalar written over several lines (a long URL, folded) has its references
/// located on their own line, not past the end of the first.
#[test]
fn references_in_folded_scalars_are_on_their_line() {
    for quote in ["", "\""] {
        let text = format!(
            "connector: demo\nname: Demo\nbase_url: {quote}https://x/{{{{ vars.a }}}}\n  \n  {{{{ vars.b }}}}/c{quote}\nauth: {{}}\n"
        );
        check_hostile(text.as_bytes()).unwrap();
        let at: Vec<(usize, usize, usize)> = compiler::compile("f.yaml", text.as_bytes())
            .diagnostics
            .iter()
            .filter(|d| d.code == "undefined-reference")
            .map(|d| (d.line, d.column, d.len))
            .collect();
        let column = 21 + quote.len();
        assert_eq!(
            at,
            [(3, column, 12), (5, 3, 12)],
            "quoted: {}",
            !quote.is_empty()
        );
    }
}

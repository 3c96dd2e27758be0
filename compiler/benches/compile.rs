//! `cargo bench --bench compile`: how long `connector check` takes on a generated connector
//! with 2,000 endpoints and 200 variables, and on every bundled connector; beside it, a
//! schema-only validation of the same document (YAML parse + the `jsonschema` crate).
//!
//! Ends with one JSON line: `check_ms`, `schema_only_ms`, `endpoints` (medians).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The allocator of the `connector` binary (`runtime/src/main.rs`), which runs `check`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ENDPOINTS: usize = 2000;
const VARIABLES: usize = 200;
const RUNS: usize = 15;

/// A connector with `ENDPOINTS` endpoints and `VARIABLES` variables, every one used.
fn generated() -> String {
    let mut s = String::from(
        "connector: generated\nname: Generated\nbase_url: \"{{ vars.v0 }}\"\nvariables:\n",
    );
    let _ = writeln!(
        s,
        "  v0:\n    label: Base URL\n    default: https://api.example.com"
    );
    for i in 1..VARIABLES {
        let _ = writeln!(
            s,
            "  v{i}:\n    label: Variable {i}\n    description: The value number {i}.\n    default: \"value-{i}\""
        );
    }
    s.push_str(
        "auth:\n  client_credentials:\n    type: oauth2_client_credentials\n    request:\n      url: https://login.example.com/oauth/token\nendpoints:\n",
    );
    for i in 0..ENDPOINTS {
        let v = 1 + i % (VARIABLES - 1);
        let _ = writeln!(
            s,
            "  endpoint_{i}:\n    description: Endpoint number {i}.\n    method: GET\n    url: \"/resources/{i}/items/{{{{ input.id }}}}\"\n    query:\n      filter: \"{{{{ vars.v{v} }}}}\"\n      q: \"{{{{ input.q }}}}\"\n    headers:\n      X-Trace: \"trace-{i}\"\n    inputs:\n      id:\n        label: ID\n        required: true\n      q:\n        label: Query\n        default: \"\"\n    records: /items\n    pagination:\n      type: offset\n      limit: 50\n      total: /total"
        );
    }
    s
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn time(mut f: impl FnMut()) -> f64 {
    f(); // warm-up: the schema is compiled once per process
    median(
        (0..RUNS)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let text = generated();
    let bytes = text.as_bytes();
    // `CONNECTOR_BENCH_WRITE=FILE` keeps the generated connector, to time other tools on it.
    if let Some(path) = std::env::var_os("CONNECTOR_BENCH_WRITE") {
        std::fs::write(path, bytes).expect("the generated connector is written");
    }
    let compiled = compiler::compile("generated.yaml", bytes);
    let errors: Vec<_> = compiled
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(
        errors.is_empty(),
        "the generated connector compiles: {errors:?}"
    );
    assert_eq!(compiled.ir.as_ref().unwrap().endpoints.len(), ENDPOINTS);

    let check_ms = time(|| {
        let c = compiler::compile("generated.yaml", bytes);
        assert!(c.ir.is_some());
    });
    let schema = connector_spec::connector_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let schema_only_ms = time(|| {
        let doc = compiler::yaml::parse(&text).expect("parses");
        assert!(validator.is_valid(&doc.value));
    });
    println!(
        "generated connector: {} KiB, {ENDPOINTS} endpoints, {VARIABLES} variables",
        bytes.len() / 1024
    );
    println!("  check (parse, schema, checks, lower): {check_ms:.1} ms (median of {RUNS})");
    println!("  schema only (parse, jsonschema):      {schema_only_ms:.1} ms (median of {RUNS})");

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let bundled: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|p| (p.display().to_string(), std::fs::read(p).unwrap()))
        .collect();
    let bundled_ms = time(|| {
        for (name, b) in &bundled {
            assert!(compiler::compile(name, b).ir.is_some());
        }
    });
    println!(
        "  all {} bundled connectors: {bundled_ms:.2} ms (median of {RUNS})",
        bundled.len()
    );
    println!(
        "{}",
        serde_json::json!({
            "check_ms": (check_ms * 100.0).round() / 100.0,
            "schema_only_ms": (schema_only_ms * 100.0).round() / 100.0,
            "endpoints": ENDPOINTS,
            "variables": VARIABLES,
            "bundled_ms": (bundled_ms * 100.0).round() / 100.0,
        })
    );
}

//! `cargo bench --bench render`: template renders per second, single-threaded: the bearer
//! header `Bearer {{ auth.access_token }}` and a JSON body of 10 fields.
//!
//! Ends with one JSON line: `bearer_per_s`, `json_body_per_s` (medians of several runs).

use std::hint::black_box;
use std::time::Instant;

use runtime::render;
use runtime::secret::Secret;
use runtime::value::{Scope, Value, Values};

const RUNS: usize = 7;

/// Renders per second of `f`, the median of `RUNS` runs of about 300 ms.
fn per_second(mut f: impl FnMut() -> usize) -> f64 {
    let mut rates: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let mut n = 0u64;
            while t.elapsed().as_millis() < 300 {
                for _ in 0..1000 {
                    black_box(f());
                }
                n += 1000;
            }
            n as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[RUNS / 2]
}

fn main() {
    let mut auth = Values::default();
    auth.insert(
        "access_token".into(),
        Value::Secret(Secret::new("x".repeat(64))),
    );
    let scope = Scope {
        auth: Some(&auth),
        ..Default::default()
    };
    let bearer = compiler::parse_template("Bearer {{ auth.access_token }}");
    let bearer_per_s = per_second(|| {
        render::header("Authorization", &bearer, &scope)
            .unwrap()
            .len()
    });

    // A 10-field JSON body: strings with text, single references keeping their types, a nested
    // object.
    let mut input = Values::default();
    for (k, v) in [
        ("name", Value::text("Ada \"the\" Lovelace")),
        ("email", Value::text("ada@example.com")),
        ("age", Value::Plain(36.into())),
        ("active", Value::Plain(true.into())),
        ("city", Value::text("London")),
        ("note", Value::text("line1\nline2")),
    ] {
        input.insert(k.into(), v);
    }
    let yaml = r#"
connector: b
name: B
auth:
  k:
    type: api_key
endpoints:
  e:
    method: POST
    url: https://api.example.com/people
    inputs:
      name: { required: true }
      email: { required: true }
      age: { type: integer, required: true }
      active: { type: boolean, required: true }
      city: { required: true }
      note: { required: true }
    body:
      json:
        name: "{{ input.name }}"
        email: "{{ input.email }}"
        age: "{{ input.age }}"
        active: "{{ input.active }}"
        greeting: "Hello {{ input.name }}"
        address:
          city: "{{ input.city }}"
          country: UK
        note: "{{ input.note }}"
        source: connector
        tags: [a, b]
"#;
    let ir = compiler::compile("b.yaml", yaml.as_bytes())
        .ir
        .expect("the body connector compiles");
    let Some(compiler::ir::Body::Json(body)) = &ir.endpoints["e"].request.body else {
        panic!("a JSON body");
    };
    let scope = Scope {
        input: Some(&input),
        ..Default::default()
    };
    let json_body_per_s = per_second(|| {
        serde_json::to_vec(&render::json(body, &scope))
            .unwrap()
            .len()
    });

    println!("Bearer {{{{ auth.access_token }}}}: {bearer_per_s:.0} renders/s (median of {RUNS})");
    println!("10-field JSON body, serialized:  {json_body_per_s:.0} renders/s (median of {RUNS})");
    println!(
        "{}",
        serde_json::json!({
            "bearer_per_s": bearer_per_s.round(),
            "json_body_per_s": json_body_per_s.round(),
        })
    );
}

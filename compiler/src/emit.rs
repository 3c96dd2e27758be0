//! A YAML writer for JSON values, for `connector compile --expand`.
//!
//! Block style, keys in their order, and every string that could be read back as anything
//! other than the same string double-quoted with JSON escapes (a JSON string is a valid YAML
//! double-quoted scalar).

use serde_json::Value;

/// Writes `value` as a YAML document, preceded by `header` lines (each written as a comment).
pub fn to_yaml(value: &Value, header: &[&str]) -> String {
    let mut out = String::new();
    for line in header {
        out.push_str(line);
        out.push('\n');
    }
    write(&mut out, value, 0, false);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

fn write(out: &mut String, value: &Value, indent: usize, in_seq: bool) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 || !in_seq {
                    out.push_str(&" ".repeat(indent));
                }
                out.push_str(&scalar_string(k));
                out.push(':');
                nested(out, v, indent);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                if i > 0 || !in_seq {
                    out.push_str(&" ".repeat(indent));
                }
                out.push_str("- ");
                match v {
                    Value::Object(m) if !m.is_empty() => write(out, v, indent + 2, true),
                    Value::Array(a) if !a.is_empty() => write(out, v, indent + 2, true),
                    _ => {
                        out.push_str(&inline(v));
                        out.push('\n');
                    }
                }
            }
        }
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn nested(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write(out, v, indent + 2, false);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write(out, v, indent + 2, false);
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(v));
            out.push('\n');
        }
    }
}

fn inline(v: &Value) -> String {
    match v {
        Value::String(s) => scalar_string(s),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// A string as a plain scalar when that reads back as the same string, else double-quoted.
fn scalar_string(s: &str) -> String {
    let plain_safe = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _-./:()+@".contains(c))
        && !s.starts_with([' ', '-', ':', '.', '@'])
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
        && matches!(crate::yaml::parse(&format!("k: {s}")).map(|d| d.value["k"].clone()), Ok(Value::String(ref back)) if back == s);
    if plain_safe {
        s.to_owned()
    } else {
        Value::String(s.to_owned()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_through_the_parser() {
        let value = json!({
            "a": "plain text",
            "b": "{{ vars.x }}",
            "c": "true",
            "d": "12",
            "e": "",
            "f": "a: b # c",
            "g": "line\nbreak \"quoted\"",
            "n": 1.5, "t": true, "z": null,
            "list": [1, "two", {"k": "v", "w": [1, 2]}, [3, 4], {}],
            "nested": {"deep": {"deeper": "x"}, "empty": []},
        });
        let text = to_yaml(&value, &["# header"]);
        let back = crate::yaml::parse(&text).unwrap().value;
        assert_eq!(back, value, "{text}");
    }
}

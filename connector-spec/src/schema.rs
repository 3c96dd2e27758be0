//! JSON Schema generation.
//!
//! The schemas are generated from the types by schemars, then one rewrite is applied: a tagged
//! union (`oneOf` whose branches each fix `type` to a constant) becomes an `enum` on `type` plus
//! one `if`/`then` per branch. Validators and editors then report the errors of the branch the
//! author chose, instead of "matches none of the alternatives", and an unknown `type` is reported
//! with the list of valid ones.

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::{Connector, Instance};

/// The JSON Schema (draft 2020-12) of connector files.
pub fn connector_schema() -> Value {
    generate::<Connector>("Connector")
}

/// The JSON Schema (draft 2020-12) of instance files.
pub fn instance_schema() -> Value {
    generate::<Instance>("Instance")
}

/// A schema as written to `schemas/*.json`: pretty-printed JSON and a final newline.
pub fn schema_text(schema: &Value) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(schema).expect("a JSON value serializes")
    )
}

fn generate<T: JsonSchema>(title: &str) -> Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    drop_null(&mut schema);
    rewrite_tagged_unions(&mut schema);
    if let Value::Object(root) = &mut schema {
        root.insert("title".into(), Value::String(title.into()));
    }
    schema
}

/// Removes the `null` alternative schemars gives optional fields: an author leaves a key out
/// rather than writing it empty, and `key:` with no value is then reported as a mistake.
fn drop_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            let nullable_any_of = match map.get("anyOf") {
                Some(Value::Array(alts)) => {
                    alts.len() == 2 && alts[1] == json!({ "type": "null" }) && alts[0].is_object()
                }
                _ => false,
            };
            if nullable_any_of {
                if let Some(Value::Array(mut alts)) = map.remove("anyOf") {
                    if let Value::Object(inner) = alts.swap_remove(0) {
                        for (k, v) in inner {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
            }
            map.values_mut().for_each(drop_null);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_null),
        _ => {}
    }
}

/// Rewrites every `type`-tagged `oneOf` below `value` into `enum` + `if`/`then`.
fn rewrite_tagged_unions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(tags) = map.get("oneOf").and_then(tagged_branches) {
                let Some(Value::Array(branches)) = map.remove("oneOf") else {
                    unreachable!("tagged_branches checked the shape")
                };
                let all_of = branches
                    .into_iter()
                    .zip(&tags)
                    .map(|(branch, tag)| {
                        json!({
                            "if": { "properties": { "type": { "const": tag } }, "required": ["type"] },
                            "then": branch,
                        })
                    })
                    .collect();
                map.insert("type".into(), json!("object"));
                map.insert("required".into(), json!(["type"]));
                let mut type_prop = Map::new();
                type_prop.insert("description".into(), json!("The kind of this item."));
                type_prop.insert("enum".into(), json!(tags));
                map.insert("properties".into(), json!({ "type": type_prop }));
                map.insert("allOf".into(), Value::Array(all_of));
            }
            map.values_mut().for_each(rewrite_tagged_unions);
        }
        Value::Array(items) => items.iter_mut().for_each(rewrite_tagged_unions),
        _ => {}
    }
}

/// The tag of each branch, if `one_of` is a union tagged by a constant `type` property.
fn tagged_branches(one_of: &Value) -> Option<Vec<String>> {
    one_of
        .as_array()?
        .iter()
        .map(|branch| {
            branch
                .pointer("/properties/type/const")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_methods_become_if_then_per_type() {
        let schema = connector_schema();
        let auth = &schema["$defs"]["AuthMethod"];
        let types = auth["properties"]["type"]["enum"].as_array().unwrap();
        assert_eq!(types.len(), crate::AuthMethod::TYPE_NAMES.len());
        for (t, name) in types.iter().zip(crate::AuthMethod::TYPE_NAMES) {
            assert_eq!(t, name);
        }
        assert_eq!(auth["allOf"].as_array().unwrap().len(), types.len());
        assert!(auth.get("oneOf").is_none());
    }

    #[test]
    fn optional_fields_do_not_accept_null() {
        let schema = instance_schema();
        assert_eq!(schema["properties"]["instance"]["type"], "string");
    }
}

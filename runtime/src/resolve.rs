//! Resolving declared variables and inputs from what was given: types, `enum`, required
//! values, defaults, and unknown names with "did you mean".

use compiler::ir::{Default as VarDefault, Var};

use crate::render;
use crate::secret::Secret;
use crate::value::{parse_typed, scalar_json, Scope, Value, Values};

/// A value as given by an instance file, the command line or a caller.
#[derive(Debug, Clone)]
pub enum Given {
    /// Text (from the environment, a file or `--input k=v`), read according to the type.
    Text(String),
    /// A JSON scalar (written inline, or sent as JSON), which must fit the type.
    Json(serde_json::Value),
}

/// Something wrong with one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The name of the variable or input.
    pub name: String,
    /// Stable code.
    pub code: &'static str,
    /// What is wrong (never the value of a secret).
    pub message: String,
    /// What to do.
    pub help: Option<String>,
}

/// Resolves `declared` from `given`: each given value checked against its type and `enum`,
/// each missing one taken from its default (a template rendered over `vars` and the values
/// resolved before it), each missing required one reported. `what` names the kind of value
/// in messages ("variable", "input").
pub fn resolve<V: std::borrow::Borrow<Var>>(
    declared: &[V],
    given: &[(String, Given)],
    vars: Option<&Values>,
    what: &str,
) -> (Values, Vec<Problem>) {
    let mut out = Values::default();
    let mut problems = Vec::new();
    for (name, _) in given {
        if !declared.iter().any(|v| &v.borrow().name == name) {
            let names: Vec<&str> = declared.iter().map(|v| v.borrow().name.as_str()).collect();
            problems.push(Problem {
                name: name.clone(),
                code: "unknown-value",
                message: format!("unknown {what} `{name}`"),
                help: Some(match compiler::did_you_mean(name, names.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None if names.is_empty() => format!("there is no {what} to give"),
                    None => format!(
                        "the {what}s are {}",
                        names
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
            });
        }
    }
    for var in declared {
        let var: &Var = var.borrow();
        let given = given.iter().find(|(n, _)| n == &var.name).map(|(_, g)| g);
        let value = match given {
            Some(g) => match typed(var, g, what) {
                Ok(v) => Some(v),
                Err(p) => {
                    problems.push(p);
                    continue;
                }
            },
            None => match &var.default {
                Some(VarDefault::Value(s)) => Some(scalar_json(s)),
                Some(VarDefault::Template(t)) => {
                    let scope = Scope {
                        vars: vars.or(Some(&out)),
                        input: vars.map(|_| &out),
                        ..Default::default()
                    };
                    Some(serde_json::Value::String(render::text(t, &scope)))
                }
                None if var.required => {
                    problems.push(Problem {
                        name: var.name.clone(),
                        code: "missing-value",
                        message: format!(
                            "the required {what} `{}`{} has no value",
                            var.name,
                            var.label
                                .as_ref()
                                .map(|l| format!(" ({l})"))
                                .unwrap_or_default()
                        ),
                        help: (what == "variable").then(|| {
                            if var.secret {
                                format!(
                                    "give it as `{}: {{ env: NAME }}` or `{}: {{ file: PATH }}`",
                                    var.name, var.name
                                )
                            } else {
                                format!("give it a value: `{}: ...`", var.name)
                            }
                        }),
                    });
                    continue;
                }
                None => None,
            },
        };
        if let Some(v) = value {
            let v = match v {
                serde_json::Value::String(s) if var.secret => Value::Secret(Secret::new(s)),
                v => Value::Plain(v),
            };
            out.insert(var.name.clone(), v);
        }
    }
    (out, problems)
}

/// Reads a given value as the variable's type and checks its `enum`.
fn typed(var: &Var, given: &Given, what: &str) -> Result<serde_json::Value, Problem> {
    let problem = |code, message: String, help: Option<String>| Problem {
        name: var.name.clone(),
        code,
        message,
        help,
    };
    let kind = var.kind;
    let value = match given {
        Given::Text(t) => parse_typed(t, kind),
        Given::Json(serde_json::Value::String(s)) => parse_typed(s, kind),
        Given::Json(v) => {
            let fits = match kind {
                compiler::ir::ValueType::String => false,
                compiler::ir::ValueType::Integer => v.is_i64() || v.is_u64(),
                compiler::ir::ValueType::Number => v.is_number(),
                compiler::ir::ValueType::Boolean => v.is_boolean(),
            };
            if fits {
                Some(v.clone())
            } else if kind == compiler::ir::ValueType::String && (v.is_number() || v.is_boolean()) {
                Some(serde_json::Value::String(v.to_string()))
            } else {
                None
            }
        }
    };
    let Some(value) = value else {
        let shown = if var.secret {
            "the value".to_owned()
        } else {
            match given {
                Given::Text(t) => format!("`{}`", truncate(t)),
                Given::Json(v) => format!("`{}`", truncate(&v.to_string())),
            }
        };
        return Err(problem(
            "value-type",
            format!(
                "{shown} is not a valid {} for the {what} `{}`",
                kind.as_str(),
                var.name
            ),
            Some(match kind {
                compiler::ir::ValueType::Boolean => "write `true` or `false`".to_owned(),
                compiler::ir::ValueType::Integer => "write a whole number, e.g. `10`".to_owned(),
                compiler::ir::ValueType::Number => "write a number, e.g. `2.5`".to_owned(),
                compiler::ir::ValueType::String => "write a string".to_owned(),
            }),
        ));
    };
    if let Some(allowed) = &var.allowed {
        let ok = allowed.iter().any(|a| same(&scalar_json(a), &value));
        if !ok {
            let list: Vec<String> = allowed
                .iter()
                .map(|a| match a {
                    compiler::ir::Scalar::String(s) => s.clone(),
                    other => scalar_json(other).to_string(),
                })
                .collect();
            let text = match &value {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            let refs: Vec<&str> = list.iter().map(String::as_str).collect();
            let help = match compiler::did_you_mean(&text, refs.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!(
                    "valid values are {}",
                    list.iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let shown = if var.secret {
                "the value".to_owned()
            } else {
                format!("`{}`", truncate(&text))
            };
            return Err(problem(
                "value-not-allowed",
                format!(
                    "{shown} is not one of the values allowed for `{}`",
                    var.name
                ),
                Some(help),
            ));
        }
    }
    Ok(value)
}

/// Whether two JSON scalars are the same value (1 and 1.0 are).
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 60;
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect();
    if clean.chars().count() > MAX {
        format!("{}…", clean.chars().take(MAX).collect::<String>())
    } else {
        clean
    }
}

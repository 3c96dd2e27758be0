//! Checks of variable and input declarations: unused ones, defaults and enums of the wrong
//! type, secrets with defaults, cycles between defaults, names declared twice.

use std::collections::{HashMap, HashSet};

use connector_spec::{Scalar, ValueType, Variable};
use indexmap::IndexMap;

use super::references::Usage;
use super::Ctx;
use crate::diagnostic::Diagnostic;
use crate::template::{self, Namespace};
use crate::yaml::{escape, join};

/// Every declaration: (pointer of the `variables`/`inputs` map, the map).
fn declarations<'a>(ctx: &Ctx<'a>) -> Vec<(String, &'a IndexMap<String, Variable>)> {
    let c = ctx.connector;
    let mut out = vec![("/variables".to_owned(), &c.variables)];
    for (name, m) in &c.auth {
        out.push((format!("/auth/{}/variables", escape(name)), m.variables()));
    }
    for (name, e) in &c.endpoints {
        out.push((format!("/endpoints/{}/inputs", escape(name)), &e.inputs));
    }
    out
}

/// Variables an OAuth 2 method uses without a template: the client id and secret for client
/// authentication, the scope to compare with the granted one.
const IMPLICIT: [&str; 3] = ["client_id", "client_secret", "scope"];

fn is_oauth(m: &connector_spec::AuthMethod) -> bool {
    m.type_name().starts_with("oauth2_")
}

/// `unused-variable` and `unused-input` (warnings), for what the author wrote.
pub fn check_unused(ctx: &Ctx<'_>, usage: &Usage, out: &mut Vec<Diagnostic>) {
    let c = ctx.connector;
    let empty = HashSet::new();
    for name in c.variables.keys() {
        let at = join("/variables", name);
        let implicit = IMPLICIT.contains(&name.as_str()) && c.auth.values().any(is_oauth);
        let used = implicit
            || usage.vars_global.contains(name)
            || usage.vars_by_method.values().any(|s| s.contains(name));
        if !used && ctx.locs.contains(&at) {
            out.push(
                Diagnostic::warning(
                    "unused-variable",
                    format!("the variable `{name}` is never used"),
                )
                .at(at.clone(), ctx.locs.key(&at))
                .help(format!("use it as `{{{{ vars.{name} }}}}`, or remove it")),
            );
        }
    }
    for (method, m) in &c.auth {
        let local = usage.vars_by_method.get(method).unwrap_or(&empty);
        for name in m.variables().keys() {
            let at = format!("/auth/{}/variables/{}", escape(method), escape(name));
            let implicit = is_oauth(m) && IMPLICIT.contains(&name.as_str());
            if !implicit
                && !local.contains(name)
                && !usage.vars_global.contains(name)
                && ctx.locs.contains(&at)
            {
                out.push(
                    Diagnostic::warning(
                        "unused-variable",
                        format!(
                            "the variable `{name}` of the auth method `{method}` is never used"
                        ),
                    )
                    .at(at.clone(), ctx.locs.key(&at))
                    .help(format!("use it as `{{{{ vars.{name} }}}}`, or remove it")),
                );
            }
        }
    }
    for (endpoint, e) in &c.endpoints {
        let used = usage.inputs.get(endpoint).unwrap_or(&empty);
        for (name, input) in &e.inputs {
            let at = format!("/endpoints/{}/inputs/{}", escape(endpoint), escape(name));
            if used.contains(name) || !ctx.locs.contains(&at) {
                continue;
            }
            let message = if input.required {
                format!("the required input `{name}` of `{endpoint}` is never used: callers must pass a value that is ignored")
            } else {
                format!("the input `{name}` of `{endpoint}` is never used")
            };
            out.push(
                Diagnostic::warning("unused-input", message)
                    .at(at.clone(), ctx.locs.key(&at))
                    .help(format!("use it as `{{{{ input.{name} }}}}` in the url, query, headers or body, or remove it")),
            );
        }
    }
}

/// `secret-default`, `value-type`, `default-not-in-enum`, `required-with-default`.
pub fn check_declarations(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for (base, vars) in declarations(ctx) {
        for (name, v) in vars {
            let at = join(&base, name);
            let kind = v.kind.unwrap_or(ValueType::String);
            if let Some(default) = &v.default {
                let d_at = format!("{at}/default");
                if v.secret {
                    out.push(
                        Diagnostic::error("secret-default", format!("the secret `{name}` has a default value"))
                            .at(d_at.clone(), ctx.locs.value(&d_at))
                            .help("a secret is never written in a connector: remove the default and give the value in the instance, from `{ env: NAME }` or `{ file: PATH }`"),
                    );
                }
                if !default.fits(kind) {
                    out.push(
                        Diagnostic::error(
                            "value-type",
                            format!(
                                "the default of `{name}` is {}, but its type is `{}`",
                                describe(default),
                                kind.as_str()
                            ),
                        )
                        .at(d_at.clone(), ctx.locs.value(&d_at))
                        .help(format!(
                            "give a {} default, or change `type`",
                            kind.as_str()
                        )),
                    );
                } else if let Some(allowed) = &v.allowed {
                    if !allowed.iter().any(|a| same(a, default)) {
                        out.push(
                            Diagnostic::error(
                                "default-not-in-enum",
                                format!("the default `{default}` of `{name}` is not one of its `enum` values"),
                            )
                            .at(d_at.clone(), ctx.locs.value(&d_at))
                            .help(format!("allowed: {}", list(allowed))),
                        );
                    }
                }
                if v.required {
                    out.push(
                        Diagnostic::warning("required-with-default", format!("`{name}` is required but has a default"))
                            .at(format!("{at}/required"), ctx.locs.value(&format!("{at}/required")))
                            .help("a required value must be given, so the default is never used: remove one of them"),
                    );
                }
            }
            for (i, value) in v.allowed.iter().flatten().enumerate() {
                if !value.fits(kind) {
                    let e_at = format!("{at}/enum/{i}");
                    out.push(
                        Diagnostic::error(
                            "value-type",
                            format!("the `enum` value `{value}` of `{name}` is {}, but its type is `{}`", describe(value), kind.as_str()),
                        )
                        .at(e_at.clone(), ctx.locs.value(&e_at)),
                    );
                }
            }
        }
    }
}

fn same(a: &Scalar, b: &Scalar) -> bool {
    match (a, b) {
        (Scalar::Integer(x), Scalar::Number(y)) | (Scalar::Number(y), Scalar::Integer(x)) => {
            *x as f64 == *y
        }
        _ => a == b,
    }
}

fn describe(s: &Scalar) -> &'static str {
    match s {
        Scalar::Bool(_) => "a boolean",
        Scalar::Integer(_) => "a whole number",
        Scalar::Number(_) => "a number",
        Scalar::String(_) => "text",
    }
}

fn list(values: &[Scalar]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `variable-cycle`: defaults that depend on each other in a loop.
pub fn check_cycles(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    let c = ctx.connector;
    let mut reported: HashSet<Vec<String>> = HashSet::new();
    let mut scopes: Vec<Vec<(String, String, &Variable)>> = vec![c
        .variables
        .iter()
        .map(|(n, v)| (n.clone(), join("/variables", n), v))
        .collect()];
    for (m, method) in &c.auth {
        let mut scope = scopes[0].clone();
        for (n, v) in method.variables() {
            scope.push((
                n.clone(),
                format!("/auth/{}/variables/{}", escape(m), escape(n)),
                v,
            ));
        }
        scopes.push(scope);
    }
    for scope in scopes {
        // Later declarations (the method's) hide earlier ones of the same name.
        let mut by_name: HashMap<&str, (&str, &Variable)> = HashMap::new();
        for (n, at, v) in &scope {
            by_name.insert(n, (at, v));
        }
        let deps = |name: &str| -> Vec<String> {
            let Some((_, v)) = by_name.get(name) else {
                return Vec::new();
            };
            let Some(Scalar::String(s)) = &v.default else {
                return Vec::new();
            };
            let Ok(pieces) = template::parse(s) else {
                return Vec::new();
            };
            template::refs(&pieces)
                .filter(|(r, _, _)| {
                    r.ns == Namespace::Vars && by_name.contains_key(r.name.as_str())
                })
                .map(|(r, _, _)| r.name.clone())
                .collect()
        };
        let mut names: Vec<&str> = by_name.keys().copied().collect();
        names.sort();
        let mut done: HashSet<String> = HashSet::new();
        for start in names {
            find_cycle(start, &deps, &mut done, &mut |cycle| {
                let mut key = cycle.to_vec();
                key.sort();
                if reported.insert(key) {
                    let first = &cycle[0];
                    let at = format!("{}/default", by_name[first.as_str()].0);
                    let chain: Vec<String> = cycle
                        .iter()
                        .chain(std::iter::once(first))
                        .map(|n| format!("`{n}`"))
                        .collect();
                    out.push(
                        Diagnostic::error(
                            "variable-cycle",
                            format!("the defaults of {} depend on each other in a loop", chain.join(" → ")),
                        )
                        .at(at.clone(), ctx.locs.value(&at))
                        .help("a default may use other variables, but never itself, directly or through others"),
                    );
                }
            });
        }
    }
}

/// A depth-first walk of the defaults, with a stack of its own rather than recursion, so that a
/// chain of thousands of defaults cannot overflow the thread's.
struct Walk<'a> {
    deps: &'a dyn Fn(&str) -> Vec<String>,
    /// The names being visited, from the start.
    path: Vec<String>,
    /// Where each name of `path` is in it.
    on_path: HashMap<String, usize>,
    /// For each name on `path`: the names its default uses, and how many were visited.
    stack: Vec<(Vec<String>, usize)>,
}

impl Walk<'_> {
    fn enter(&mut self, name: &str, done: &HashSet<String>, report: &mut dyn FnMut(&[String])) {
        if let Some(&i) = self.on_path.get(name) {
            report(&self.path[i..]);
            return;
        }
        if done.contains(name) {
            return;
        }
        self.on_path.insert(name.to_owned(), self.path.len());
        self.path.push(name.to_owned());
        self.stack.push(((self.deps)(name), 0));
    }
}

/// Depth-first from `start`, reporting each loop met.
fn find_cycle(
    start: &str,
    deps: &dyn Fn(&str) -> Vec<String>,
    done: &mut HashSet<String>,
    report: &mut dyn FnMut(&[String]),
) {
    let mut walk = Walk {
        deps,
        path: Vec::new(),
        on_path: HashMap::new(),
        stack: Vec::new(),
    };
    walk.enter(start, done, report);
    while let Some((next, visited)) = walk.stack.last_mut() {
        if let Some(dep) = next.get(*visited).cloned() {
            *visited += 1;
            walk.enter(&dep, done, report);
        } else {
            walk.stack.pop();
            if let Some(name) = walk.path.pop() {
                walk.on_path.remove(&name);
                done.insert(name);
            }
        }
    }
}

/// `duplicate-name`: an auth variable that repeats a connector variable, and headers that
/// differ only in case.
pub fn check_duplicates(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    let c = ctx.connector;
    for (m, method) in &c.auth {
        for name in method.variables().keys() {
            let at = format!("/auth/{}/variables/{}", escape(m), escape(name));
            if c.variables.contains_key(name) && ctx.locs.contains(&at) {
                out.push(
                    Diagnostic::error(
                        "duplicate-name",
                        format!("`{name}` is declared both as a connector variable and in the auth method `{m}`"),
                    )
                    .at(at.clone(), ctx.locs.key(&at))
                    .help(format!("`vars.{name}` must mean one thing: rename one, or keep only the connector variable")),
                );
            }
        }
    }
    for site_map in header_maps(ctx) {
        let (base, keys) = site_map;
        let mut seen: HashMap<String, &str> = HashMap::new();
        for k in keys {
            if let Some(first) = seen.insert(k.to_ascii_lowercase(), k) {
                let at = join(&base, k);
                out.push(
                    Diagnostic::error(
                        "duplicate-name",
                        format!("the header `{k}` is also written as `{first}`"),
                    )
                    .at(at.clone(), ctx.locs.key(&at))
                    .help("header names are case-insensitive: keep one"),
                );
            }
        }
    }
}

/// Every headers map: (pointer, names).
pub(super) fn header_maps<'a>(ctx: &Ctx<'a>) -> Vec<(String, Vec<&'a String>)> {
    let mut maps: HashMap<String, Vec<&'a String>> = HashMap::new();
    let c = ctx.connector;
    let mut add = |at: String, map: &'a IndexMap<String, String>| {
        maps.insert(at, map.keys().collect());
    };
    for (name, e) in &c.endpoints {
        add(format!("/endpoints/{}/headers", escape(name)), &e.headers);
    }
    for (name, m) in &c.auth {
        let at = format!("/auth/{}", escape(name));
        let request = match m {
            connector_spec::AuthMethod::Custom(cu) => Some(&cu.request.headers),
            other => other.token_request().map(|r| &r.headers),
        };
        let apply = m.apply();
        if let Some(h) = request {
            add(format!("{at}/request/headers"), h);
        }
        if let Some(a) = apply {
            add(format!("{at}/apply/headers"), &a.headers);
        }
    }
    maps.into_iter().collect()
}

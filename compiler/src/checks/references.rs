//! `template-syntax` and `undefined-reference`: every template parses and every reference
//! names something that exists where the template is used.

use std::collections::{HashMap, HashSet};

use connector_spec::endpoint::Pagination;

use super::sites::{auth_fields, Place, Site};
use super::Ctx;
use crate::diagnostic::Diagnostic;
use crate::suggest;
use crate::template::{self, Namespace, Ref};

/// What the templates reference, for the unused-variable checks.
#[derive(Debug, Default)]
pub struct Usage {
    /// `vars.*` names referenced from connector-wide places (connector variable defaults,
    /// base URL, endpoints).
    pub vars_global: HashSet<String>,
    /// `vars.*` names referenced inside each auth method.
    pub vars_by_method: HashMap<String, HashSet<String>>,
    /// `input.*` names referenced in each endpoint.
    pub inputs: HashMap<String, HashSet<String>>,
}

/// Parses every template, reports syntax errors and undefined references, and returns what
/// is used.
pub fn check(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) -> Usage {
    let mut usage = Usage::default();
    let mut scopes = Scopes::new(ctx);
    for site in &ctx.sites {
        let pieces = match template::parse(site.text) {
            Ok(p) => p,
            Err(e) => {
                out.push(
                    Diagnostic::error("template-syntax", e.message)
                        .at(
                            site.pointer.clone(),
                            ctx.locs.inside(&site.pointer, ctx.source, e.offset, e.len),
                        )
                        .help(e.help),
                );
                continue;
            }
        };
        let mut problems = Vec::new();
        let mut spans = Vec::new();
        for (target, offset, len) in template::refs(&pieces) {
            record(&mut usage, site, target);
            if let Err((message, help)) = resolve(ctx, &mut scopes, site.place, target) {
                // A close name is the likelier fix; else say how a key is declared.
                let help = match help {
                    Some(h) if h.starts_with("did you mean") => Some(h),
                    other => signing_key_help(site, target).or(other),
                };
                problems.push((message, help));
                spans.push((offset, len));
            }
        }
        let positions = ctx.locs.inside_all(&site.pointer, ctx.source, &spans);
        for ((message, help), pos) in problems.into_iter().zip(positions) {
            let mut d =
                Diagnostic::error("undefined-reference", message).at(site.pointer.clone(), pos);
            if let Some(help) = help {
                d = d.help(help);
            }
            out.push(d);
        }
    }
    usage
}

/// The help for an undeclared variable holding a signing key, when no close name exists: the
/// key is a secret the instance gives, usually from a file.
fn signing_key_help(site: &Site<'_>, target: &Ref) -> Option<String> {
    let Place::Auth(method) = site.place else {
        return None;
    };
    if target.ns != Namespace::Vars {
        return None;
    }
    let key = ["/client_assertion/key", "/assertion/key"];
    let (what, file) = if key.iter().any(|k| site.pointer.ends_with(k)) {
        ("the PEM private key", "private-key.pem")
    } else if site.pointer.ends_with("/assertion/service_account") {
        (
            "the service account's JSON key file",
            "service-account.json",
        )
    } else {
        return None;
    };
    let name = &target.name;
    Some(format!(
        "declare `{name}` under `variables` of the auth method `{method}` with `secret: true` and `required: true`; each instance then gives {what}: `values: {{ {name}: {{ file: {file} }} }}`"
    ))
}

fn record(usage: &mut Usage, site: &Site<'_>, target: &Ref) {
    match (target.ns, site.place) {
        (Namespace::Vars, Place::Auth(m) | Place::Apply(m)) => {
            usage
                .vars_by_method
                .entry(m.to_owned())
                .or_default()
                .insert(target.name.clone());
        }
        (Namespace::Vars, _) => {
            // A connector variable's default does not use the variable itself.
            let own = format!("/variables/{}/default", crate::yaml::escape(&target.name));
            if site.pointer != own {
                usage.vars_global.insert(target.name.clone());
            }
        }
        (Namespace::Input, Place::Endpoint(e)) => {
            usage
                .inputs
                .entry(e.to_owned())
                .or_default()
                .insert(target.name.clone());
        }
        _ => {}
    }
}

type Problem = (String, Option<String>);

/// The names a namespace holds at one place, listed once per place rather than once per
/// reference (a file may hold thousands of references).
struct Names {
    list: Vec<String>,
    set: HashSet<String>,
}

/// What `resolve` has listed so far.
struct Scopes<'a> {
    names: HashMap<(Namespace, Place<'a>), Names>,
    /// The `auth.*` fields of each method.
    fields: HashMap<&'a str, HashSet<String>>,
}

impl<'a> Scopes<'a> {
    fn new(ctx: &Ctx<'a>) -> Self {
        Scopes {
            names: HashMap::new(),
            fields: ctx
                .connector
                .auth
                .iter()
                .map(|(k, m)| (k.as_str(), auth_fields(m).into_iter().collect()))
                .collect(),
        }
    }
}

/// The names of namespace `ns` at `place`, when it is available there.
fn names(ctx: &Ctx<'_>, ns: Namespace, place: Place<'_>) -> Vec<String> {
    let c = ctx.connector;
    match (ns, place) {
        (Namespace::Vars, Place::ConnectorVar) => c.variables.keys().cloned().collect(),
        (Namespace::Vars, Place::Auth(m) | Place::Apply(m)) => {
            let mut v: Vec<String> = c.variables.keys().cloned().collect();
            v.extend(c.auth[m].variables().keys().cloned());
            v
        }
        (Namespace::Vars, Place::Base | Place::Endpoint(_)) => {
            let mut v: Vec<String> = c.variables.keys().cloned().collect();
            v.extend(common(
                c.auth
                    .values()
                    .map(|m| m.variables().keys().cloned().collect()),
            ));
            v
        }
        (Namespace::Auth, Place::Apply(m)) => auth_fields(&c.auth[m]),
        (Namespace::Auth, Place::Base | Place::Endpoint(_)) => {
            common(c.auth.values().map(auth_fields))
        }
        (Namespace::Input, Place::Endpoint(e)) => c.endpoints[e].inputs.keys().cloned().collect(),
        (Namespace::Page, Place::Endpoint(e)) => match &c.endpoints[e].pagination {
            Some(p) => page_names(p).iter().map(|s| s.to_string()).collect(),
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Whether `target` exists at `place`; if not, the message and help.
fn resolve<'a>(
    ctx: &Ctx<'a>,
    scopes: &mut Scopes<'a>,
    place: Place<'a>,
    target: &Ref,
) -> Result<(), Problem> {
    let c = ctx.connector;
    let name = target.name.as_str();
    // Namespaces that do not exist here, whatever the name.
    match (target.ns, place) {
        (Namespace::Auth, Place::ConnectorVar | Place::Auth(_)) => return Err((
            format!("`auth.{name}` is not available here"),
            Some(
                "`auth.*` fields exist after authentication: use them in `apply` and in endpoints"
                    .into(),
            ),
        )),
        (Namespace::Input, Place::Endpoint(_)) => {}
        (Namespace::Input, _) => {
            return Err((
                format!("`input.{name}` is not available here"),
                Some(
                    "`input.*` values are passed to endpoints; use `vars.*` outside endpoints"
                        .into(),
                ),
            ))
        }
        (Namespace::Page, Place::Endpoint(e)) if c.endpoints[e].pagination.is_none() => {
            return Err((
                format!("`page.{name}` is used but the endpoint `{e}` has no `pagination`"),
                Some("add `pagination:` to the endpoint, or remove the reference".into()),
            ))
        }
        (Namespace::Page, Place::Endpoint(_)) => {}
        (Namespace::Page, _) => {
            return Err((
                format!("`page.{name}` is not available here"),
                Some("`page.*` exists only in paginated endpoints".into()),
            ))
        }
        _ => {}
    }
    // `vars` and `auth` hold the same names in every endpoint: list them once.
    let key_place = match (target.ns, place) {
        (Namespace::Vars | Namespace::Auth, Place::Endpoint(_)) => Place::Base,
        _ => place,
    };
    let found = scopes
        .names
        .entry((target.ns, key_place))
        .or_insert_with(|| {
            let list = names(ctx, target.ns, place);
            let set = list.iter().cloned().collect();
            Names { list, set }
        })
        .set
        .contains(name);
    if found {
        return Ok(());
    }
    // Names that exist, but only in some auth methods.
    match (target.ns, place) {
        (Namespace::Vars, Place::Base | Place::Endpoint(_)) => {
            let owners: Vec<&str> = c
                .auth
                .iter()
                .filter(|(_, m)| m.variables().contains_key(name))
                .map(|(k, _)| k.as_str())
                .collect();
            if !owners.is_empty() {
                return Err((
                    format!("`vars.{name}` is a variable of the auth method `{}` only", owners.join("`, `")),
                    Some(format!(
                        "endpoints run with any auth method; declare `{name}` under the connector's `variables`"
                    )),
                ));
            }
        }
        (Namespace::Auth, Place::Base | Place::Endpoint(_)) => {
            let owners: Vec<&str> = c
                .auth
                .keys()
                .filter(|k| scopes.fields[k.as_str()].contains(name))
                .map(String::as_str)
                .collect();
            if !owners.is_empty() {
                return Err((
                    format!(
                        "`auth.{name}` is a field of the auth method `{}` only",
                        owners.join("`, `")
                    ),
                    Some("endpoints run with any auth method; give every method this field".into()),
                ));
            }
        }
        _ => {}
    }
    let candidates: Vec<&str> = scopes.names[&(target.ns, key_place)]
        .list
        .iter()
        .map(String::as_str)
        .collect();
    let ns = target.ns.as_str();
    let what = match target.ns {
        Namespace::Vars => "variable",
        Namespace::Auth => "auth field",
        Namespace::Input => "input",
        Namespace::Page => "page value",
    };
    let help = match suggest::did_you_mean(name, candidates.iter().copied()) {
        Some(best) => Some(format!("did you mean `{ns}.{best}`?")),
        None => elsewhere(ctx, scopes, place, target).or_else(|| {
            if candidates.is_empty() {
                Some(format!("no {what} is declared here"))
            } else {
                let list: Vec<String> = candidates
                    .iter()
                    .take(12)
                    .map(|c| format!("`{ns}.{c}`"))
                    .collect();
                Some(format!("declared here: {}", list.join(", ")))
            }
        }),
    };
    Err((format!("unknown {what} `{ns}.{name}`"), help))
}

/// A hint when the name exists in another namespace.
fn elsewhere(ctx: &Ctx<'_>, scopes: &Scopes<'_>, place: Place<'_>, target: &Ref) -> Option<String> {
    let c = ctx.connector;
    let name = &target.name;
    let in_vars =
        c.variables.contains_key(name) || c.auth.values().any(|m| m.variables().contains_key(name));
    let in_inputs = match place {
        Place::Endpoint(e) => c.endpoints[e].inputs.contains_key(name),
        _ => false,
    };
    let in_auth = scopes.fields.values().any(|f| f.contains(name));
    let alt = if in_vars && target.ns != Namespace::Vars {
        "vars"
    } else if in_inputs && target.ns != Namespace::Input {
        "input"
    } else if in_auth && target.ns != Namespace::Auth {
        "auth"
    } else {
        return None;
    };
    Some(format!("did you mean `{alt}.{name}`?"))
}

/// The names present in every list (none when there are no lists).
fn common(lists: impl Iterator<Item = Vec<String>>) -> Vec<String> {
    let mut result: Option<Vec<String>> = None;
    for list in lists {
        result = Some(match result {
            None => list,
            Some(prev) => {
                let list: HashSet<String> = list.into_iter().collect();
                prev.into_iter().filter(|n| list.contains(n)).collect()
            }
        });
    }
    result.unwrap_or_default()
}

/// The `page.*` names of a pagination style.
pub fn page_names(p: &Pagination) -> &'static [&'static str] {
    match p {
        Pagination::Offset(_) => &["offset", "limit"],
        Pagination::Page(_) => &["number", "size"],
        Pagination::Cursor(_) => &["cursor"],
        Pagination::LinkHeader(_) => &[],
    }
}

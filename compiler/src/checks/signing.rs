//! Checks of the keys JWTs are signed with: `empty-signing-key`, `signing-key-not-secret`,
//! `ambiguous-signing-key`.
//!
//! A signing key (`client_assertion.key`, `assertion.key`, `assertion.service_account`) must be
//! exactly one reference to a variable that is `secret` and `required`: anything else puts the
//! key in the connector file, in logs, or lets it render to nothing at run time. The defaults
//! of the expansion (`key: "{{ vars.private_key }}"` over a required secret) pass; a problem
//! is reported where the author caused it: at the key they wrote, or at the variable they
//! redeclared when the key is the default.

use std::collections::HashSet;

use connector_spec::auth::JwtSigning;
use connector_spec::{AuthMethod, Variable};

use super::Ctx;
use crate::diagnostic::{Diagnostic, Pos};
use crate::schema_check::place;
use crate::template::{self, Piece};
use crate::yaml::escape;

/// Which signing input a template is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// A PEM private key.
    Key,
    /// A Google service-account JSON key file.
    ServiceAccount,
}

impl Input {
    fn field(self) -> &'static str {
        match self {
            Input::Key => "key",
            Input::ServiceAccount => "service_account",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Input::Key => "private key",
            Input::ServiceAccount => "service account key file",
        }
    }

    /// An example instance value, for help texts.
    fn example_file(self) -> &'static str {
        match self {
            Input::Key => "private-key.pem",
            Input::ServiceAccount => "service-account.json",
        }
    }
}

/// Every JWT an auth method signs: (method, pointer of the JWT block, the block).
fn signed_jwts<'a>(ctx: &Ctx<'a>) -> Vec<(&'a str, String, &'a JwtSigning)> {
    let mut out = Vec::new();
    for (name, method) in &ctx.connector.auth {
        let at = format!("/auth/{}", escape(name));
        let (client_assertion, assertion) = match method {
            AuthMethod::Oauth2ClientCredentials(g)
            | AuthMethod::Oauth2Password(g)
            | AuthMethod::Oauth2RefreshToken(g) => (g.client_assertion.as_ref(), None),
            AuthMethod::Oauth2JwtBearer(g) => (g.client_assertion.as_ref(), g.assertion.as_ref()),
            AuthMethod::Oauth2AuthorizationCode(g) => (g.client_assertion.as_ref(), None),
            _ => continue,
        };
        if let Some(j) = client_assertion {
            out.push((name.as_str(), format!("{at}/client_assertion"), j));
        }
        if let Some(j) = assertion {
            out.push((name.as_str(), format!("{at}/assertion"), j));
        }
    }
    out
}

/// `empty-signing-key` and `signing-key-not-secret`, for every key and service account.
pub fn check_keys(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    // A variable reported at its declaration is reported once, for the first key using it.
    let mut reported = HashSet::new();
    for (method, at, jwt) in signed_jwts(ctx) {
        let inputs = [
            (Input::Key, jwt.key.as_deref()),
            (Input::ServiceAccount, jwt.service_account.as_deref()),
        ];
        for (input, text) in inputs {
            if let Some(text) = text {
                check_key(ctx, method, &at, input, text, &mut reported, out);
            }
        }
    }
}

/// The variable `name` seen from the auth method `method`, with the pointer of its
/// declaration: the method's own, else the connector's.
fn lookup<'a>(ctx: &Ctx<'a>, method: &str, name: &str) -> Option<(String, &'a Variable)> {
    let c = ctx.connector;
    if let Some(v) = c.auth.get(method).and_then(|m| m.variables().get(name)) {
        return Some((
            format!("/auth/{}/variables/{}", escape(method), escape(name)),
            v,
        ));
    }
    c.variables
        .get(name)
        .map(|v| (format!("/variables/{}", escape(name)), v))
}

fn check_key(
    ctx: &Ctx<'_>,
    method: &str,
    jwt_at: &str,
    input: Input,
    text: &str,
    reported: &mut HashSet<String>,
    out: &mut Vec<Diagnostic>,
) {
    let at = format!("{jwt_at}/{}", input.field());
    let written = ctx.locs.contains(&at);
    // A template that does not parse is a `template-syntax` error already.
    let Ok(pieces) = template::parse(text) else {
        return;
    };
    let literal: String = pieces
        .iter()
        .filter_map(|p| match p {
            Piece::Text(t) => Some(t.as_str()),
            Piece::Ref { .. } => None,
        })
        .collect();
    let literal = literal.trim();
    let refs: Vec<_> = template::refs(&pieces).collect();
    let field = input.field();
    let what = input.what();
    let jwt = place(jwt_at);

    if refs.is_empty() && literal.is_empty() {
        if written {
            out.push(
                Diagnostic::error("empty-signing-key", format!("the {what} of {jwt} is empty"))
                    .at(at.clone(), ctx.locs.value(&at))
                    .help(match input {
                        Input::Key => "remove `key` to use the standard `private_key` variable (a required secret), or write `key: \"{{ vars.NAME }}\"` over a variable declared with `secret: true` and `required: true`".to_owned(),
                        Input::ServiceAccount => "write `service_account: \"{{ vars.NAME }}\"` over a variable declared with `secret: true` and `required: true`, or remove `service_account` to sign with `key` and `issuer`".to_owned(),
                    }),
            );
        }
        return;
    }

    if refs.is_empty() {
        if !written {
            return;
        }
        let looks_like_path = !literal.contains(char::is_whitespace)
            && !literal.starts_with('{')
            && (literal.contains('/')
                || [".pem", ".key", ".json", ".p8", ".der"]
                    .iter()
                    .any(|ext| literal.to_ascii_lowercase().ends_with(ext)));
        let d = if looks_like_path {
            Diagnostic::error(
                "signing-key-not-secret",
                format!("`{literal}` looks like the path of a file, but `{field}` takes the {what} itself"),
            )
            .help(format!(
                "declare a variable with `secret: true` and `required: true`, write `{field}: \"{{{{ vars.NAME }}}}\"`, and let each instance read the file: `values: {{ NAME: {{ file: {literal} }} }}`"
            ))
        } else {
            Diagnostic::error(
                "signing-key-not-secret",
                format!("the {what} of {jwt} is written in the connector"),
            )
            .label("anyone who can read this file can sign as the client")
            .help(format!(
                "declare a variable with `secret: true` and `required: true`, write `{field}: \"{{{{ vars.NAME }}}}\"`, and give the value in each instance from `{{ file: {} }}` or `{{ env: NAME }}`; treat this key as leaked and replace it",
                input.example_file()
            ))
        };
        out.push(d.at(at.clone(), ctx.locs.value(&at)));
        return;
    }

    if refs.len() > 1 || !literal.is_empty() {
        if written {
            out.push(
                Diagnostic::error(
                    "signing-key-not-secret",
                    format!("the {what} of {jwt} must be exactly one reference to a secret variable"),
                )
                .at(at.clone(), ctx.locs.value(&at))
                .help(format!("write `{field}: \"{{{{ vars.NAME }}}}\"` and put the whole {what} in that secret variable")),
            );
        }
        return;
    }

    let (target, offset, len) = refs[0];
    if target.ns != template::Namespace::Vars {
        // `auth.*`, `input.*` and `page.*` are not available here: `undefined-reference`.
        return;
    }
    let name = target.name.as_str();
    // An undeclared variable is an `undefined-reference` error already.
    let Some((var_at, var)) = lookup(ctx, method, name) else {
        return;
    };
    if var.secret && var.required {
        return;
    }
    // Report at the reference when the author wrote the key, else at the variable they
    // redeclared over the standard one.
    let pos: Pos = if written {
        ctx.locs.inside(&at, ctx.source, offset, len)
    } else if ctx.locs.contains(&var_at) && reported.insert(var_at.clone()) {
        ctx.locs.key(&var_at)
    } else {
        return;
    };
    let pointer = if written { at.clone() } else { var_at.clone() };
    let line = ctx
        .locs
        .get(&var_at)
        .map(|l| l.key.unwrap_or(l.value).line)
        .filter(|_| written);
    let declared = match line {
        Some(l) => format!(" (line {l})"),
        None => String::new(),
    };
    let d = if !var.secret {
        let also = if var.default.is_some() {
            " and remove its default"
        } else {
            ""
        };
        let required = if var.required {
            ""
        } else {
            " and `required: true`"
        };
        Diagnostic::error(
            "signing-key-not-secret",
            format!("`vars.{name}` holds the {what} of {jwt}, but it is not a secret"),
        )
        .help(format!(
            "add `secret: true`{required} to the variable `{name}`{declared}{also}: a secret is redacted from logs and output, and instances give it from `{{ file: … }}` or `{{ env: … }}`, not inline"
        ))
    } else {
        Diagnostic::error(
            "empty-signing-key",
            format!("`vars.{name}` holds the {what} of {jwt}, but it is not required, so it may be empty"),
        )
        .help(format!(
            "add `required: true` to the variable `{name}`{declared}, so that an instance without the {what} is refused when it is loaded"
        ))
    };
    out.push(d.at(pointer, pos));
}

/// `ambiguous-signing-key`: a JWT bearer assertion with both a `key` and a `service_account`.
pub fn check_ambiguous(ctx: &Ctx<'_>, out: &mut Vec<Diagnostic>) {
    for (_, at, jwt) in signed_jwts(ctx) {
        if !at.ends_with("/assertion") || jwt.key.is_none() || jwt.service_account.is_none() {
            continue;
        }
        let sa = format!("{at}/service_account");
        out.push(
            Diagnostic::error(
                "ambiguous-signing-key",
                format!("{} has both `key` and `service_account`: which one signs?", place(&at)),
            )
            .at(sa.clone(), ctx.locs.key(&sa))
            .help("keep one: `service_account` (a JSON key file, which also gives the issuer and the token URL), or `key` with `issuer`"),
        );
    }
}

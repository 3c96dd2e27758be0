//! Semantic checks. Each check is a small function with its own diagnostic code, run over the
//! expanded connector; every one runs, and all their diagnostics are collected.
//!
//! | module | codes |
//! | --- | --- |
//! | [`references`] | `template-syntax`, `undefined-reference` |
//! | [`variables`] | `unused-variable`, `unused-input`, `variable-cycle`, `value-type`, `default-not-in-enum`, `required-with-default`, `duplicate-name`, `secret-default` |
//! | [`security`] | `secret-in-url`, `insecure-token-url`, `broad-scope`, `client-auth-conflict` |
//! | [`endpoints`] | `missing-base-url`, `pagination-without-records`, `body-shape`, `invalid-pointer`, `invalid-status`, `invalid-header-name` |
//! | [`auth`] | `missing-token-url`, `missing-authorize-url`, `no-client-auth`, `client-assertion-ignored`, `wrong-grant` (`service_account` in a client assertion), `duplicate-name` (a `token_params` entry the request sends already) |
//! | [`signing`] | `empty-signing-key`, `signing-key-not-secret`, `ambiguous-signing-key` |
//!
//! `schema_check` reports the other codes about auth methods that the schema alone decides:
//! `unknown-algorithm`, and `wrong-grant` for `authorize`, `token_sharing` or `assertion` on a
//! method whose grant has no such step.

mod auth;
pub(crate) mod endpoints;
mod references;
mod security;
mod signing;
pub(crate) mod sites;
mod variables;

use connector_spec::Connector;

use crate::diagnostic::Diagnostic;
use crate::yaml::Locations;

/// What every check reads.
pub struct Ctx<'a> {
    /// The source text, for positions inside strings.
    pub source: &'a str,
    /// Positions of the nodes the author wrote.
    pub locs: &'a Locations,
    /// The connector, defaults filled in.
    pub connector: &'a Connector,
    /// Every template in the connector.
    pub sites: Vec<sites::Site<'a>>,
}

/// Runs every check.
pub fn run(source: &str, locs: &Locations, connector: &Connector) -> Vec<Diagnostic> {
    let ctx = Ctx {
        source,
        locs,
        connector,
        sites: sites::collect(connector),
    };
    let mut out = Vec::new();
    let usage = references::check(&ctx, &mut out);
    variables::check_unused(&ctx, &usage, &mut out);
    variables::check_declarations(&ctx, &mut out);
    variables::check_cycles(&ctx, &mut out);
    variables::check_duplicates(&ctx, &mut out);
    security::check_secret_in_url(&ctx, &mut out);
    security::check_token_urls(&ctx, &mut out);
    security::check_broad_scope(&ctx, &mut out);
    security::check_client_auth_conflict(&ctx, &mut out);
    endpoints::check_base_url(&ctx, &mut out);
    endpoints::check_pagination(&ctx, &mut out);
    endpoints::check_bodies(&ctx, &mut out);
    endpoints::check_pointers(&ctx, &mut out);
    endpoints::check_statuses(&ctx, &mut out);
    endpoints::check_header_names(&ctx, &mut out);
    auth::check_token_url(&ctx, &mut out);
    auth::check_authorize_url(&ctx, &mut out);
    auth::check_client_auth_none(&ctx, &mut out);
    auth::check_client_assertion_ignored(&ctx, &mut out);
    auth::check_client_assertion_service_account(&ctx, &mut out);
    auth::check_token_params(&ctx, &mut out);
    signing::check_keys(&ctx, &mut out);
    signing::check_ambiguous(&ctx, &mut out);
    out
}

pub use endpoints::is_absolute;

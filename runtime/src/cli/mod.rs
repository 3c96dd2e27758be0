//! The command line: one module per subcommand.

mod auth;
mod check;
mod compile;
mod instance_args;
mod login;
mod output;
mod run;
mod sandbox;
mod schema;
mod serve;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Check, compile and run declarative API connectors.
#[derive(Debug, Parser)]
#[command(name = "connector", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check connector files (or folders of them) and report every problem with its line.
    Check(check::Args),
    /// Compile a connector into its IR (JSON), or show it with every default written out.
    Compile(compile::Args),
    /// Print the JSON Schema of connector or instance files.
    Schema(schema::Args),
    /// Authenticate an instance and show what came back, every secret and token redacted.
    Auth(auth::Args),
    /// Call an endpoint of an instance: records as JSON lines on stdout, a summary on stderr.
    Run(run::Args),
    /// Serve the local OAuth 2 provider and demo API that the sandbox connector talks to.
    Sandbox(sandbox::Args),
    /// Serve every instance of a folder over HTTP, behind an API key.
    Serve(serve::Args),
    /// Sign an instance in with the authorization code grant (PKCE) and store its refresh
    /// token.
    Login(login::Args),
    /// Show, refresh or revoke an instance's tokens (always redacted).
    Token(token::Args),
}

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    /// rustc-style, with the source line and a caret.
    #[default]
    Human,
    /// `{"diagnostics": [...]}` on stdout.
    Json,
}

/// Exit statuses: 0 clean (warnings allowed), 1 errors in the input, 2 usage or I/O.
pub mod exit {
    /// No error.
    pub const OK: u8 = 0;
    /// The input has errors.
    pub const ERRORS: u8 = 1;
    /// Bad usage, or a file could not be read or written.
    pub const IO: u8 = 2;
}

/// Parses the command line and runs the subcommand.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::IO } else { exit::OK });
        }
    };
    runtime::logging::init();
    let code = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Compile(args) => compile::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Auth(args) => auth::run(args),
        Command::Run(args) => run::run(args),
        Command::Sandbox(args) => sandbox::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Login(args) => login::run(args),
        Command::Token(args) => token::run(args),
    };
    ExitCode::from(code)
}

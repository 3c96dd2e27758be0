//! `connector`: check, compile and run declarative API connectors.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

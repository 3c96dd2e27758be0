//! `connector schema [connector|instance] [-o FILE]`.

use std::path::PathBuf;

use clap::ValueEnum;

use super::output;

/// Which schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
enum Which {
    /// Connector files.
    #[default]
    Connector,
    /// Instance files.
    Instance,
}

/// Arguments of `connector schema`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which schema to print.
    #[arg(value_enum, default_value_t)]
    which: Which,
    /// Write the schema to this file (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args) -> u8 {
    let schema = match args.which {
        Which::Connector => connector_spec::connector_schema(),
        Which::Instance => connector_spec::instance_schema(),
    };
    output::emit(args.out.as_deref(), &connector_spec::schema_text(&schema))
}

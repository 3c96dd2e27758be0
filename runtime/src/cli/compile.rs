//! `connector compile FILE [--expand] [-o OUT]`.

use std::path::PathBuf;

use super::exit;
use super::output::{self, io_error};

/// Arguments of `connector compile`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The connector file.
    file: PathBuf,
    /// Print the connector as YAML with every default written out, instead of the IR.
    #[arg(long)]
    expand: bool,
    /// Write the result to this file (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    out: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args) -> u8 {
    let name = args.file.display().to_string();
    let bytes = match runtime::read_capped(&args.file) {
        Ok(b) => b,
        Err(e) => {
            let message = if e.kind() == std::io::ErrorKind::NotFound {
                "no such file".to_owned()
            } else {
                format!("cannot read: {e}")
            };
            output::print_human(&[io_error(&args.file, message)], None);
            return exit::IO;
        }
    };
    let compiled = compiler::compile(&name, &bytes);
    output::print_human(
        &compiled.diagnostics,
        Some(&String::from_utf8_lossy(&bytes)),
    );
    if compiled.has_errors() {
        return exit::ERRORS;
    }
    let text = if args.expand {
        let expanded = compiled
            .expanded
            .expect("a compiled connector was expanded");
        let value = serde_json::to_value(&expanded).expect("connectors serialize");
        compiler::emit::to_yaml(
            &value,
            &[
                "# yaml-language-server: $schema=../schemas/connector.schema.json",
                &format!(
                    "# {name}, with every default written out by `connector compile --expand`."
                ),
            ],
        )
    } else {
        let ir = compiled.ir.expect("no errors, so lowered");
        format!(
            "{}\n",
            serde_json::to_string_pretty(&ir).expect("the IR serializes")
        )
    };
    output::emit(args.out.as_deref(), &text)
}

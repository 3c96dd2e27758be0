//! `connector run INSTANCE ENDPOINT [--input k=v ...]`: records as JSON lines on stdout, a
//! one-line summary on stderr.

use std::io::{IsTerminal, Write};

use runtime::resolve::Given;
use runtime::run::Stats;
use runtime::{Error, ErrorKind};

use super::exit;
use super::instance_args::{self, Target};

/// Arguments of `connector run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// The endpoint to call.
    endpoint: String,
    /// An input of the endpoint, as `name=value` (repeatable). The value is read according
    /// to the input's type.
    #[arg(long = "input", short = 'i', value_name = "NAME=VALUE")]
    inputs: Vec<String>,
}

/// Runs the command.
pub fn run(args: Args) -> u8 {
    let mut inputs = Vec::new();
    for i in &args.inputs {
        match i.split_once('=') {
            Some((k, v)) if !k.is_empty() => inputs.push((k.to_owned(), Given::Text(v.to_owned()))),
            _ => {
                eprintln!("error: `--input {i}`: write inputs as `name=value`");
                return exit::IO;
            }
        }
    }
    instance_args::tokio().block_on(async move {
        let connected = match instance_args::connect(&args.target).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let conn = &connected.conn;
        let mut out = std::io::BufWriter::new(std::io::stdout());
        let mut closed = false;
        let mut sink = |record: &runtime::run::Record| -> runtime::Result<()> {
            if writeln!(out, "{}", runtime::run::compact(record)).is_err() {
                closed = true;
                return Err(Error::new(ErrorKind::Usage, "stdout was closed"));
            }
            Ok(())
        };
        let terminal = std::io::stderr().is_terminal();
        let mut progress = |s: &Stats| {
            if terminal {
                eprint!(
                    "\r\x1b[2K… {} pages, {} records, {} ms",
                    s.pages,
                    s.records,
                    s.elapsed.as_millis()
                );
            }
        };
        let result = conn
            .call(&args.endpoint, &inputs, &mut sink, &mut progress)
            .await;
        let _ = out.flush();
        if terminal {
            eprint!("\r\x1b[2K");
        }
        let code = match result {
            Ok(mut stats) => {
                // One call per process: every token request of the process is this run's,
                // background refreshes included.
                stats.token_requests = conn.authenticator().token_requests();
                for w in &stats.warnings {
                    eprintln!("warning: {w}");
                }
                eprintln!("{}", stats.summary());
                exit::OK
            }
            Err(_) if closed => exit::OK,
            Err(e) => {
                eprintln!("error: {e}");
                instance_args::status(&e)
            }
        };
        connected.finish().await;
        code
    })
}

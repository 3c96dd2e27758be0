//! `connector login INSTANCE`: sign in once with the authorization code grant and PKCE; the
//! refresh token is stored next to the instance file.

use std::time::Duration;

use runtime::auth::login;

use super::exit;
use super::instance_args::{self, Target};

/// Arguments of `connector login`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: Target,
    /// How long to wait for the browser to come back, in seconds.
    #[arg(long, value_name = "S", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Open the authorization URL in the default browser (`xdg-open`, `open` or `start`)
    /// as well as printing it.
    #[arg(long)]
    open: bool,
}

/// Runs the command.
pub fn run(args: Args) -> u8 {
    instance_args::tokio().block_on(async move {
        let connected = match instance_args::connect(&args.target).await {
            Ok(c) => c,
            Err(code) => return code,
        };
        let auth = connected.conn.authenticator();
        let options = login::Options {
            timeout: Duration::from_secs(args.timeout),
        };
        let open = args.open;
        let result = login::login(auth, &options, |url| {
            eprintln!("Open this URL in a browser to sign in:\n\n  {url}\n");
            if open {
                open_browser(url);
            }
        })
        .await;
        let code = match result {
            Ok(creds) => {
                let instance = auth.instance();
                println!(
                    "signed in `{}` with `{}`; the refresh token is stored in {}",
                    instance.id,
                    instance.auth_name,
                    auth.store().file().display()
                );
                if let Some(l) = creds.lifetime {
                    println!("access token lifetime: {} s", l.as_secs());
                }
                for w in &creds.warnings {
                    eprintln!("warning: {w}");
                }
                exit::OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                instance_args::status(&e)
            }
        };
        connected.finish().await;
        code
    })
}

/// Asks the desktop to open `url`; failures are ignored (the URL is printed anyway).
fn open_browser(url: &str) {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

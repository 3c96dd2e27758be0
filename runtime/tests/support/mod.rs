//! What the end-to-end tests share: a sandbox provider on loopback, a scratch folder with
//! connector and instance files, the `connector` binary and the library's `Connection`.
#![allow(dead_code)]

pub mod redis;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use runtime::instance;
use runtime::resolve::Given;
use runtime::run::{Connection, Stats};

/// Calls `endpoint`, adding each record, read as JSON, to `records` as it arrives: after an
/// error, those of the pages before are there.
pub async fn call_into(
    conn: &Connection,
    endpoint: &str,
    inputs: &[(String, Given)],
    records: &mut Vec<serde_json::Value>,
) -> runtime::Result<Stats> {
    conn.call(
        endpoint,
        inputs,
        &mut |r| {
            records.push(serde_json::from_str(r.get()).expect("a record is JSON"));
            Ok(())
        },
        &mut |_| {},
    )
    .await
}

/// The bundled sandbox connector.
pub fn sandbox_connector() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../connectors/sandbox.yaml")
}

/// A folder removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty folder under the system's temporary folder.
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "connector-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A sandbox on a free loopback port, its own async runtime, and a scratch folder.
pub struct Env {
    /// The sandbox.
    pub sandbox: sandbox::Sandbox,
    /// The scratch folder.
    pub dir: TempDir,
    /// The async runtime the sandbox runs on (and calls are made on).
    pub rt: tokio::runtime::Runtime,
}

impl Env {
    /// A sandbox with the default configuration.
    pub fn new() -> Self {
        Self::with(sandbox::Config::default())
    }

    /// A sandbox with `config`.
    pub fn with(config: sandbox::Config) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sandbox = rt
            .block_on(sandbox::Sandbox::start(
                "127.0.0.1:0".parse().unwrap(),
                config,
            ))
            .unwrap();
        Env {
            sandbox,
            dir: TempDir::new(),
            rt,
        }
    }

    /// The sandbox's base URL.
    pub fn url(&self) -> String {
        self.sandbox.url()
    }

    /// Writes a file in the scratch folder and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
        p
    }

    /// Writes an instance of the bundled sandbox connector with auth method `auth` and the
    /// extra `values` lines (YAML, indented by four spaces), `base_url` pointing at the
    /// sandbox.
    pub fn sandbox_instance(&self, name: &str, auth: &str, values: &str) -> PathBuf {
        let text = format!(
            "connector: {}\nauth: {auth}\nvalues:\n  base_url: {}\n{values}",
            sandbox_connector().display(),
            self.url()
        );
        self.write(&format!("{name}.yaml"), &text)
    }

    /// An instance of the sandbox connector with client credentials (Basic client auth).
    pub fn client_credentials(&self) -> PathBuf {
        self.write(
            "secret.txt",
            &format!("{}\n", self.sandbox.config().client_secret),
        );
        self.sandbox_instance(
            "cc",
            "client_credentials",
            "  client_id: sandbox-client\n  client_secret: { file: secret.txt }\n",
        )
    }

    /// Loads an instance and opens a connection.
    pub fn connect(&self, instance: &Path) -> Connection {
        let i = match instance::load(instance, &[]) {
            Ok(i) => i,
            Err(e) => panic!("instance does not load: {:?}", e.diagnostics),
        };
        Connection::new(i).unwrap()
    }

    /// Loads an instance and fetches its credentials now; panics when that fails.
    pub fn auth_ok(
        &self,
        instance: &Path,
    ) -> (Connection, std::sync::Arc<runtime::auth::Credentials>) {
        let conn = self.connect(instance);
        match self.rt.block_on(conn.authenticate()) {
            Ok(c) => (conn, c),
            Err(e) => panic!("authentication failed: {e}"),
        }
    }

    /// Loads an instance and fetches its credentials now; the error, or a panic when it
    /// succeeds.
    pub fn auth_err(&self, instance: &Path) -> runtime::Error {
        let conn = self.connect(instance);
        match self.rt.block_on(conn.authenticate()) {
            Ok(c) => panic!("authentication succeeded: {:?}", c.fields),
            Err(e) => e,
        }
    }

    /// Calls an endpoint and collects its records.
    pub fn call(
        &self,
        conn: &Connection,
        endpoint: &str,
        inputs: &[(&str, &str)],
    ) -> runtime::Result<(Vec<serde_json::Value>, Stats)> {
        let inputs: Vec<(String, Given)> = inputs
            .iter()
            .map(|(k, v)| (k.to_string(), Given::Text(v.to_string())))
            .collect();
        let mut records = Vec::new();
        let stats = self
            .rt
            .block_on(call_into(conn, endpoint, &inputs, &mut records))?;
        Ok((records, stats))
    }

    /// A connection to the client credentials instance whose tokens go through `tokens`.
    pub fn connect_through(
        &self,
        tokens: std::sync::Arc<runtime::tokens::TokenCache>,
    ) -> Connection {
        let path = self.client_credentials();
        let instance = instance::load(&path, &[]).unwrap();
        let cx = runtime::run::Context::with_tokens(tokens).unwrap();
        Connection::with_context(std::sync::Arc::new(instance), &cx)
    }

    /// Makes `n` concurrent `get_item` calls on each connection; returns how many failed.
    pub fn burst(&self, conns: &[std::sync::Arc<Connection>], n: usize) -> usize {
        self.rt.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for conn in conns {
                for i in 0..n {
                    let conn = conn.clone();
                    tasks.spawn(async move {
                        let id = (i % 100 + 1).to_string();
                        conn.call(
                            "get_item",
                            &[("id".into(), Given::Text(id))],
                            &mut |_| Ok(()),
                            &mut |_| {},
                        )
                        .await
                    });
                }
            }
            let mut failed = 0;
            while let Some(r) = tasks.join_next().await {
                if !matches!(r, Ok(Ok(_))) {
                    failed += 1;
                }
            }
            failed
        })
    }

    /// Runs the `connector` binary in the scratch folder.
    pub fn cli(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        cli_in(&self.dir.0, args, envs)
    }
}

/// Runs the `connector` binary in `dir`.
pub fn cli_in(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_connector"));
    c.args(args).current_dir(dir).env_remove("RUST_LOG");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

//! A real `redis-server` on a free loopback port, for the shared token cache tests.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::TempDir;

/// A `redis-server` started for one test, stopped when dropped.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: TempDir,
    binary: PathBuf,
}

/// The `redis-server` binary. Outside CI a missing one skips the test (with a message); under
/// `CI=true` it is a failure: `.ci/run` installs it.
pub fn binary() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("redis-server"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-server is not installed (CI=true): `.ci/run` must install it"
        );
        eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
    }
    found
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    /// Starts one, or `None` when redis-server is missing outside CI.
    pub fn start() -> Option<Self> {
        let binary = binary()?;
        let mut s = RedisServer {
            child: None,
            port: free_port(),
            dir: TempDir::new(),
            binary,
        };
        s.restart();
        Some(s)
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills it (SIGKILL): no goodbye to its clients.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, empty, and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new(&self.binary)
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir.0.to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && self.cmd(&["PING"]).as_deref() == Some(b"PONG".as_slice())
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs a command over RESP on a fresh connection; the reply's bytes for a simple or bulk
    /// string, `None` for a nil or an error.
    pub fn cmd(&self, args: &[&str]) -> Option<Vec<u8>> {
        let client = redis::Client::open(self.url()).ok()?;
        let mut conn = client
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok()?;
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        match c.query::<redis::Value>(&mut conn).ok()? {
            redis::Value::BulkString(b) => Some(b),
            redis::Value::SimpleString(s) => Some(s.into_bytes()),
            redis::Value::Okay => Some(b"OK".to_vec()),
            redis::Value::Int(i) => Some(i.to_string().into_bytes()),
            _ => None,
        }
    }

    /// The keys matching a pattern.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        let Ok(client) = redis::Client::open(self.url()) else {
            return Vec::new();
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
            return Vec::new();
        };
        redis::cmd("KEYS")
            .arg(pattern)
            .query::<Vec<String>>(&mut conn)
            .unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

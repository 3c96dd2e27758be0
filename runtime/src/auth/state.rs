//! Grant state kept across restarts: the refresh token an instance holds after the server
//! rotated it (RFC 6749 §6, OAuth 2.0 Security BCP §4.14) or after `connector login`.
//!
//! It is written next to the instance file (`NAME.state.json`, or
//! `CONNECTOR.AUTH.shared.state.json` for tokens shared by every instance of a connector),
//! atomically (a temporary file renamed over the old one) and readable by the owner only,
//! and in Redis too when the shared token cache is on, sealed like tokens. A spent refresh
//! token is never sent again after a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use compiler::ir::{Flow, Grant};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::error::{Error, ErrorKind, Result};
use crate::instance::Instance;
use crate::secret::Secret;
use crate::tokens::TokenCache;

/// What is stored.
#[derive(Serialize, Deserialize)]
struct Record {
    /// The current refresh token.
    refresh_token: String,
    /// SHA-256 of the refresh token the instance file gave when this one was stored: when
    /// the file is given a new one, the stored one is stale.
    seed: String,
    /// When it was stored, in seconds since the Unix epoch.
    updated_at: u64,
}

/// A stored refresh token.
#[derive(Debug)]
pub struct Stored {
    /// The token.
    pub refresh_token: Secret,
    /// When it was stored, in seconds since the Unix epoch.
    pub updated_at: u64,
}

impl From<Record> for Stored {
    fn from(r: Record) -> Self {
        Stored {
            refresh_token: Secret::new(r.refresh_token),
            updated_at: r.updated_at,
        }
    }
}

/// The grant state of one instance (or of one connector's shared sign-in).
#[derive(Debug)]
pub struct Store {
    file: PathBuf,
    key: String,
    tokens: Option<Arc<TokenCache>>,
}

/// The `seed` of a refresh token given in an instance file ("" when none).
pub fn seed(given: Option<&str>) -> String {
    match given {
        None | Some("") => String::new(),
        Some(t) => super::hex(&sha2::Sha256::digest(t.as_bytes())),
    }
}

/// The seed `instance`'s stored state is tied to: for the refresh token grant, the refresh
/// token its file gives; for the others, none.
pub fn instance_seed(instance: &Instance) -> String {
    match &instance.auth().flow {
        Flow::Oauth2(o) if o.grant == Grant::RefreshToken => seed(
            instance
                .vars
                .get("refresh_token")
                .map(|v| v.as_text())
                .as_deref(),
        ),
        _ => String::new(),
    }
}

impl Store {
    /// The store of `instance`; `shared` picks the connector-wide file. `key` is the token
    /// cache key (the Redis key of the state). `tokens` gives the shared cache, if any.
    pub fn new(
        instance: &Instance,
        shared: bool,
        key: &str,
        tokens: Option<Arc<TokenCache>>,
    ) -> Self {
        let path = Path::new(&instance.file);
        let dir = path.parent().unwrap_or(Path::new(""));
        let name = if shared {
            format!(
                "{}.{}.shared.state.json",
                instance.ir.connector, instance.auth_name
            )
        } else {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| instance.id.clone());
            format!("{stem}.state.json")
        };
        Store {
            file: dir.join(name),
            key: key.to_owned(),
            tokens,
        }
    }

    /// The state file.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The stored refresh token, unless it was stored for another `seed`. Redis first (other
    /// replicas may have rotated it), then the file.
    pub async fn load(&self, seed: &str) -> Result<Option<Secret>> {
        Ok(self.load_stored(seed).await?.map(|s| s.refresh_token))
    }

    /// The stored refresh token and when it was stored.
    pub async fn load_stored(&self, seed: &str) -> Result<Option<Stored>> {
        if let Some(t) = &self.tokens {
            if let Some(shared) = t.shared() {
                if let Some(Some(raw)) = shared.read_state(&self.key, t.metrics()).await {
                    if let Ok(r) = serde_json::from_slice::<Record>(&raw) {
                        if r.seed == seed {
                            return Ok(Some(r.into()));
                        }
                    }
                }
            }
        }
        let text = match std::fs::read(&self.file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Usage,
                    format!("cannot read {}: {e}", self.file.display()),
                ))
            }
        };
        match serde_json::from_slice::<Record>(&text) {
            Ok(r) if r.seed == seed => Ok(Some(r.into())),
            Ok(_) => Ok(None),
            Err(e) => Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "{} is not a state file ({e}); delete it and sign in again",
                    self.file.display()
                ),
            )),
        }
    }

    /// Stores `refresh_token`: in Redis when shared, and in the file, atomically.
    pub async fn save(&self, refresh_token: &Secret, seed: &str) -> Result<()> {
        let record = Record {
            refresh_token: refresh_token.expose().to_owned(),
            seed: seed.to_owned(),
            updated_at: super::jwt::unix_now(),
        };
        let json = serde_json::to_vec_pretty(&record).unwrap_or_default();
        if let Some(t) = &self.tokens {
            if let Some(shared) = t.shared() {
                if !shared.write_state(&self.key, &json, t.metrics()).await {
                    tracing::warn!(
                        "the refresh token could not be stored in the shared cache; it is in {}",
                        self.file.display()
                    );
                }
            }
        }
        write_private(&self.file, &json).map_err(|e| {
            Error::new(
                ErrorKind::Usage,
                format!(
                    "cannot store the new refresh token in {}: {e}; the old one is spent, so sign in again once the file can be written",
                    self.file.display()
                ),
            )
        })
    }

    /// Drops the stored state (file and Redis). Whether there was a file.
    pub async fn clear(&self) -> Result<bool> {
        if let Some(t) = &self.tokens {
            if let Some(shared) = t.shared() {
                shared.forget(&self.key, t.metrics()).await;
            }
        }
        match std::fs::remove_file(&self.file) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::new(
                ErrorKind::Usage,
                format!("cannot delete {}: {e}", self.file.display()),
            )),
        }
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, readable and
/// writable by the owner only, synced, then renamed over `path`: a crash leaves the old
/// file or the new one, never half of one.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp_name = format!(".{name}.{:08x}.tmp", fastrand::u32(..));
    let tmp = match dir {
        Some(d) => d.join(tmp_name),
        None => PathBuf::from(tmp_name),
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("state-{:08x}", fastrand::u32(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.state.json");
        write_private(&p, b"one").unwrap();
        write_private(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn seeds_differ_by_token() {
        assert_eq!(seed(None), "");
        assert_ne!(seed(Some("a")), seed(Some("b")));
        assert_eq!(seed(Some("a")).len(), 64);
    }
}

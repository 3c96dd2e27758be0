//! What the OAuth endpoints remember between requests: refresh tokens, authorization codes
//! and the `jti`s of client assertions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long an authorization code can be redeemed.
pub(crate) const CODE_LIFETIME: Duration = Duration::from_secs(60);
/// How many live refresh tokens (and spent ones) are kept; the oldest are forgotten first.
const REFRESH_CAPACITY: usize = 10_000;
/// The `jti` map is pruned of expired entries when it reaches this size.
const JTI_PRUNE_AT: usize = 1024;

/// What a refresh token stands for.
#[derive(Debug, Clone)]
pub(crate) struct RefreshGrant {
    /// The client it was issued to.
    pub(crate) client_id: String,
    /// The scope granted.
    pub(crate) scope: String,
    /// Whether a public client (no secret) may use it: it comes from a PKCE code redeemed by
    /// a public client.
    pub(crate) public: bool,
    /// Whether the sandbox issued it (false: [`Config::refresh_token`](crate::Config::refresh_token)).
    issued: bool,
    /// Issue order.
    seq: u64,
}

/// What an authorization code stands for.
#[derive(Debug, Clone)]
pub(crate) struct CodeGrant {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    /// The S256 `code_challenge`, if PKCE was used.
    pub(crate) challenge: Option<String>,
    pub(crate) scope: String,
    pub(crate) resource: Vec<String>,
    pub(crate) audience: Vec<String>,
    pub(crate) expires: Instant,
}

/// Why a refresh token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshError {
    Spent,
    Unknown,
    OtherClient,
    NotPublic,
}

/// Why an authorization code was refused (before PKCE and `redirect_uri` checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodeError {
    Spent,
    Unknown,
    Expired,
}

/// The OAuth state.
#[derive(Default)]
pub(crate) struct Grants {
    refresh: HashMap<String, RefreshGrant>,
    /// Spent (rotated) refresh tokens, by issue order.
    spent_refresh: HashMap<String, u64>,
    codes: HashMap<String, CodeGrant>,
    /// Redeemed codes and when they would have expired.
    spent_codes: HashMap<String, Instant>,
    /// `jti`s of client assertions and the `exp` until which they are remembered.
    jtis: HashMap<String, i64>,
    next_seq: u64,
}

impl Grants {
    /// Adds the refresh token of the configuration: valid, but not listed as issued.
    pub(crate) fn add_configured_refresh(&mut self, token: String, client_id: &str, scope: &str) {
        self.insert_refresh(token, client_id, scope, false, false);
    }

    /// Adds an issued refresh token.
    pub(crate) fn add_refresh(
        &mut self,
        token: String,
        client_id: &str,
        scope: &str,
        public: bool,
    ) {
        self.insert_refresh(token, client_id, scope, public, true);
    }

    fn insert_refresh(
        &mut self,
        token: String,
        client_id: &str,
        scope: &str,
        public: bool,
        issued: bool,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let grant = RefreshGrant {
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            public,
            issued,
            seq,
        };
        self.refresh.insert(token, grant);
        if self.refresh.len() > REFRESH_CAPACITY {
            forget_oldest(&mut self.refresh, |grant| grant.seq);
        }
    }

    /// Uses a refresh token for `client_id` (`public`: the client has no secret); spends it
    /// when `rotate`. Checked and spent at once, so that concurrent uses cannot both win.
    pub(crate) fn use_refresh(
        &mut self,
        token: &str,
        client_id: &str,
        public: bool,
        rotate: bool,
    ) -> Result<RefreshGrant, RefreshError> {
        if self.spent_refresh.contains_key(token) {
            return Err(RefreshError::Spent);
        }
        let grant = self.refresh.get(token).ok_or(RefreshError::Unknown)?;
        if grant.client_id != client_id {
            return Err(RefreshError::OtherClient);
        }
        if public && !grant.public {
            return Err(RefreshError::NotPublic);
        }
        let grant = grant.clone();
        if rotate {
            self.refresh.remove(token);
            self.spent_refresh.insert(token.to_owned(), grant.seq);
            if self.spent_refresh.len() > REFRESH_CAPACITY {
                forget_oldest(&mut self.spent_refresh, |seq| *seq);
            }
        }
        Ok(grant)
    }

    /// Revokes a refresh token; whether it was live.
    pub(crate) fn revoke_refresh(&mut self, token: &str) -> bool {
        self.refresh.remove(token).is_some()
    }

    /// The live refresh tokens the sandbox issued, oldest first.
    pub(crate) fn live_refresh_tokens(&self) -> Vec<String> {
        let mut live: Vec<(&String, u64)> = self
            .refresh
            .iter()
            .filter(|(_, grant)| grant.issued)
            .map(|(token, grant)| (token, grant.seq))
            .collect();
        live.sort_by_key(|(_, seq)| *seq);
        live.into_iter().map(|(token, _)| token.clone()).collect()
    }

    /// Adds an authorization code.
    pub(crate) fn add_code(&mut self, code: String, grant: CodeGrant, now: Instant) {
        if self.codes.len() >= JTI_PRUNE_AT {
            self.codes.retain(|_, grant| now < grant.expires);
            self.spent_codes.retain(|_, expires| now < *expires);
        }
        self.codes.insert(code, grant);
    }

    /// The grant of a code, if it can still be redeemed; `take` spends it.
    pub(crate) fn code(
        &mut self,
        code: &str,
        now: Instant,
        take: bool,
    ) -> Result<CodeGrant, CodeError> {
        if self.spent_codes.contains_key(code) {
            return Err(CodeError::Spent);
        }
        let grant = self.codes.get(code).ok_or(CodeError::Unknown)?;
        if now >= grant.expires {
            self.codes.remove(code);
            return Err(CodeError::Expired);
        }
        let grant = grant.clone();
        if take {
            self.codes.remove(code);
            self.spent_codes.insert(code.to_owned(), grant.expires);
        }
        Ok(grant)
    }

    /// Remembers the `jti` of a client assertion until `exp`; false if it was already used.
    pub(crate) fn use_jti(&mut self, jti: &str, exp: i64, now: i64) -> bool {
        if self.jtis.len() >= JTI_PRUNE_AT {
            self.jtis.retain(|_, until| *until >= now);
        }
        if self.jtis.get(jti).is_some_and(|until| *until >= now) {
            return false;
        }
        // Kept a little past `exp`: the verifier's leeway still accepts the assertion then.
        self.jtis.insert(jti.to_owned(), exp.saturating_add(10));
        true
    }
}

/// Forgets the older half of a map whose values carry an issue order.
fn forget_oldest<V>(map: &mut HashMap<String, V>, seq: impl Fn(&V) -> u64) {
    let mut order: Vec<u64> = map.values().map(&seq).collect();
    order.sort_unstable();
    let cut = order[order.len() / 2];
    map.retain(|_, value| seq(value) >= cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_spends_and_binds() {
        let mut grants = Grants::default();
        grants.add_refresh("r1".into(), "c", "s", false);
        assert_eq!(
            grants.use_refresh("r1", "other", false, true).unwrap_err(),
            RefreshError::OtherClient
        );
        assert_eq!(
            grants.use_refresh("r1", "c", true, true).unwrap_err(),
            RefreshError::NotPublic
        );
        assert_eq!(
            grants.use_refresh("r1", "c", false, false).unwrap().scope,
            "s"
        );
        assert_eq!(
            grants.use_refresh("r1", "c", false, true).unwrap().scope,
            "s"
        );
        assert_eq!(
            grants.use_refresh("r1", "c", false, true).unwrap_err(),
            RefreshError::Spent
        );
        assert_eq!(
            grants.use_refresh("r2", "c", false, true).unwrap_err(),
            RefreshError::Unknown
        );
        assert!(grants.live_refresh_tokens().is_empty());
    }

    #[test]
    fn the_configured_refresh_token_is_valid_but_not_listed() {
        let mut grants = Grants::default();
        grants.add_configured_refresh("conf".into(), "c", "s");
        grants.add_refresh("r1".into(), "c", "s", false);
        assert_eq!(grants.live_refresh_tokens(), ["r1"]);
        assert!(grants.use_refresh("conf", "c", false, false).is_ok());
    }

    #[test]
    fn refresh_tokens_are_capped_oldest_first() {
        let mut grants = Grants::default();
        for i in 0..=REFRESH_CAPACITY {
            grants.add_refresh(format!("r{i}"), "c", "s", false);
        }
        let live = grants.live_refresh_tokens();
        assert!(live.len() <= REFRESH_CAPACITY / 2 + 1);
        assert_eq!(live.last().map(String::as_str), Some("r10000"));
    }

    #[test]
    fn jtis_are_single_use_until_they_expire() {
        let mut grants = Grants::default();
        assert!(grants.use_jti("j", 100, 50));
        assert!(!grants.use_jti("j", 100, 60));
        assert!(grants.use_jti("j", 200, 150));
    }
}

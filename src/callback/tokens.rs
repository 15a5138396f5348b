//! The callback tokens file and the live token set the route reads.
//!
//! iSales sends no credentials with a push, so the only secret is the long random token the
//! operator puts into the campaign's `callBackUrl`. A token says which call center its pushes
//! are for (the records carry none) and which VDNs they may write.
//!
//! Tokens are kept as their SHA-256 only: a lookup hashes the presented text and finds the
//! digest, so no comparison runs over the secret itself, and no token text stays in memory after
//! the file is read. No error, log line or metric carries a token: an entry is named by its
//! position in the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::auth::{Scope, MAX_VDN};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

/// Shortest token accepted: a token is the whole of the callback's authentication.
pub const MIN_TOKEN_CHARS: usize = 16;

/// What one token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// 1-based position in the file, for log lines (never the value).
    pub index: usize,
    pub cc_id: u16,
    pub vdns: Scope<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a tokens file: {0}")]
    Syntax(String),
    #[error("no [[token]] entries")]
    NoTokens,
    #[error("[[token]] #{index}: {problem}")]
    Token { index: usize, problem: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    token: Vec<RawToken>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    value: String,
    cc_id: u16,
    vdns: RawVdns,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawVdns {
    All(String),
    Only(Vec<i64>),
}

type Digest32 = [u8; 32];

fn digest(token: &str) -> Digest32 {
    Sha256::digest(token.as_bytes()).into()
}

/// A validated set of tokens, by digest.
#[derive(Debug, Default)]
pub struct TokenSet {
    grants: HashMap<Digest32, Arc<TokenGrant>>,
}

impl TokenSet {
    pub fn parse(text: &str) -> Result<TokenSet, TokensError> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| TokensError::Syntax(e.message().to_owned()))?;
        if raw.token.is_empty() {
            return Err(TokensError::NoTokens);
        }
        let mut grants = HashMap::with_capacity(raw.token.len());
        for (i, t) in raw.token.into_iter().enumerate() {
            let index = i + 1;
            let value = Zeroizing::new(t.value);
            let problem = |problem: &str| TokensError::Token {
                index,
                problem: problem.to_owned(),
            };
            if value.chars().count() < MIN_TOKEN_CHARS {
                return Err(problem("value must be at least 16 characters"));
            }
            // The token travels in a URL path segment: keep it to characters that need no
            // escaping, so what iSales sends is what the file says.
            if !value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
            {
                return Err(problem("value may hold only A-Z a-z 0-9 - _ . ~"));
            }
            if t.cc_id == 0 {
                return Err(problem("cc_id must be 1..65535"));
            }
            let vdns = match t.vdns {
                RawVdns::All(s) if s == "*" => Scope::All,
                RawVdns::Only(list)
                    if !list.is_empty()
                        && list.iter().all(|&v| (1..=i64::from(MAX_VDN)).contains(&v)) =>
                {
                    Scope::only(list.into_iter().filter_map(|v| u16::try_from(v).ok()))
                }
                _ => return Err(problem("vdns must be \"*\" or a list of VDNs 1..5000")),
            };
            let grant = TokenGrant {
                index,
                cc_id: t.cc_id,
                vdns,
            };
            if grants.insert(digest(&value), Arc::new(grant)).is_some() {
                return Err(problem("the same value as an earlier token"));
            }
        }
        Ok(TokenSet { grants })
    }

    /// One token for every VDN of `cc_id`: the demo's.
    pub fn single(value: &str, cc_id: u16) -> TokenSet {
        let grant = TokenGrant {
            index: 1,
            cc_id,
            vdns: Scope::All,
        };
        TokenSet {
            grants: HashMap::from([(digest(value), Arc::new(grant))]),
        }
    }

    pub fn load(path: &Path) -> Result<TokenSet, TokensError> {
        let text = std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|source| TokensError::Io {
                path: path.to_owned(),
                source,
            })?;
        TokenSet::parse(&text)
    }

    pub fn len(&self) -> usize {
        self.grants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }
}

/// The live token set, swapped whole on reload (the same pattern as `auth::Keys`).
#[derive(Debug, Clone)]
pub struct Tokens {
    inner: Arc<RwLock<Arc<TokenSet>>>,
}

impl Tokens {
    pub fn new(set: TokenSet) -> Self {
        Tokens {
            inner: Arc::new(RwLock::new(Arc::new(set))),
        }
    }

    /// The grant of the token presented in the URL, if it is one.
    pub fn lookup(&self, presented: &str) -> Option<Arc<TokenGrant>> {
        let d = digest(presented);
        let set = Arc::clone(&self.inner.read().unwrap_or_else(PoisonError::into_inner));
        set.grants.get(&d).cloned()
    }

    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn replace(&self, set: TokenSet) {
        *self.inner.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
    }
}

/// Re-reads the tokens file whenever its content changes (looked at every `poll`), until
/// `shutdown`. A broken or vanished file is logged and the tokens in force stay.
pub fn spawn_tokens_reloader(
    tokens: Tokens,
    path: PathBuf,
    poll: Duration,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    let mut last = crate::auth::keys::fingerprint(&path);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(poll.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = ticker.tick() => {}
            }
            let now = crate::auth::keys::fingerprint(&path);
            if now == last || now.is_none() {
                continue;
            }
            last = now;
            match TokenSet::load(&path) {
                Ok(set) => {
                    let n = set.len();
                    tokens.replace(set);
                    metrics.callback_tokens_reloaded(Some(n));
                    tracing::info!(tokens = n, path = %path.display(), "callback tokens reloaded");
                }
                Err(e) => {
                    metrics.callback_tokens_reloaded(None);
                    tracing::warn!(error = %e, path = %path.display(), "callback tokens file rejected; keeping the previous tokens");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[token]]
value = "0123456789abcdef-first"
cc_id = 89
vdns = [93, 92]

[[token]]
value = "0123456789abcdef-second"
cc_id = 7
vdns = "*"
"#;

    #[test]
    fn a_token_is_found_by_its_value_only() {
        let tokens = Tokens::new(TokenSet::parse(GOOD).expect("valid"));
        let first = tokens.lookup("0123456789abcdef-first").expect("known");
        assert_eq!((first.index, first.cc_id), (1, 89));
        assert!(first.vdns.contains(92) && !first.vdns.contains(94));
        assert_eq!(
            tokens
                .lookup("0123456789abcdef-second")
                .map(|g| g.vdns.clone()),
            Some(Scope::All)
        );
        assert!(tokens.lookup("0123456789abcdef-firs").is_none());
        assert!(tokens.lookup("").is_none());
    }

    #[test]
    fn bad_files_are_refused_without_showing_a_value() {
        let secret = "very-secret-token-value";
        for text in [
            String::new(),
            "[[token]]\nvalue = \"short\"\ncc_id = 1\nvdns = \"*\"".to_owned(),
            format!("[[token]]\nvalue = \"{secret}\"\ncc_id = 0\nvdns = \"*\""),
            format!("[[token]]\nvalue = \"{secret}\"\ncc_id = 1\nvdns = []"),
            format!("[[token]]\nvalue = \"{secret}\"\ncc_id = 1\nvdns = [5001]"),
            format!("[[token]]\nvalue = \"{secret} x\"\ncc_id = 1\nvdns = \"*\""),
            format!("[[token]]\nvalue = \"{secret}\"\ncc_id = 1\nvdns = \"*\"\n[[token]]\nvalue = \"{secret}\"\ncc_id = 2\nvdns = \"*\""),
            format!("[[token]]\nvalue = \"{secret}\"\ncc_id = 1\nvdns = \"*\"\nextra = 1"),
        ] {
            let e = TokenSet::parse(&text).expect_err(&text).to_string();
            assert!(!e.contains(secret), "{e}");
        }
    }
}

//! The keys file, the validated key set, and the live set request handlers read.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

use serde::Deserialize;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::c2;

/// A secret key. Wiped from memory when dropped and never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    /// The raw key bytes, for the HMAC only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Which values of a dimension a key may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope<T> {
    All,
    /// Sorted, without duplicates.
    Only(Vec<T>),
}

impl<T: Ord + Copy> Scope<T> {
    /// Builds a list scope, sorting and removing duplicates.
    pub fn only(values: impl IntoIterator<Item = T>) -> Self {
        let mut v: Vec<T> = values.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        Scope::Only(v)
    }

    pub fn contains(&self, value: T) -> bool {
        match self {
            Scope::All => true,
            Scope::Only(v) => v.binary_search(&value).is_ok(),
        }
    }
}

/// One access key: its secret and what it may read.
#[derive(Debug)]
pub struct KeyEntry {
    pub ak: String,
    pub secret: Secret,
    pub vdns: Scope<u16>,
    pub cc_ids: Scope<u16>,
    /// Dropped with the entry: a reloaded key set starts with empty caches.
    pub signing_keys: super::signing_cache::SigningKeyCache,
}

impl KeyEntry {
    pub fn may_read(&self, cc_id: u16, vdn: u16) -> bool {
        self.vdns.contains(vdn) && self.cc_ids.contains(cc_id)
    }
}

/// Which `[[key]]` entry an error is about: 1-based position (as a person counts the entries in
/// the file) and, when it could be read, the AK. The AK is an identifier, not a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRef {
    pub index: usize,
    pub ak: Option<String>,
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[[key]] #{}", self.index)?;
        if let Some(ak) = &self.ak {
            write!(f, " (ak {ak:?})")?;
        }
        Ok(())
    }
}

/// What is wrong with one `[[key]]` entry. No variant carries a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    /// Wrong type, missing or unknown field, as reported by the TOML deserializer.
    #[error("{0}")]
    Field(String),
    #[error("ak must be 1..={} characters without '/'", c2::MAX_AK_LEN)]
    BadAk,
    #[error("duplicate ak (also used by [[key]] #{first})")]
    DuplicateAk { first: usize },
    #[error("needs exactly one of sk or sk_env, found neither")]
    NoSk,
    #[error("needs exactly one of sk or sk_env, found both")]
    SkAndSkEnv,
    #[error("sk must be a string")]
    SkNotString,
    #[error("sk is empty")]
    EmptySk,
    #[error("sk_env: environment variable {0} is not set")]
    SkEnvUnset(String),
    #[error("sk_env: environment variable {0} is empty")]
    SkEnvEmpty(String),
    #[error("{field} must be \"*\" or a non-empty list of integers")]
    BadScope { field: &'static str },
    #[error("{field}: {value} is out of range {min}..={max}")]
    OutOfRange {
        field: &'static str,
        value: i64,
        min: u16,
        max: u16,
    },
}

/// Why a keys file was rejected. Says where and what, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("cannot read keys file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Only the position and the parser's message: the parser's own Display quotes the offending
    /// source line, which may be an `sk = ...` line.
    #[error("keys file is not valid TOML (line {line}, column {column}): {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("keys file: {0}")]
    Structure(String),
    #[error("keys file has no [[key]] entries")]
    NoKeys,
    #[error("keys file: {key}: {problem}")]
    Key { key: KeyRef, problem: KeyProblem },
}

/// Highest VDN id (api.md: `vdn` is 1..5000).
pub const MAX_VDN: u16 = 5000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    ak: String,
    // Taken as a raw value so that a wrongly typed secret (say `sk = 1234`) is reported without
    // the deserializer quoting it back.
    #[serde(default)]
    sk: Option<toml::Value>,
    #[serde(default)]
    sk_env: Option<String>,
    vdns: toml::Value,
    #[serde(default)]
    cc_ids: Option<toml::Value>,
}

/// The fields of a `[[key]]` table, as the parser reads them (for `realstat config schema`).
pub fn file_fields() -> &'static [&'static str] {
    fields_of::<RawKey>()
}

/// The field names serde hands the deserializer of a struct: a deserializer that only records
/// them, so the list cannot drift from the struct.
fn fields_of<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    struct Recorder(&'static [&'static str]);
    #[derive(Debug)]
    struct Recorded;
    impl std::fmt::Display for Recorded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("fields recorded")
        }
    }
    impl std::error::Error for Recorded {}
    impl serde::de::Error for Recorded {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Recorded
        }
    }
    impl<'de> serde::Deserializer<'de> for &mut Recorder {
        type Error = Recorded;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Recorded> {
            Err(Recorded)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Recorded> {
            self.0 = fields;
            Err(Recorded)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut recorder = Recorder(&[]);
    let _ = T::deserialize(&mut recorder);
    recorder.0
}

fn scope(
    raw: toml::Value,
    field: &'static str,
    max: u16,
    key: &KeyRef,
) -> Result<Scope<u16>, KeysError> {
    let err = |problem| KeysError::Key {
        key: key.clone(),
        problem,
    };
    // Converted by hand rather than through an untagged serde enum, whose error ("data did not
    // match any variant") would not tell the operator what to write.
    match raw {
        toml::Value::String(s) if s == "*" => Ok(Scope::All),
        // An empty list would make a key that can read nothing: a mistake, not a policy.
        toml::Value::Array(items) if !items.is_empty() => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let toml::Value::Integer(value) = item else {
                    return Err(err(KeyProblem::BadScope { field }));
                };
                match u16::try_from(value) {
                    Ok(n) if (1..=max).contains(&n) => out.push(n),
                    _ => {
                        return Err(err(KeyProblem::OutOfRange {
                            field,
                            value,
                            min: 1,
                            max,
                        }))
                    }
                }
            }
            Ok(Scope::only(out))
        }
        _ => Err(err(KeyProblem::BadScope { field })),
    }
}

fn syntax_error(text: &str, e: &toml::de::Error) -> KeysError {
    let (line, column) = match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or("");
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, column)
        }
        None => (0, 0),
    };
    KeysError::Syntax {
        line,
        column,
        message: e.message().trim().replace('\n', "; "),
    }
}

/// A validated set of keys, by AK.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: HashMap<String, Arc<KeyEntry>>,
}

/// The secret of one entry: `sk` inline, or read from the environment variable `sk_env`.
fn secret_of(
    sk: Option<toml::Value>,
    sk_env: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, KeyProblem> {
    match (sk, sk_env) {
        (None, None) => Err(KeyProblem::NoSk),
        (Some(_), Some(_)) => Err(KeyProblem::SkAndSkEnv),
        (Some(toml::Value::String(s)), None) => {
            let s = Zeroizing::new(s);
            if s.is_empty() {
                return Err(KeyProblem::EmptySk);
            }
            Ok(Secret::new(s.as_bytes()))
        }
        (Some(_), None) => Err(KeyProblem::SkNotString),
        (None, Some(name)) => match env(&name).map(Zeroizing::new) {
            None => Err(KeyProblem::SkEnvUnset(name)),
            Some(s) if s.is_empty() => Err(KeyProblem::SkEnvEmpty(name)),
            Some(s) => Ok(Secret::new(s.as_bytes())),
        },
    }
}

impl KeySet {
    /// Parses and validates a keys file. `env` resolves `sk_env` names (injected for tests).
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<KeySet, KeysError> {
        let mut doc: toml::Table = toml::from_str(text).map_err(|e| syntax_error(text, &e))?;
        if let Some(other) = doc.keys().find(|k| *k != "key") {
            return Err(KeysError::Structure(format!(
                "unknown top-level entry `{other}` (expected only [[key]] tables)"
            )));
        }
        let entries = match doc.remove("key") {
            None => return Err(KeysError::NoKeys),
            Some(toml::Value::Array(a)) => a,
            Some(_) => {
                return Err(KeysError::Structure(
                    "`key` must be an array of tables, written [[key]]".to_owned(),
                ))
            }
        };
        if entries.is_empty() {
            return Err(KeysError::NoKeys);
        }

        let mut keys: HashMap<String, Arc<KeyEntry>> = HashMap::with_capacity(entries.len());
        let mut first_index: HashMap<String, usize> = HashMap::with_capacity(entries.len());
        for (i, value) in entries.into_iter().enumerate() {
            let index = i + 1;
            // Read the AK first, on its own, so that even a type error elsewhere in the entry
            // can say which key it is about.
            let ak_hint = value
                .get("ak")
                .and_then(toml::Value::as_str)
                .map(str::to_owned);
            let key = KeyRef { index, ak: ak_hint };
            let err = |problem| KeysError::Key {
                key: key.clone(),
                problem,
            };
            if !value.is_table() {
                return Err(err(KeyProblem::Field("must be a table".to_owned())));
            }
            let raw: RawKey = value
                .try_into()
                .map_err(|e: toml::de::Error| err(KeyProblem::Field(e.message().to_owned())))?;

            if !c2::valid_ak(&raw.ak) {
                return Err(err(KeyProblem::BadAk));
            }
            if let Some(&first) = first_index.get(&raw.ak) {
                return Err(err(KeyProblem::DuplicateAk { first }));
            }
            let secret = secret_of(raw.sk, raw.sk_env, env).map_err(err)?;
            let vdns = scope(raw.vdns, "vdns", MAX_VDN, &key)?;
            let cc_ids = match raw.cc_ids {
                None => Scope::All,
                Some(r) => scope(r, "cc_ids", u16::MAX, &key)?,
            };
            first_index.insert(raw.ak.clone(), index);
            keys.insert(
                raw.ak.clone(),
                Arc::new(KeyEntry {
                    ak: raw.ak,
                    secret,
                    vdns,
                    cc_ids,
                    signing_keys: Default::default(),
                }),
            );
        }
        Ok(KeySet { keys })
    }

    /// Reads and parses a keys file; `sk_env` names come from the process environment.
    pub fn load(path: &Path) -> Result<KeySet, KeysError> {
        let text = std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|source| KeysError::Io {
                path: path.to_owned(),
                source,
            })?;
        KeySet::parse(&text, &|name| std::env::var(name).ok())
    }

    /// One key that may read everything: the embedded demo and tests.
    pub fn single(ak: impl Into<String>, sk: impl Into<Vec<u8>>) -> KeySet {
        let ak = ak.into();
        let entry = KeyEntry {
            ak: ak.clone(),
            secret: Secret::new(sk),
            vdns: Scope::All,
            cc_ids: Scope::All,
            signing_keys: Default::default(),
        };
        KeySet {
            keys: HashMap::from([(ak, Arc::new(entry))]),
        }
    }

    pub fn get(&self, ak: &str) -> Option<&Arc<KeyEntry>> {
        self.keys.get(ak)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The access keys, in no particular order.
    pub fn aks(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// The live key set shared by request handlers; swapped whole on reload.
///
/// A plain `RwLock<Arc<KeySet>>`: a lookup holds the read lock only to clone one `Arc`, never
/// across an await, so writers (a reload every few minutes at most) never wait long and readers
/// never see a half-updated set.
#[derive(Clone, Debug)]
pub struct Keys {
    inner: Arc<RwLock<Arc<KeySet>>>,
}

impl Keys {
    pub fn new(set: KeySet) -> Self {
        Keys {
            inner: Arc::new(RwLock::new(Arc::new(set))),
        }
    }

    /// The current set. Poisoning is ignored: the lock only guards a pointer swap, which cannot
    /// leave the set half-written.
    pub fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.inner.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn lookup(&self, ak: &str) -> Option<Arc<KeyEntry>> {
        let guard = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        guard.get(ak).cloned()
    }

    pub fn replace(&self, set: KeySet) {
        let new = Arc::new(set);
        let old = {
            let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *guard, new)
        };
        // Dropped outside the lock: zeroizing the old secrets need not delay readers.
        drop(old);
    }

    pub fn len(&self) -> usize {
        self.current().len()
    }

    pub fn is_empty(&self) -> bool {
        self.current().is_empty()
    }

    /// Loads `path` and swaps it in; on any error the old keys stay in force.
    pub fn reload_from(&self, path: &Path) -> Result<usize, KeysError> {
        let set = KeySet::load(path)?;
        let n = set.len();
        self.replace(set);
        Ok(n)
    }
}

/// What "the file changed" means: its bytes differ (their SHA-256). `None`: unreadable.
///
/// Not the modification time and length: a Kubernetes secret volume may put a rotated file of
/// the same length in place with the same time, and an edit within the filesystem's time
/// granularity keeps both. The file is a few hundred bytes; hashing it every poll is free. The
/// digest stays in memory, like the secrets it covers.
pub(crate) fn fingerprint(path: &Path) -> Option<[u8; 32]> {
    use sha2::{Digest, Sha256};
    // `read` follows symlinks, so a secret volume (whose files are symlinks into a directory
    // swapped atomically) shows the new file.
    let bytes = Zeroizing::new(std::fs::read(path).ok()?);
    Some(Sha256::digest(bytes.as_slice()).into())
}

/// SIGHUP where the platform has it; otherwise a stream that never fires.
struct Hangup {
    #[cfg(unix)]
    inner: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::hangup()) {
                Ok(s) => Hangup { inner: Some(s) },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP; keys reload on file change only");
                    Hangup { inner: None }
                }
            }
        }
        #[cfg(not(unix))]
        {
            Hangup {}
        }
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(s) = &mut self.inner {
            if s.recv().await.is_some() {
                return;
            }
            // The signal stream ended; stop polling it.
            self.inner = None;
        }
        std::future::pending::<()>().await;
    }
}

fn reload_and_log(keys: &Keys, path: &Path, why: &'static str, metrics: &Metrics) {
    match keys.reload_from(path) {
        Ok(n) => {
            metrics.keys_reloaded(n);
            tracing::info!(keys = n, path = %path.display(), trigger = why, "keys reloaded")
        }
        Err(e) => {
            metrics.keys_rejected();
            tracing::warn!(
                error = %e,
                path = %path.display(),
                trigger = why,
                "keys file rejected; keeping the previous keys"
            )
        }
    }
}

/// Re-reads the keys file when its content changes (checked every `poll`) or on SIGHUP, until
/// `shutdown`. A bad file is logged and the old keys stay in force. Every reload is counted in
/// `metrics` (`ok` or `rejected`), which also shows the number of keys in force.
///
/// Polling rather than inotify: it needs no extra dependency, works on every filesystem
/// (including network mounts and Kubernetes secret volumes), and reading a tiny file every few
/// seconds is free. It is read inline on the runtime.
pub fn spawn_reloader(
    keys: Keys,
    path: PathBuf,
    poll: Duration,
    shutdown: Shutdown,
    metrics: Arc<Metrics>,
) -> tokio::task::JoinHandle<()> {
    // Taken now, not when the task first runs: the caller loaded the file just before, and a
    // change made before the task is scheduled must still count as a change.
    let mut last = fingerprint(&path);
    tokio::spawn(async move {
        let mut hangup = Hangup::new();
        let mut ticker = tokio::time::interval(poll.max(Duration::from_millis(10)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = hangup.recv() => {
                    last = fingerprint(&path);
                    reload_and_log(&keys, &path, "SIGHUP", &metrics);
                }
                _ = ticker.tick() => {
                    let now = fingerprint(&path);
                    if now != last {
                        // A vanished file (deleted, or replaced by a directory) is not a new key
                        // set: keep the keys and wait for it to come back. It is a refused
                        // reload all the same, counted once per change, so the alert on
                        // rejected reloads sees a keys file that is gone.
                        if now.is_none() {
                            metrics.keys_rejected();
                            tracing::warn!(path = %path.display(), "keys file unreadable; keeping the previous keys");
                        } else {
                            reload_and_log(&keys, &path, "file changed", &metrics);
                        }
                        last = now;
                    }
                }
            }
        }
        tracing::debug!("keys reloader stopped");
    })
}

#[cfg(test)]
mod tests;

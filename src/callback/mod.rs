//! The iSales call-result callback (docs/callback.md): iSales POSTs each finished outbound call's
//! result to the campaign's `callBackUrl`; realstat is that URL, and writes each record as a
//! `CALL` event of its own schema to the event topic, which every replica then folds like any
//! other event. The topic stays the one source of truth.
//!
//! - [`tokens`]: the tokens file (which URL token writes for which call center and VDNs).
//! - [`body`]: the push body, a bare JSON array (fuzzed: `fuzz/fuzz_targets/callback_body.rs`).
//! - [`mapping`]: record to event, or to a refusal with a reason; the time-zone seam.
//! - [`producer`]: to Kafka with `acks=all`, waiting for every acknowledgement within a deadline.
//! - [`route`]: the handler; [`listener`]: its own HTTP(S) listener.

pub mod body;
pub mod listener;
pub mod mapping;
pub mod producer;
pub mod route;
pub mod tokens;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use tokens::{spawn_tokens_reloader, TokenSet, Tokens, TokensError};

use crate::auth::Lockout;
use crate::fold::TimeZones;
use crate::metrics::Metrics;

/// What the route needs, shared by its workers.
pub struct CallbackState {
    pub tokens: Tokens,
    /// Its own instance: misses on the callback do not lock an address out of the API.
    pub lockout: Arc<Lockout>,
    pub trusted_proxies: Arc<[IpAddr]>,
    pub writer: producer::Writer,
    /// The tenants' time zones (`timezone`, `timezones`), in which `callTimeStr` is read.
    pub zones: Arc<TimeZones>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: usize,
    pub max_records: usize,
    pub body_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("callback tokens file {path}: {source}")]
    Tokens {
        path: std::path::PathBuf,
        #[source]
        source: TokensError,
    },
    #[error("callback.tokens_file is required with callback.listen")]
    NoTokensFile,
    #[error(transparent)]
    Producer(#[from] producer::WriteError),
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
}

/// The callback listener of `settings`, bound, with its live tokens; `None` when
/// `callback.listen` is unset. Events go to `brokers` (the consumer's cluster, or the demo's).
/// The tokens come from `callback.tokens_file`, or, without one, are `fallback` (the demo's).
pub fn open(
    settings: &crate::config::Settings,
    brokers: &str,
    metrics: &Arc<Metrics>,
    fallback: Option<TokenSet>,
) -> Result<Option<(listener::CallbackListener, Tokens)>, CallbackError> {
    let cb = &settings.callback;
    let Some(addr) = &cb.listen else {
        return Ok(None);
    };
    let set = match (&cb.tokens_file, fallback) {
        (Some(path), _) => TokenSet::load(path).map_err(|source| CallbackError::Tokens {
            path: path.clone(),
            source,
        })?,
        (None, Some(set)) => set,
        (None, None) => return Err(CallbackError::NoTokensFile),
    };
    metrics.callback_tokens_in_force(set.len());
    let tokens = Tokens::new(set);
    let auth = &settings.auth;
    let state = CallbackState {
        tokens: tokens.clone(),
        lockout: Arc::new(Lockout::new(crate::auth::LockoutPolicy {
            threshold: auth.lockout_threshold,
            window: auth.lockout_window,
            duration: auth.lockout_duration,
            max_tracked: 100_000,
        })),
        trusted_proxies: auth.trusted_proxies.clone().into(),
        writer: producer::Writer::new(
            brokers,
            &settings.kafka_properties(),
            &settings.kafka.topic,
            settings.kafka.dlq_topic.as_deref(),
            cb.deadline,
        )?,
        zones: Arc::new(settings.time_zones()),
        metrics: metrics.clone(),
        max_body_bytes: cb.max_body_bytes,
        max_records: cb.max_records,
        body_timeout: settings.limits.body_timeout,
    };
    let listener = listener::CallbackListener::bind(addr, state, settings)?;
    tracing::info!(
        port = listener.port,
        tokens = tokens.len(),
        "callback listener bound"
    );
    Ok(Some((listener, tokens)))
}

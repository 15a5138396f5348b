//! Configuration: one schema, [`Settings`], read from layered sources (lowest first): built-in
//! defaults, the TOML config file, `REALSTAT_*` environment variables, command-line flags.
//!
//! The layers are merged key by key by figment. The file is the schema itself (serde); the
//! environment and flags come from one clap struct, `cli::ServeArgs`, whose fields mirror the
//! schema's keys (a test checks that every key has a flag and an environment variable, and the
//! reverse). Values are checked once, here, so a bad value stops the service at start with the
//! setting's name instead of surfacing later.

pub mod text;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::cli::ServeArgs;
use crate::fold::{Calendar, FoldPolicy};
use text::{duration, zone};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Source(#[source] Box<figment::Error>),
    #[error("config file {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid setting {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Everything the `serve` command runs with. Field names are the config file's keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The realstatistic API listener.
    pub listen: String,
    /// `/metrics` and `/health/*`; not exposed through the balancer.
    pub admin_listen: String,
    /// Call center of requests and events without `ccId`.
    pub default_cc_id: u16,
    /// What "today" means (IANA name in every source; resolved once).
    #[serde(with = "zone")]
    pub timezone: Calendar,
    /// Days of calls kept, today included.
    pub retention_days: u16,
    /// Event time without news before a call leaves waitCount/execCount.
    #[serde(with = "duration")]
    pub stale_call_timeout: Duration,
    /// Events stamped further ahead of the wall clock are refused.
    #[serde(with = "duration")]
    pub max_future_skew: Duration,
    pub log_format: LogFormat,
    /// HTTP worker threads; default: one per core.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Serve HTTPS directly; otherwise the balancer terminates TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    pub kafka: KafkaSettings,
    pub snapshot: SnapshotSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub tenants: TenantSettings,
    pub streams: StreamSettings,
}

/// Live streams (`GET .../realstatistic/stream`): how many may be open.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// Open streams in total; beyond: 429.
    pub max_open: usize,
    /// Open streams of one access key; beyond: 429.
    pub max_per_key: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// `None` (or empty): start the embedded demo broker and simulator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<String>,
    pub topic: String,
    /// Copy rejected events here, with the reason in headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlq_topic: Option<String>,
    /// How often the topic's partition list is re-read.
    #[serde(with = "duration")]
    pub metadata_refresh: Duration,
    /// Extra librdkafka properties, passed through verbatim (security settings and the like).
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSettings {
    pub dir: PathBuf,
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Snapshot files kept.
    pub keep: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// `None` only in demo mode, which uses a printed demo key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_file: Option<PathBuf>,
    #[serde(with = "duration")]
    pub allowed_skew: Duration,
    /// How often the keys file is checked for changes.
    #[serde(with = "duration")]
    pub keys_poll: Duration,
    /// Failed authentications from one address within `lockout_window` before it is locked (0: never).
    pub lockout_threshold: u32,
    #[serde(with = "duration")]
    pub lockout_window: Duration,
    #[serde(with = "duration")]
    pub lockout_duration: Duration,
    /// Peers whose `X-Forwarded-For` is believed (the NSLB).
    pub trusted_proxies: Vec<IpAddr>,
}

/// Protections of the API listener against oversized and slow clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub max_header_bytes: usize,
    #[serde(with = "duration")]
    pub request_head_timeout: Duration,
    #[serde(with = "duration")]
    pub body_timeout: Duration,
    #[serde(with = "duration")]
    pub keep_alive: Duration,
    /// Concurrent connections per worker thread.
    pub max_connections: usize,
    /// Tasks kept in memory at most; events that would start more are refused (`task_limit`).
    pub max_tasks: usize,
    /// Calls kept per task at most; new calls beyond are refused (`call_limit`).
    pub max_calls_per_task: usize,
}

/// Which tenants this deployment keeps: events of other call centers or VDNs are skipped, and
/// queries for them refused. Empty lists keep everything.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    pub cc_ids: Vec<u16>,
    pub vdns: Vec<u16>,
}

impl Default for Settings {
    fn default() -> Self {
        let http = crate::api::Limits::default();
        let fold = FoldPolicy::default();
        Settings {
            listen: "0.0.0.0:8080".into(),
            admin_listen: "0.0.0.0:9090".into(),
            default_cc_id: 1,
            timezone: Calendar::named("Asia/Shanghai").unwrap_or_else(|_| Calendar::utc()),
            retention_days: 2,
            stale_call_timeout: Duration::from_secs(24 * 3600),
            max_future_skew: Duration::from_secs(15 * 60),
            log_format: LogFormat::Text,
            workers: None,
            tls: None,
            kafka: KafkaSettings {
                brokers: None,
                topic: "isales.call-events".into(),
                dlq_topic: None,
                metadata_refresh: Duration::from_secs(30),
                properties: BTreeMap::new(),
            },
            snapshot: SnapshotSettings {
                dir: PathBuf::from("./data"),
                interval: Duration::from_secs(30),
                keep: 3,
            },
            auth: AuthSettings {
                keys_file: None,
                allowed_skew: Duration::from_secs(15 * 60),
                keys_poll: Duration::from_secs(2),
                lockout_threshold: 10,
                lockout_window: Duration::from_secs(60),
                lockout_duration: Duration::from_secs(5 * 60),
                trusted_proxies: Vec::new(),
            },
            limits: LimitSettings {
                max_header_bytes: http.max_header_bytes,
                request_head_timeout: http.request_head_timeout,
                body_timeout: http.body_timeout,
                keep_alive: http.keep_alive,
                max_connections: http.max_connections,
                max_tasks: fold.max_tasks,
                max_calls_per_task: fold.max_calls_per_task,
            },
            tenants: TenantSettings::default(),
            streams: StreamSettings {
                max_open: 1000,
                max_per_key: 100,
            },
        }
    }
}

impl Settings {
    /// Reads the settings of `serve`: defaults < config file < environment < flags (`args`
    /// carries the last two, as clap resolved them), then checks them.
    pub fn load(args: &ServeArgs) -> Result<Settings, ConfigError> {
        // What the operator set, in every source but the defaults.
        let mut given = Figment::new();
        if let Some(path) = &args.config {
            // Read once here for a plain "cannot read" error; figment's parse errors name the file.
            read_file(path)?;
            given = given.merge(Toml::file_exact(path));
        }
        given = given.merge(Serialized::defaults(args));
        let mut s: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(given.clone())
            .extract()
            .map_err(|e| ConfigError::Source(Box::new(e)))?;
        // An empty broker list (e.g. `REALSTAT_KAFKA_BROKERS=`) means "none": the demo.
        s.kafka.brokers = s.kafka.brokers.filter(|b| !b.trim().is_empty());
        if s.kafka.brokers.is_none() {
            // The demo prints a working secret: unless told otherwise, only this machine can
            // reach it.
            if !given.contains("listen") {
                s.listen = DEMO_LISTEN.into();
            }
            if !given.contains("admin_listen") {
                s.admin_listen = DEMO_ADMIN_LISTEN.into();
            }
        }
        s.validate()?;
        Ok(s)
    }

    /// Checks what the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, addr) in [
            ("listen", &self.listen),
            ("admin_listen", &self.admin_listen),
        ] {
            addr.parse::<SocketAddr>()
                .map_err(|e| invalid(name, format!("{addr:?}: {e} (want ip:port)")))?;
        }
        if self.default_cc_id == 0 {
            return Err(invalid("default_cc_id", "must be 1..65535"));
        }
        if self.retention_days == 0 {
            return Err(invalid("retention_days", "must be at least 1"));
        }
        if self.stale_call_timeout.is_zero() {
            return Err(invalid("stale_call_timeout", "must be positive"));
        }
        if self.kafka.topic.trim().is_empty() {
            return Err(invalid("kafka.topic", "must not be empty"));
        }
        if self.kafka.brokers.is_some() && self.auth.keys_file.is_none() {
            return Err(invalid(
                "auth.keys_file",
                "required when Kafka brokers are configured (only the embedded demo has a built-in key)",
            ));
        }
        if self.snapshot.interval.is_zero() {
            return Err(invalid("snapshot.interval", "must be positive"));
        }
        if self.auth.keys_poll.is_zero() {
            return Err(invalid("auth.keys_poll", "must be positive"));
        }
        if self.limits.max_header_bytes < 1024 {
            return Err(invalid("limits.max_header_bytes", "must be at least 1024"));
        }
        if self.limits.max_connections == 0 {
            return Err(invalid("limits.max_connections", "must be at least 1"));
        }
        if self.limits.max_tasks == 0 || self.limits.max_calls_per_task == 0 {
            return Err(invalid(
                "limits.max_tasks",
                "max_tasks and max_calls_per_task must be at least 1",
            ));
        }
        if let Some(bad) = self
            .tenants
            .vdns
            .iter()
            .find(|&&v| v == 0 || v > crate::auth::MAX_VDN)
        {
            return Err(invalid(
                "tenants.vdns",
                format!("{bad} is not a VDN (1..5000)"),
            ));
        }
        if self.tenants.cc_ids.contains(&0) {
            return Err(invalid(
                "tenants.cc_ids",
                "0 is not a call center (1..65535)",
            ));
        }
        if self.streams.max_open == 0 {
            return Err(invalid("streams.max_open", "must be at least 1"));
        }
        if self.streams.max_per_key == 0 {
            return Err(invalid("streams.max_per_key", "must be at least 1"));
        }
        if self.workers == Some(0) {
            return Err(invalid("workers", "must be at least 1"));
        }
        Ok(())
    }

    pub fn calendar(&self) -> Calendar {
        self.timezone.clone()
    }

    pub fn fold_policy(&self) -> FoldPolicy {
        FoldPolicy {
            retention_days: self.retention_days,
            stale_after_ms: millis(self.stale_call_timeout),
            max_future_ms: millis(self.max_future_skew),
            max_tasks: self.limits.max_tasks,
            max_calls_per_task: self.limits.max_calls_per_task,
        }
    }

    /// The API listener's protections.
    pub fn http_limits(&self) -> crate::api::Limits {
        let l = &self.limits;
        crate::api::Limits {
            max_header_bytes: l.max_header_bytes,
            request_head_timeout: l.request_head_timeout,
            body_timeout: l.body_timeout,
            keep_alive: l.keep_alive,
            max_connections: l.max_connections,
        }
    }

    pub fn tenant_filter(&self) -> crate::events::TenantFilter {
        crate::events::TenantFilter::new(&self.tenants.cc_ids, &self.tenants.vdns)
    }

    /// librdkafka properties in the order they apply.
    pub fn kafka_properties(&self) -> Vec<(String, String)> {
        self.kafka
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Where the demo (no Kafka configured) listens unless an address is given.
pub const DEMO_LISTEN: &str = "127.0.0.1:8080";
pub const DEMO_ADMIN_LISTEN: &str = "127.0.0.1:9090";

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::File {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests;

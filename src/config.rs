//! Configuration: one typed [`Settings`] struct, resolved from (highest first) command-line flags,
//! `REALSTAT_*` environment variables, the TOML config file, and defaults.
//!
//! Flags and environment variables are parsed by clap (see `cli.rs`, every one is in `--help`);
//! this module overlays them on the file and checks the result once, at start, so a bad value
//! stops the service with a message instead of surfacing later.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::ServeArgs;
use crate::fold::{Calendar, FoldPolicy};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Everything the `serve` command runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The realstatistic API listener.
    pub listen: String,
    /// `/metrics` and `/health/*`; not exposed through the balancer.
    pub admin_listen: String,
    pub tls: Option<TlsSettings>,
    pub kafka: KafkaSettings,
    pub default_cc_id: u16,
    pub timezone: String,
    pub fold: FoldPolicy,
    pub snapshot: SnapshotSettings,
    pub auth: AuthSettings,
    pub log_format: LogFormat,
    /// HTTP worker threads; default: one per core.
    pub workers: Option<usize>,
    pub limits: Limits,
}

/// Protections of the API listener against oversized and slow clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sum of the request's header names and values; larger: 431.
    pub max_header_bytes: usize,
    /// Time allowed to receive a request's head (slow-header clients are cut off).
    pub request_head_timeout: Duration,
    /// Time allowed to receive the body once the head is in (slow-body clients: 408).
    pub body_timeout: Duration,
    /// Idle time before a keep-alive connection is closed.
    pub keep_alive: Duration,
    /// Concurrent connections per worker thread.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            request_head_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(75),
            max_connections: 25_000,
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `None`: start the embedded broker and simulator (the demo).
    pub brokers: Option<String>,
    pub topic: String,
    /// Extra librdkafka properties, passed through verbatim (security settings and the like).
    pub properties: Vec<(String, String)>,
    /// How often the topic's partition list is re-read.
    pub metadata_refresh: Duration,
    pub dlq_topic: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SnapshotSettings {
    pub dir: PathBuf,
    pub interval: Duration,
    pub keep: usize,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `None` only in embedded mode, which uses a printed demo key.
    pub keys_file: Option<PathBuf>,
    pub allowed_skew: Duration,
    /// How often the keys file is checked for changes.
    pub keys_poll: Duration,
    pub lockout_threshold: u32,
    pub lockout_window: Duration,
    pub lockout_duration: Duration,
    /// Peers whose `X-Forwarded-For` is believed (the NSLB).
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "0.0.0.0:8080".into(),
            admin_listen: "0.0.0.0:9090".into(),
            tls: None,
            kafka: KafkaSettings {
                brokers: None,
                topic: "isales.call-events".into(),
                properties: Vec::new(),
                metadata_refresh: Duration::from_secs(30),
                dlq_topic: None,
            },
            default_cc_id: 1,
            timezone: "Asia/Shanghai".into(),
            fold: FoldPolicy::default(),
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
            log_format: LogFormat::Text,
            workers: None,
            limits: Limits::default(),
        }
    }
}

/// The config file. Every key optional; unknown keys are an error (a typo must not be ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    admin_listen: Option<String>,
    default_cc_id: Option<u16>,
    timezone: Option<String>,
    retention_days: Option<u16>,
    stale_call_timeout: Option<String>,
    max_future_skew: Option<String>,
    log_format: Option<LogFormat>,
    workers: Option<usize>,
    tls: Option<FileTls>,
    #[serde(default)]
    kafka: FileKafka,
    #[serde(default)]
    snapshot: FileSnapshot,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    limits: FileLimits,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_header_bytes: Option<usize>,
    request_head_timeout: Option<String>,
    body_timeout: Option<String>,
    keep_alive: Option<String>,
    max_connections: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKafka {
    brokers: Option<String>,
    topic: Option<String>,
    dlq_topic: Option<String>,
    metadata_refresh: Option<String>,
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSnapshot {
    dir: Option<PathBuf>,
    interval: Option<String>,
    keep: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    keys_file: Option<PathBuf>,
    allowed_skew: Option<String>,
    lockout_threshold: Option<u32>,
    lockout_window: Option<String>,
    lockout_duration: Option<String>,
    #[serde(default)]
    trusted_proxies: Vec<IpAddr>,
}

impl Settings {
    /// Resolves the settings of `serve`: flags and environment (already in `args`) over the
    /// config file over defaults.
    pub fn resolve(args: &ServeArgs) -> Result<Settings, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let mut s = Settings::default();

        let dur =
            |name: &'static str, v: &Option<String>| -> Result<Option<Duration>, ConfigError> {
                v.as_deref()
                    .map(|t| parse_duration(t).map_err(|m| invalid(name, m)))
                    .transpose()
            };

        // The file first, then flags/env on top.
        if let Some(v) = file.listen {
            s.listen = v;
        }
        if let Some(v) = file.admin_listen {
            s.admin_listen = v;
        }
        if let Some(v) = file.default_cc_id {
            s.default_cc_id = v;
        }
        if let Some(v) = file.timezone {
            s.timezone = v;
        }
        if let Some(v) = file.retention_days {
            s.fold.retention_days = v;
        }
        if let Some(v) = dur("stale_call_timeout", &file.stale_call_timeout)? {
            s.fold.stale_after_ms = v.as_millis() as i64;
        }
        if let Some(v) = dur("max_future_skew", &file.max_future_skew)? {
            s.fold.max_future_ms = v.as_millis() as i64;
        }
        if let Some(v) = file.log_format {
            s.log_format = v;
        }
        s.workers = file.workers;
        if let Some(v) = file.limits.max_header_bytes {
            s.limits.max_header_bytes = v;
        }
        if let Some(v) = dur(
            "limits.request_head_timeout",
            &file.limits.request_head_timeout,
        )? {
            s.limits.request_head_timeout = v;
        }
        if let Some(v) = dur("limits.body_timeout", &file.limits.body_timeout)? {
            s.limits.body_timeout = v;
        }
        if let Some(v) = dur("limits.keep_alive", &file.limits.keep_alive)? {
            s.limits.keep_alive = v;
        }
        if let Some(v) = file.limits.max_connections {
            s.limits.max_connections = v;
        }
        s.tls = file.tls.map(|t| TlsSettings {
            cert: t.cert,
            key: t.key,
        });
        s.kafka.brokers = file.kafka.brokers;
        if let Some(v) = file.kafka.topic {
            s.kafka.topic = v;
        }
        s.kafka.dlq_topic = file.kafka.dlq_topic;
        if let Some(v) = dur("kafka.metadata_refresh", &file.kafka.metadata_refresh)? {
            s.kafka.metadata_refresh = v;
        }
        s.kafka.properties = file.kafka.properties.into_iter().collect();
        if let Some(v) = file.snapshot.dir {
            s.snapshot.dir = v;
        }
        if let Some(v) = dur("snapshot.interval", &file.snapshot.interval)? {
            s.snapshot.interval = v;
        }
        if let Some(v) = file.snapshot.keep {
            s.snapshot.keep = v;
        }
        s.auth.keys_file = file.auth.keys_file;
        if let Some(v) = dur("auth.allowed_skew", &file.auth.allowed_skew)? {
            s.auth.allowed_skew = v;
        }
        if let Some(v) = file.auth.lockout_threshold {
            s.auth.lockout_threshold = v;
        }
        if let Some(v) = dur("auth.lockout_window", &file.auth.lockout_window)? {
            s.auth.lockout_window = v;
        }
        if let Some(v) = dur("auth.lockout_duration", &file.auth.lockout_duration)? {
            s.auth.lockout_duration = v;
        }
        s.auth.trusted_proxies = file.auth.trusted_proxies;

        // Flags and environment.
        if let Some(v) = &args.listen {
            s.listen = v.clone();
        }
        if let Some(v) = &args.admin_listen {
            s.admin_listen = v.clone();
        }
        match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                s.tls = Some(TlsSettings {
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
            (None, None) => {}
            _ => return Err(invalid("tls", "--tls-cert and --tls-key go together")),
        }
        if let Some(v) = &args.kafka_brokers {
            s.kafka.brokers = Some(v.clone()).filter(|b| !b.trim().is_empty());
        }
        if let Some(v) = &args.topic {
            s.kafka.topic = v.clone();
        }
        if let Some(v) = &args.dlq_topic {
            s.kafka.dlq_topic = Some(v.clone());
        }
        for p in &args.kafka_property {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| invalid("kafka-property", format!("{p:?} is not key=value")))?;
            s.kafka.properties.retain(|(key, _)| key != k);
            s.kafka.properties.push((k.to_owned(), v.to_owned()));
        }
        if let Some(v) = &args.keys_file {
            s.auth.keys_file = Some(v.clone());
        }
        if let Some(v) = &args.timezone {
            s.timezone = v.clone();
        }
        if let Some(v) = args.default_cc_id {
            s.default_cc_id = v;
        }
        if let Some(v) = args.retention_days {
            s.fold.retention_days = v;
        }
        if let Some(v) = dur("stale-call-timeout", &args.stale_call_timeout)? {
            s.fold.stale_after_ms = v.as_millis() as i64;
        }
        if let Some(v) = &args.snapshot_dir {
            s.snapshot.dir = v.clone();
        }
        if let Some(v) = dur("snapshot-interval", &args.snapshot_interval)? {
            s.snapshot.interval = v;
        }
        if let Some(v) = dur("allowed-skew", &args.allowed_skew)? {
            s.auth.allowed_skew = v;
        }
        if let Some(v) = args.lockout_threshold {
            s.auth.lockout_threshold = v;
        }
        if let Some(v) = dur("lockout-duration", &args.lockout_duration)? {
            s.auth.lockout_duration = v;
        }
        if let Some(v) = args.log_format {
            s.log_format = v;
        }
        if let Some(v) = args.workers {
            s.workers = Some(v);
        }

        s.validate()?;
        Ok(s)
    }

    /// Checks what can be checked before anything starts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, addr) in [
            ("listen", &self.listen),
            ("admin-listen", &self.admin_listen),
        ] {
            addr.parse::<SocketAddr>()
                .map_err(|e| invalid(name, format!("{addr:?}: {e} (want ip:port)")))?;
        }
        if self.default_cc_id == 0 {
            return Err(invalid("default-cc-id", "must be 1..65535"));
        }
        Calendar::named(&self.timezone).map_err(|e| invalid("timezone", e.to_string()))?;
        if self.fold.retention_days == 0 {
            return Err(invalid("retention-days", "must be at least 1"));
        }
        if self.fold.stale_after_ms <= 0 {
            return Err(invalid("stale-call-timeout", "must be positive"));
        }
        if self.kafka.topic.trim().is_empty() {
            return Err(invalid("topic", "must not be empty"));
        }
        if self.kafka.brokers.is_some() && self.auth.keys_file.is_none() {
            return Err(invalid(
                "keys-file",
                "required when Kafka brokers are configured (only the embedded demo has a built-in key)",
            ));
        }
        if self.snapshot.interval.is_zero() {
            return Err(invalid("snapshot-interval", "must be positive"));
        }
        if self.limits.max_header_bytes < 1024 || self.limits.max_connections == 0 {
            return Err(invalid(
                "limits",
                "max_header_bytes must be at least 1024 and max_connections at least 1",
            ));
        }
        if self.workers == Some(0) {
            return Err(invalid("workers", "must be at least 1"));
        }
        Ok(())
    }

    pub fn calendar(&self) -> Calendar {
        Calendar::named(&self.timezone).unwrap_or_else(|_| Calendar::utc())
    }
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// `500ms`, `30s`, `5m`, `24h`, `1d`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 500ms, 30s, 5m, 24h, 1d"))?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }
    .ok_or_else(|| format!("{text:?} is not a duration such as 500ms, 30s, 5m, 24h, 1d"))?;
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in [
            "",
            "s",
            "-1s",
            "1.5s",
            "10 parsecs",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    fn serve_args(argv: &[&str]) -> ServeArgs {
        let mut full = vec!["realstat", "serve"];
        full.extend_from_slice(argv);
        match crate::cli::Cli::try_parse_from(full)
            .expect("parses")
            .command
        {
            Some(crate::cli::Command::Serve(a)) => a,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn file_then_flags_override() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("realstat.toml");
        std::fs::write(
            &path,
            r#"
listen = "127.0.0.1:1000"
timezone = "UTC"
retention_days = 3
[kafka]
brokers = "k:9092"
topic = "from-file"
properties = { "security.protocol" = "SSL" }
[auth]
keys_file = "/etc/keys.toml"
allowed_skew = "5m"
[snapshot]
interval = "10s"
"#,
        )
        .expect("write");
        let p = path.to_string_lossy().to_string();
        let s = Settings::resolve(&serve_args(&[
            "--config",
            &p,
            "--topic",
            "from-flag",
            "--kafka-property",
            "security.protocol=SASL_SSL",
        ]))
        .expect("valid");
        assert_eq!(s.listen, "127.0.0.1:1000");
        assert_eq!(s.admin_listen, "0.0.0.0:9090");
        assert_eq!(s.timezone, "UTC");
        assert_eq!(s.fold.retention_days, 3);
        assert_eq!(s.kafka.brokers.as_deref(), Some("k:9092"));
        assert_eq!(s.kafka.topic, "from-flag");
        assert_eq!(
            s.kafka.properties,
            vec![("security.protocol".to_owned(), "SASL_SSL".to_owned())]
        );
        assert_eq!(s.auth.allowed_skew, Duration::from_secs(300));
        assert_eq!(s.snapshot.interval, Duration::from_secs(10));
    }

    #[test]
    fn the_shipped_example_config_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/realstat.toml");
        let s = Settings::resolve(&serve_args(&["--config", path])).expect("valid example");
        assert_eq!(s.limits.max_header_bytes, 16384);
        assert_eq!(s.snapshot.dir, PathBuf::from("/var/lib/realstat"));
    }

    #[test]
    fn bad_settings_are_refused_with_their_name() {
        let err = |argv: &[&str]| {
            Settings::resolve(&serve_args(argv))
                .expect_err("invalid")
                .to_string()
        };
        assert!(err(&["--timezone", "Mars/Base"]).contains("timezone"));
        assert!(err(&["--listen", "nowhere"]).contains("listen"));
        assert!(err(&["--kafka-brokers", "k:9092"]).contains("keys-file"));
        assert!(err(&["--snapshot-interval", "soon"]).contains("snapshot-interval"));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lisen = \"typo\"").expect("write");
        let p = path.to_string_lossy().to_string();
        assert!(err(&["--config", &p]).contains("unknown field"));
    }
}

//! The schema: every setting of `serve`, once. Each field is a key of the config file (serde), a
//! flag and a `REALSTAT_*` environment variable (clap), with its default and its description.
//! See the conventions in `config/mod.rs`. The structs are tables, one setting per field and one
//! attribute per line, so `#[rustfmt::skip]` keeps rustfmt from folding some attributes over
//! several lines and not others.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, FromArgMatches};
use serde::{Deserialize, Serialize};

use super::text::{
    duration, parse_duration, parse_property, parse_tenant_zone, parse_zone, properties,
    tenant_zones, zone,
};
use crate::fold::{Calendar, TenantScope};
use crate::telemetry::LogFormat;

// Everything the `serve` command runs with. (Plain comments on these structs: clap would take a
// doc comment for the description of the command they are flattened into.)
#[rustfmt::skip]
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address of the realstatistic API (the demo: 127.0.0.1:8080 unless set).
    #[arg(long, env = "REALSTAT_LISTEN", value_name = "ADDRESS", default_value = "0.0.0.0:8080")]
    pub listen: String,
    /// Address of /metrics and /health/*, not exposed through the balancer (the demo: 127.0.0.1:9090 unless set).
    #[arg(long, env = "REALSTAT_ADMIN_LISTEN", value_name = "ADDRESS", default_value = "0.0.0.0:9090")]
    pub admin_listen: String,
    /// Call center of requests and events without ccId.
    #[arg(long, env = "REALSTAT_DEFAULT_CC_ID", value_name = "INTEGER", default_value = "1")]
    pub default_cc_id: u16,
    /// IANA time zone that decides what "today" is.
    #[arg(long, env = "REALSTAT_TIMEZONE", value_name = "ZONE", default_value = "Asia/Shanghai", value_parser = parse_zone)]
    #[serde(with = "zone")]
    pub timezone: Calendar,
    /// Days of calls kept, today included.
    #[arg(long, env = "REALSTAT_RETENTION_DAYS", value_name = "INTEGER", default_value = "2")]
    pub retention_days: u16,
    /// A call without news for this long (event time) leaves waitCount/execCount.
    #[arg(long, env = "REALSTAT_STALE_CALL_TIMEOUT", value_name = "DURATION", default_value = "24h", value_parser = parse_duration)]
    #[serde(with = "duration")]
    pub stale_call_timeout: Duration,
    /// Events stamped further ahead of the wall clock are refused.
    #[arg(long, env = "REALSTAT_MAX_FUTURE_SKEW", value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    #[serde(with = "duration")]
    pub max_future_skew: Duration,
    /// Log format.
    #[arg(long, env = "REALSTAT_LOG_FORMAT", value_name = "FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// HTTP worker threads (unset: one per core).
    #[arg(long, env = "REALSTAT_WORKERS", value_name = "INTEGER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    #[command(flatten)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSettings>,
    #[command(flatten)]
    pub kafka: KafkaSettings,
    #[command(flatten)]
    pub snapshot: SnapshotSettings,
    #[command(flatten)]
    pub auth: AuthSettings,
    #[command(flatten)]
    pub limits: LimitSettings,
    #[command(flatten)]
    pub tenants: TenantSettings,
    #[command(flatten)]
    pub streams: StreamSettings,
    /// Time zone of a call center (89) or a call center and VDN (89:92), TENANT=ZONE, repeatable; in the environment comma-separated (unset: all in timezone).
    #[arg(long = "timezone-for", env = "REALSTAT_TIMEZONES", value_name = "KEY=VALUE", value_delimiter = ',', value_parser = parse_tenant_zone)]
    #[serde(with = "tenant_zones", default)]
    pub timezones: Vec<(TenantScope, Calendar)>,
    /// Days answerable, today included: a day leaving retention_days is kept as a closed-day record until then.
    #[arg(long, env = "REALSTAT_HISTORY_DAYS", value_name = "INTEGER", default_value = "35")]
    pub history_days: u16,
    #[command(flatten)]
    pub callback: CallbackSettings,
}

// Serve HTTPS directly; otherwise the balancer terminates TLS.
#[rustfmt::skip]
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain: serve HTTPS instead of HTTP (with tls.key; unset: plain HTTP).
    #[arg(id = "tls.cert", long = "tls-cert", env = "REALSTAT_TLS_CERT", value_name = "PATH", required = false, requires = "tls.key")]
    pub cert: PathBuf,
    /// PEM private key of tls.cert.
    #[arg(id = "tls.key", long = "tls-key", env = "REALSTAT_TLS_KEY", value_name = "PATH", required = false, requires = "tls.cert")]
    pub key: PathBuf,
}

#[rustfmt::skip]
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct KafkaSettings {
    /// Kafka bootstrap servers (unset or empty: the embedded demo broker and simulator).
    #[arg(id = "kafka.brokers", long = "kafka-brokers", env = "REALSTAT_KAFKA_BROKERS", value_name = "STRING")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<String>,
    /// Topic of iSales call events.
    #[arg(id = "kafka.topic", long = "topic", env = "REALSTAT_TOPIC", value_name = "STRING", default_value = "isales.call-events")]
    pub topic: String,
    /// Copy rejected events to this topic, with the reason in headers (unset: none).
    #[arg(id = "kafka.dlq_topic", long = "dlq-topic", env = "REALSTAT_DLQ_TOPIC", value_name = "STRING")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlq_topic: Option<String>,
    /// How often the topic's partition list is re-read.
    #[arg(id = "kafka.metadata_refresh", long = "metadata-refresh", env = "REALSTAT_METADATA_REFRESH", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    #[serde(with = "duration")]
    pub metadata_refresh: Duration,
    /// Extra librdkafka property, key=value, repeatable; in the environment `;`-separated.
    #[arg(id = "kafka.properties", long = "kafka-property", env = "REALSTAT_KAFKA_PROPERTIES", value_name = "KEY=VALUE", value_delimiter = ';', value_parser = parse_property)]
    #[serde(with = "properties")]
    pub properties: Vec<(String, String)>,
}

#[rustfmt::skip]
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSettings {
    /// Where snapshots are written.
    #[arg(id = "snapshot.dir", long = "snapshot-dir", env = "REALSTAT_SNAPSHOT_DIR", value_name = "PATH", default_value = "./data")]
    pub dir: PathBuf,
    /// How often a snapshot is written.
    #[arg(id = "snapshot.interval", long = "snapshot-interval", env = "REALSTAT_SNAPSHOT_INTERVAL", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    #[serde(with = "duration")]
    pub interval: Duration,
    /// Snapshot files kept.
    #[arg(id = "snapshot.keep", long = "snapshot-keep", env = "REALSTAT_SNAPSHOT_KEEP", value_name = "INTEGER", default_value = "3")]
    pub keep: usize,
}

#[rustfmt::skip]
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Keys file (TOML: [[key]] ak, sk or sk_env, vdns); required with Kafka brokers.
    #[arg(id = "auth.keys_file", long = "keys-file", env = "REALSTAT_KEYS_FILE", value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_file: Option<PathBuf>,
    /// Allowed clock skew of signed requests.
    #[arg(id = "auth.allowed_skew", long = "allowed-skew", env = "REALSTAT_ALLOWED_SKEW", value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    #[serde(with = "duration")]
    pub allowed_skew: Duration,
    /// How often the keys file is checked for changes.
    #[arg(id = "auth.keys_poll", long = "keys-poll", env = "REALSTAT_KEYS_POLL", value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    #[serde(with = "duration")]
    pub keys_poll: Duration,
    /// Host names or addresses the API answers to, repeatable; in the environment comma-separated; the port is ignored, IPv6 in brackets. A request whose Host is another: 401 (unset: any host).
    #[arg(id = "auth.allowed_hosts", long = "allowed-host", env = "REALSTAT_ALLOWED_HOSTS", value_name = "STRING", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
    /// Peer whose X-Forwarded-For is believed (the balancer), repeatable; in the environment comma-separated.
    #[arg(id = "auth.trusted_proxies", long = "trusted-proxy", env = "REALSTAT_TRUSTED_PROXIES", value_name = "IP", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,
    /// Failed authentications of one client (its address and the access key it names; the address alone for requests naming none) within lockout_window before it is locked (0: never).
    #[arg(id = "auth.lockout_threshold", long = "lockout-threshold", env = "REALSTAT_LOCKOUT_THRESHOLD", value_name = "INTEGER", default_value = "10")]
    pub lockout_threshold: u32,
    /// The window in which those failures count.
    #[arg(id = "auth.lockout_window", long = "lockout-window", env = "REALSTAT_LOCKOUT_WINDOW", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    #[serde(with = "duration")]
    pub lockout_window: Duration,
    /// How long a locked client stays locked.
    #[arg(id = "auth.lockout_duration", long = "lockout-duration", env = "REALSTAT_LOCKOUT_DURATION", value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    #[serde(with = "duration")]
    pub lockout_duration: Duration,
}

// Protections of the API listener against oversized and slow clients, and the state bounds.
#[rustfmt::skip]
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest request head (names and values of all headers); larger: 431.
    #[arg(id = "limits.max_header_bytes", long = "max-header-bytes", env = "REALSTAT_MAX_HEADER_BYTES", value_name = "INTEGER", default_value = "16384")]
    pub max_header_bytes: usize,
    /// Time to receive a request's head.
    #[arg(id = "limits.request_head_timeout", long = "request-head-timeout", env = "REALSTAT_REQUEST_HEAD_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    #[serde(with = "duration")]
    pub request_head_timeout: Duration,
    /// Time to receive the body once the head is in; slower: 408.
    #[arg(id = "limits.body_timeout", long = "body-timeout", env = "REALSTAT_BODY_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    #[serde(with = "duration")]
    pub body_timeout: Duration,
    /// Idle time before a keep-alive connection is closed.
    #[arg(id = "limits.keep_alive", long = "keep-alive", env = "REALSTAT_KEEP_ALIVE", value_name = "DURATION", default_value = "75s", value_parser = parse_duration)]
    #[serde(with = "duration")]
    pub keep_alive: Duration,
    /// Concurrent connections per worker thread.
    #[arg(id = "limits.max_connections", long = "max-connections", env = "REALSTAT_MAX_CONNECTIONS", value_name = "INTEGER", default_value = "25000")]
    pub max_connections: usize,
    /// Tasks kept in memory at most; events that would start more are refused.
    #[arg(id = "limits.max_tasks", long = "max-tasks", env = "REALSTAT_MAX_TASKS", value_name = "INTEGER", default_value = "50000")]
    pub max_tasks: usize,
    /// Calls kept per task at most; new calls beyond are refused.
    #[arg(id = "limits.max_calls_per_task", long = "max-calls-per-task", env = "REALSTAT_MAX_CALLS_PER_TASK", value_name = "INTEGER", default_value = "1000000")]
    pub max_calls_per_task: usize,
}

// Which tenants this deployment keeps: events of other call centers or VDNs are skipped, and
// queries for them refused. Empty lists keep everything.
#[rustfmt::skip]
#[derive(Debug, Clone, Default, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Keep only these call centers, comma-separated; events of others are skipped and queries for them refused (unset: all).
    #[arg(id = "tenants.cc_ids", long = "cc-ids", env = "REALSTAT_CC_IDS", value_name = "INTEGER", value_delimiter = ',')]
    pub cc_ids: Vec<u16>,
    /// Keep only these VDNs, comma-separated (unset: all).
    #[arg(id = "tenants.vdns", long = "vdns", env = "REALSTAT_VDNS", value_name = "INTEGER", value_delimiter = ',')]
    pub vdns: Vec<u16>,
}

// Live streams (`GET .../realstatistic/stream`): how many may be open.
#[rustfmt::skip]
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct StreamSettings {
    /// Live streams open at once, in total; more: 429.
    #[arg(id = "streams.max_open", long = "max-streams", env = "REALSTAT_MAX_STREAMS", value_name = "INTEGER", default_value = "1000")]
    pub max_open: usize,
    /// Live streams open at once per access key; more: 429.
    #[arg(id = "streams.max_per_key", long = "max-streams-per-key", env = "REALSTAT_MAX_STREAMS_PER_KEY", value_name = "INTEGER", default_value = "100")]
    pub max_per_key: usize,
}

// The iSales call-result callback (docs/callback.md): a listener of its own that writes what
// iSales pushes to the event topic. Off unless callback.listen is set.
#[rustfmt::skip]
#[derive(Debug, Clone, Serialize, Deserialize, Args)]
#[serde(deny_unknown_fields)]
pub struct CallbackSettings {
    /// Address of the iSales call-result callback listener (unset: no callback listener); HTTPS with tls.cert/tls.key like the API.
    #[arg(id = "callback.listen", long = "callback-listen", env = "REALSTAT_CALLBACK_LISTEN", value_name = "ADDRESS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Callback tokens file (TOML: [[token]] value, cc_id, vdns); required with callback.listen, reloaded on change.
    #[arg(id = "callback.tokens_file", long = "callback-tokens-file", env = "REALSTAT_CALLBACK_TOKENS_FILE", value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_file: Option<PathBuf>,
    /// Longest wait for Kafka to acknowledge a push's events; longer: the push is refused (retCode 3, 503) and iSales pushes again.
    #[arg(id = "callback.deadline", long = "callback-deadline", env = "REALSTAT_CALLBACK_DEADLINE", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    #[serde(with = "duration")]
    pub deadline: Duration,
    /// Largest push body; larger: refused whole (retCode 2, 413).
    #[arg(id = "callback.max_body_bytes", long = "callback-max-body-bytes", env = "REALSTAT_CALLBACK_MAX_BODY_BYTES", value_name = "INTEGER", default_value = "1048576")]
    pub max_body_bytes: usize,
    /// Most records in one push; more: refused whole (retCode 2, 413).
    #[arg(id = "callback.max_records", long = "callback-max-records", env = "REALSTAT_CALLBACK_MAX_RECORDS", value_name = "INTEGER", default_value = "1000")]
    pub max_records: usize,
}

impl Default for Settings {
    /// The defaults of the `#[arg]` attributes: the settings of a replica given nothing, whatever
    /// this process's environment says.
    fn default() -> Self {
        let cmd = Settings::augment_args(clap::Command::new("defaults")).mut_args(|a| a.env(None));
        let parsed = cmd
            .try_get_matches_from(["defaults"])
            .map_err(|e| e.to_string())
            .and_then(|m| Settings::from_arg_matches(&m).map_err(|e| e.to_string()));
        match parsed {
            Ok(s) => s,
            // Only a default that does not parse gets here: a bug that every test run shows.
            Err(e) => panic!("the built-in defaults do not parse: {e}"),
        }
    }
}

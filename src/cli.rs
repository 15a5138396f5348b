//! Command-line interface. Every flag of `serve` also reads a `REALSTAT_*` environment variable;
//! both override the config file (see `config/mod.rs`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::config::text::{opt_duration, parse_duration, parse_property};
use crate::config::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "realstat",
    version,
    about = "Real-time statistics of outbound call-center tasks: the CC-CMS realstatistic interface, \
             computed from iSales call events on Kafka.",
    long_about = None,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve`'s flags, for running without a subcommand (`realstat --listen ...`).
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Run the service (the default). Without Kafka brokers configured, starts an embedded
    /// broker and a traffic simulator: a self-contained demo.
    Serve(ServeArgs),
    /// Send a signed realstatistic request and print the response.
    #[cfg(feature = "dev")]
    Query(QueryArgs),
    /// Print the C2 Authorization header for a realstatistic request (for curl).
    Sign(SignArgs),
    /// Produce realistic iSales call events to a Kafka topic.
    #[cfg(feature = "dev")]
    Simulate(SimulateArgs),
}

/// `serve`'s flags and environment variables: the top layers of the configuration.
///
/// Every field mirrors a key of [`crate::config::Settings`] (its clap `id` is that key's dotted
/// path, checked by a test) and is serialized only when given, so figment lays exactly what the
/// operator set over the config file. Environment variables and flags are resolved by clap (a
/// flag wins over its variable).
#[derive(Debug, Args, Default, Clone, Serialize)]
pub struct ServeArgs {
    /// TOML config file; environment and flags override it.
    #[arg(long, env = "REALSTAT_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address of the realstatistic API [default: 0.0.0.0:8080; in the demo 127.0.0.1:8080].
    #[arg(long, env = "REALSTAT_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Address of /metrics, /health/live and /health/ready [default: 0.0.0.0:9090; in the demo
    /// 127.0.0.1:9090].
    #[arg(long, env = "REALSTAT_ADMIN_LISTEN")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<String>,
    /// Call center of requests and events without ccId [default: 1].
    #[arg(long, env = "REALSTAT_DEFAULT_CC_ID")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_cc_id: Option<u16>,
    /// IANA time zone that decides what "today" is [default: Asia/Shanghai].
    #[arg(long, env = "REALSTAT_TIMEZONE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Days of calls kept, today included [default: 2].
    #[arg(long, env = "REALSTAT_RETENTION_DAYS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u16>,
    /// A call without news for this long (event time) leaves waitCount/execCount [default: 24h].
    #[arg(long, env = "REALSTAT_STALE_CALL_TIMEOUT", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_duration::serialize"
    )]
    pub stale_call_timeout: Option<Duration>,
    /// Events stamped further ahead of the wall clock are refused [default: 15m].
    #[arg(long, env = "REALSTAT_MAX_FUTURE_SKEW", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_duration::serialize"
    )]
    pub max_future_skew: Option<Duration>,
    /// Log format [default: text].
    #[arg(long, env = "REALSTAT_LOG_FORMAT", value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// HTTP worker threads [default: one per core].
    #[arg(long, env = "REALSTAT_WORKERS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    #[command(flatten)]
    #[serde(skip_serializing_if = "TlsArgs::is_empty")]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub snapshot: SnapshotArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub tenants: TenantArgs,
    #[command(flatten)]
    pub streams: StreamArgs,
}

#[derive(Debug, Args, Default, Clone, Serialize)]
pub struct TenantArgs {
    /// Keep only these call centers (comma-separated); events of others are skipped and queries
    /// for them refused [default: all].
    #[arg(
        id = "tenants.cc_ids",
        long = "cc-ids",
        value_name = "CC_ID,...",
        env = "REALSTAT_CC_IDS",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cc_ids: Vec<u16>,
    /// Keep only these VDNs (comma-separated) [default: all].
    #[arg(
        id = "tenants.vdns",
        long = "vdns",
        value_name = "VDN,...",
        env = "REALSTAT_VDNS",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vdns: Vec<u16>,
}

#[derive(Debug, Args, Default, Clone, Serialize)]
pub struct StreamArgs {
    /// Live streams open at once, in total; more: 429 [default: 1000].
    #[arg(
        id = "streams.max_open",
        long = "max-streams",
        env = "REALSTAT_MAX_STREAMS"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_open: Option<usize>,
    /// Live streams open at once per access key; more: 429 [default: 100].
    #[arg(
        id = "streams.max_per_key",
        long = "max-streams-per-key",
        env = "REALSTAT_MAX_STREAMS_PER_KEY"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_per_key: Option<usize>,
}

#[derive(Debug, Args, Default, Clone, Serialize)]
pub struct TlsArgs {
    /// PEM certificate chain: serve HTTPS instead of HTTP (with --tls-key).
    #[arg(
        id = "tls.cert",
        value_name = "CERT",
        long = "tls-cert",
        env = "REALSTAT_TLS_CERT",
        requires = "tls.key"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(
        id = "tls.key",
        value_name = "KEY",
        long = "tls-key",
        env = "REALSTAT_TLS_KEY",
        requires = "tls.cert"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
}

impl TlsArgs {
    fn is_empty(&self) -> bool {
        self.cert.is_none() && self.key.is_none()
    }
}

#[derive(Debug, Args, Default, Clone, Serialize)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers. Unset or empty: start the embedded demo broker and simulator.
    #[arg(
        id = "kafka.brokers",
        value_name = "BROKERS",
        long = "kafka-brokers",
        env = "REALSTAT_KAFKA_BROKERS"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<String>,
    /// Topic of iSales call events [default: isales.call-events].
    #[arg(
        id = "kafka.topic",
        value_name = "TOPIC",
        long = "topic",
        env = "REALSTAT_TOPIC"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Copy rejected events to this topic, with the reason in headers.
    #[arg(
        id = "kafka.dlq_topic",
        value_name = "DLQ_TOPIC",
        long = "dlq-topic",
        env = "REALSTAT_DLQ_TOPIC"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlq_topic: Option<String>,
    /// How often the topic's partition list is re-read [default: 30s].
    #[arg(id = "kafka.metadata_refresh", value_name = "METADATA_REFRESH", long = "metadata-refresh", env = "REALSTAT_METADATA_REFRESH", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_duration::serialize"
    )]
    pub metadata_refresh: Option<Duration>,
    /// Extra librdkafka property, key=value, repeatable (e.g. security.protocol=SASL_SSL); in
    /// the environment, separated by ';'.
    #[arg(id = "kafka.properties", long = "kafka-property", value_name = "KEY=VALUE",
          env = "REALSTAT_KAFKA_PROPERTIES", value_delimiter = ';', value_parser = parse_property)]
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "properties")]
    pub properties: Vec<(String, String)>,
}

#[derive(Debug, Args, Default, Clone, Serialize)]
pub struct SnapshotArgs {
    /// Where snapshots are written [default: ./data].
    #[arg(
        id = "snapshot.dir",
        value_name = "DIR",
        long = "snapshot-dir",
        env = "REALSTAT_SNAPSHOT_DIR"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// How often a snapshot is written [default: 30s].
    #[arg(id = "snapshot.interval", value_name = "INTERVAL", long = "snapshot-interval", env = "REALSTAT_SNAPSHOT_INTERVAL", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_duration::serialize"
    )]
    pub interval: Option<Duration>,
    /// Snapshot files kept [default: 3].
    #[arg(
        id = "snapshot.keep",
        value_name = "KEEP",
        long = "snapshot-keep",
        env = "REALSTAT_SNAPSHOT_KEEP"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<usize>,
}

#[derive(Debug, Args, Default, Clone, Serialize)]
pub struct AuthArgs {
    /// Keys file (TOML: [[key]] ak, sk or sk_env, vdns). Required with Kafka brokers.
    #[arg(
        id = "auth.keys_file",
        value_name = "KEYS_FILE",
        long = "keys-file",
        env = "REALSTAT_KEYS_FILE"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_file: Option<PathBuf>,
    /// Allowed clock skew of signed requests [default: 15m].
    #[arg(id = "auth.allowed_skew", value_name = "ALLOWED_SKEW", long = "allowed-skew", env = "REALSTAT_ALLOWED_SKEW", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_duration::serialize"
    )]
    pub allowed_skew: Option<Duration>,
    /// How often the keys file is checked for changes [default: 2s].
    #[arg(id = "auth.keys_poll", value_name = "KEYS_POLL", long = "keys-poll", env = "REALSTAT_KEYS_POLL", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_duration::serialize"
    )]
    pub keys_poll: Option<Duration>,
    /// Failed authentications from one address before it is locked; 0: never [default: 10].
    #[arg(
        id = "auth.lockout_threshold",
        value_name = "LOCKOUT_THRESHOLD",
        long = "lockout-threshold",
        env = "REALSTAT_LOCKOUT_THRESHOLD"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lockout_threshold: Option<u32>,
    /// The window in which those failures count [default: 60s].
    #[arg(id = "auth.lockout_window", value_name = "LOCKOUT_WINDOW", long = "lockout-window", env = "REALSTAT_LOCKOUT_WINDOW", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_duration::serialize"
    )]
    pub lockout_window: Option<Duration>,
    /// How long a locked address stays locked [default: 5m].
    #[arg(id = "auth.lockout_duration", value_name = "LOCKOUT_DURATION", long = "lockout-duration", env = "REALSTAT_LOCKOUT_DURATION", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_duration::serialize"
    )]
    pub lockout_duration: Option<Duration>,
    /// Peer whose X-Forwarded-For is believed (the balancer), repeatable; in the environment,
    /// comma-separated [default: none].
    #[arg(
        id = "auth.trusted_proxies",
        long = "trusted-proxy",
        value_name = "IP",
        env = "REALSTAT_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<IpAddr>,
}

#[derive(Debug, Args, Default, Clone, Serialize)]
pub struct LimitArgs {
    /// Largest request head (names and values of all headers); larger: 431 [default: 16384].
    #[arg(
        id = "limits.max_header_bytes",
        value_name = "MAX_HEADER_BYTES",
        long = "max-header-bytes",
        env = "REALSTAT_MAX_HEADER_BYTES"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_header_bytes: Option<usize>,
    /// Time to receive a request's head [default: 5s].
    #[arg(id = "limits.request_head_timeout", value_name = "REQUEST_HEAD_TIMEOUT", long = "request-head-timeout", env = "REALSTAT_REQUEST_HEAD_TIMEOUT", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_duration::serialize"
    )]
    pub request_head_timeout: Option<Duration>,
    /// Time to receive the body once the head is in; slower: 408 [default: 10s].
    #[arg(id = "limits.body_timeout", value_name = "BODY_TIMEOUT", long = "body-timeout", env = "REALSTAT_BODY_TIMEOUT", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_duration::serialize"
    )]
    pub body_timeout: Option<Duration>,
    /// Idle time before a keep-alive connection is closed [default: 75s].
    #[arg(id = "limits.keep_alive", value_name = "KEEP_ALIVE", long = "keep-alive", env = "REALSTAT_KEEP_ALIVE", value_parser = parse_duration)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_duration::serialize"
    )]
    pub keep_alive: Option<Duration>,
    /// Concurrent connections per worker thread [default: 25000].
    #[arg(
        id = "limits.max_connections",
        value_name = "MAX_CONNECTIONS",
        long = "max-connections",
        env = "REALSTAT_MAX_CONNECTIONS"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Tasks kept in memory at most; events starting more are refused [default: 50000].
    #[arg(
        id = "limits.max_tasks",
        value_name = "MAX_TASKS",
        long = "max-tasks",
        env = "REALSTAT_MAX_TASKS"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tasks: Option<usize>,
    /// Calls kept per task at most; new calls beyond are refused [default: 1000000].
    #[arg(
        id = "limits.max_calls_per_task",
        value_name = "MAX_CALLS_PER_TASK",
        long = "max-calls-per-task",
        env = "REALSTAT_MAX_CALLS_PER_TASK"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_calls_per_task: Option<usize>,
}

/// `key=value` pairs as the table the config file has (`[kafka.properties]`), later pairs winning.
fn properties<S: serde::Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
    let table: std::collections::BTreeMap<&str, &str> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    table.serialize(s)
}

/// What identifies the request to sign: the key and the task.
#[derive(Debug, Args, Clone)]
pub struct RequestArgs {
    /// Access key (AK).
    #[arg(long, env = "REALSTAT_AK")]
    pub ak: String,
    /// Secret key (SK). Prefer the environment variable: flags show up in process lists.
    #[arg(long, env = "REALSTAT_SK", hide_env_values = true)]
    pub sk: String,
    /// Call-center id; omitted from the body when not given.
    #[arg(long)]
    pub cc_id: Option<u16>,
    #[arg(long)]
    pub vdn: u16,
    #[arg(long)]
    pub task_id: String,
}

#[derive(Debug, Args, Clone)]
pub struct QueryArgs {
    /// Base URL of the service (or of the balancer or gateway in front of it): http:// or
    /// https://, optionally with a base path; the API path is appended.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// PEM file of the CA certificates to trust for https:// instead of the public roots.
    #[arg(long, value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify the server's certificate (https://). For tests only.
    #[arg(long, conflicts_with = "ca_cert")]
    pub insecure: bool,
    #[command(flatten)]
    pub request: RequestArgs,
}

#[derive(Debug, Args, Clone)]
pub struct SignArgs {
    /// The Host header value the request will carry (it is signed), e.g. 10.22.26.181:28080.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub host: String,
    #[command(flatten)]
    pub request: RequestArgs,
}

#[derive(Debug, Args, Clone)]
pub struct SimulateArgs {
    #[arg(long, env = "REALSTAT_KAFKA_BROKERS")]
    pub kafka_brokers: String,
    #[arg(long, env = "REALSTAT_TOPIC", default_value = "isales.call-events")]
    pub topic: String,
    /// Extra librdkafka property, key=value, repeatable.
    #[arg(long = "kafka-property", value_name = "KEY=VALUE", value_parser = parse_property)]
    pub kafka_property: Vec<(String, String)>,
    #[arg(long, default_value_t = 1)]
    pub cc_id: u16,
    #[arg(long, default_value_t = 92)]
    pub vdn: u16,
    /// Task ids, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1122104910,1122104911,1122104912"
    )]
    pub tasks: Vec<String>,
    /// New calls per second, over all tasks.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Share of dialed calls that are answered (0..1).
    #[arg(long, default_value_t = 0.6)]
    pub answer_ratio: f64,
    /// Planned calls per task for the day.
    #[arg(long, default_value_t = 2000)]
    pub planned: u64,
    /// Share of events sent twice, as a redelivering producer would (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub duplicates: f64,
    /// Stop after this many calls have ended.
    #[arg(long)]
    pub max_calls: Option<u64>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The request body of `query` and `sign`, fields in the vendor's order: ccId (only when
/// given), vdn, taskId (as a string: it may exceed 64 bits).
pub fn request_body(cc_id: Option<u16>, vdn: u16, task_id: &str) -> String {
    let task = serde_json::Value::String(task_id.to_owned());
    match cc_id {
        Some(cc) => format!(r#"{{"ccId":{cc},"vdn":{vdn},"taskId":{task}}}"#),
        None => format!(r#"{{"vdn":{vdn},"taskId":{task}}}"#),
    }
}

/// Now, as the signature's timestamp.
pub fn signing_timestamp() -> String {
    crate::auth::c2::format_timestamp(crate::clock::now_unix())
}

/// `realstat sign`: prints the Authorization header of a request for `args.host`.
pub fn sign(args: SignArgs) -> std::process::ExitCode {
    let r = &args.request;
    let body = request_body(r.cc_id, r.vdn, &r.task_id);
    let authorization = crate::auth::c2::sign(
        &r.ak,
        r.sk.as_bytes(),
        &signing_timestamp(),
        &crate::auth::c2::ClientRequest {
            method: "POST",
            path: crate::api::PATH,
            raw_query: None,
            headers: &[("host", args.host.as_bytes())],
            body: body.as_bytes(),
        },
    );
    crate::telemetry::out(authorization);
    crate::telemetry::err(format_args!(
        "# signed for Host {host} and exactly this body; for example:\n\
         # curl -X POST http://{host}{path} -H 'Content-Type: application/json;charset=UTF-8' \
         -H \"Authorization: $(realstat sign ...)\" -d '{body}'",
        host = args.host,
        path = crate::api::PATH,
    ));
    std::process::ExitCode::SUCCESS
}

//! Command-line interface. Every flag of `serve` also reads a `REALSTAT_*` environment variable;
//! both override the config file (see `config.rs`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
    Query(QueryArgs),
    /// Print the C2 Authorization header for a realstatistic request (for curl).
    Sign(SignArgs),
    /// Produce realistic iSales call events to a Kafka topic.
    Simulate(SimulateArgs),
}

#[derive(Debug, Args, Default, Clone)]
pub struct ServeArgs {
    /// TOML config file; flags and environment override it.
    #[arg(long, env = "REALSTAT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the realstatistic API [default: 0.0.0.0:8080].
    #[arg(long, env = "REALSTAT_LISTEN")]
    pub listen: Option<String>,
    /// Address of /metrics, /health/live and /health/ready [default: 0.0.0.0:9090].
    #[arg(long, env = "REALSTAT_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// PEM certificate chain: serve HTTPS instead of HTTP (with --tls-key).
    #[arg(long, env = "REALSTAT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "REALSTAT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Kafka bootstrap servers. Unset: start the embedded demo broker and simulator.
    #[arg(long, env = "REALSTAT_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Topic of iSales call events [default: isales.call-events].
    #[arg(long, env = "REALSTAT_TOPIC")]
    pub topic: Option<String>,
    /// Extra librdkafka property, key=value, repeatable (e.g. security.protocol=SASL_SSL).
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_property: Vec<String>,
    /// Copy rejected events to this topic, with the reason in headers.
    #[arg(long, env = "REALSTAT_DLQ_TOPIC")]
    pub dlq_topic: Option<String>,
    /// Keys file (TOML: [[key]] ak, sk or sk_env, vdns). Required with Kafka brokers.
    #[arg(long, env = "REALSTAT_KEYS_FILE")]
    pub keys_file: Option<PathBuf>,
    /// IANA time zone that decides what "today" is [default: Asia/Shanghai].
    #[arg(long, env = "REALSTAT_TIMEZONE")]
    pub timezone: Option<String>,
    /// Call center of requests and events without ccId [default: 1].
    #[arg(long, env = "REALSTAT_DEFAULT_CC_ID")]
    pub default_cc_id: Option<u16>,
    /// Days of calls kept, today included [default: 2].
    #[arg(long, env = "REALSTAT_RETENTION_DAYS")]
    pub retention_days: Option<u16>,
    /// A call without news for this long (event time) leaves waitCount/execCount [default: 24h].
    #[arg(long, env = "REALSTAT_STALE_CALL_TIMEOUT")]
    pub stale_call_timeout: Option<String>,
    /// Where snapshots are written [default: ./data].
    #[arg(long, env = "REALSTAT_SNAPSHOT_DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// How often a snapshot is written [default: 30s].
    #[arg(long, env = "REALSTAT_SNAPSHOT_INTERVAL")]
    pub snapshot_interval: Option<String>,
    /// Allowed clock skew of signed requests [default: 15m].
    #[arg(long, env = "REALSTAT_ALLOWED_SKEW")]
    pub allowed_skew: Option<String>,
    /// Failed authentications from one address before it is locked [default: 10].
    #[arg(long, env = "REALSTAT_LOCKOUT_THRESHOLD")]
    pub lockout_threshold: Option<u32>,
    /// How long a locked address stays locked [default: 5m].
    #[arg(long, env = "REALSTAT_LOCKOUT_DURATION")]
    pub lockout_duration: Option<String>,
    /// Log format [default: text].
    #[arg(long, env = "REALSTAT_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// HTTP worker threads [default: one per core].
    #[arg(long, env = "REALSTAT_WORKERS")]
    pub workers: Option<usize>,
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
    /// Base URL of the service (or of the balancer in front of it).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
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
    #[arg(long = "kafka-property", value_name = "KEY=VALUE")]
    pub kafka_property: Vec<String>,
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

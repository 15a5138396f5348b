//! Command-line interface. `serve`'s flags are the settings of [`crate::config::Settings`], each
//! also read from a `REALSTAT_*` environment variable; both override the config file. The other
//! commands are tools: `query` and `sign` (a signed request), `simulate` (traffic), `config
//! schema` and `metrics list` (what this binary understands and exports, for tools and docs).

pub mod schema;

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand};

use crate::config::text::parse_property;
use crate::config::{Overrides, Settings};

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
    #[cfg(feature = "dev")]
    Sign(SignArgs),
    /// Produce realistic iSales call events to a Kafka topic.
    #[cfg(feature = "dev")]
    Simulate(SimulateArgs),
    /// The configuration schema.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The admin listener's routes and metrics.
    #[command(subcommand)]
    Metrics(MetricsCommand),
}

/// `serve`'s command line: the config file and every setting (flags, `REALSTAT_*` variables).
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// TOML config file; environment and flags override it.
    #[arg(long, env = "REALSTAT_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
}

impl ServeArgs {
    /// The settings the operator gave in the environment or as flags (`matches` are those of
    /// the command these args were parsed from), for [`Settings::load`] to lay over the file.
    pub fn overrides(&self, matches: &ArgMatches) -> Overrides {
        let schema = Settings::augment_args(clap::Command::new("serve"));
        let given = schema
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .filter(|id| {
                matches!(
                    matches.value_source(id),
                    Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                )
            });
        Overrides::pick(&self.settings, given)
    }
}

/// `realstat config ...`
#[derive(Debug, Subcommand, Clone)]
pub enum ConfigCommand {
    /// Print every setting: its config file key, environment variable, flag, type, default and
    /// description (and the keys file's fields, and every command's flags).
    Schema {
        /// `json` for tools, `markdown` for the README's table.
        #[arg(long, value_enum, default_value = "json")]
        format: SchemaFormat,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaFormat {
    Json,
    Markdown,
}

/// `realstat metrics ...`
#[derive(Debug, Subcommand, Clone)]
pub enum MetricsCommand {
    /// Print what the admin listener serves as JSON: its routes, and every metric with its
    /// type, label names and help text.
    List,
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
    #[arg(
        long,
        env = "REALSTAT_KAFKA_BROKERS",
        required_unless_present = "callback"
    )]
    pub kafka_brokers: Option<String>,
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
    /// Push finished calls to this iSales callback URL (http(s)://host:port/isales/callresult/TOKEN)
    /// in the vendor's format, with its retries, instead of producing events to Kafka.
    #[arg(long, value_name = "URL")]
    pub callback: Option<String>,
    /// With --callback: the time zone callTimeStr is written in (the tenant's).
    #[arg(long, default_value = "Asia/Shanghai")]
    pub timezone: String,
    /// With --callback: the wait before pushing a twice-refused push again (iSales: 10 minutes).
    #[arg(long, default_value = "10m", value_parser = crate::config::text::parse_duration)]
    pub callback_retry_delay: std::time::Duration,
}

#[cfg(test)]
mod tests;

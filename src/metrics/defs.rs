//! Every metric the service exports: name, type, label names and help text, in one table. The
//! registry is built from it ([`super::Metrics::new`], [`super::process`]) and `realstat
//! metrics list` prints it ([`catalogue`]), so what an operator reads and what a scrape shows
//! cannot differ (a unit test compares them). docs/operations.md has the same list with the
//! label values and their meaning.

use serde::Serialize;

/// The Prometheus type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn def(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
) -> Def {
    Def {
        name,
        kind,
        labels,
        help,
    }
}

use Kind::{Counter, Gauge, Histogram};

pub const EVENTS_CONSUMED: Def = def(
    "realstat_events_consumed_total",
    Counter,
    &[],
    "Messages read from the event topic.",
);
pub const EVENTS_APPLIED: Def = def(
    "realstat_events_applied_total",
    Counter,
    &["effect"],
    "Valid events folded, by effect (changed, unchanged).",
);
pub const EVENTS_REJECTED: Def = def(
    "realstat_events_rejected_total",
    Counter,
    &["reason"],
    "Events skipped, by reason.",
);
pub const EVENTS_FILTERED: Def = def(
    "realstat_events_filtered_total",
    Counter,
    &[],
    "Events of call centers or VDNs this deployment does not keep (skipped).",
);
pub const PARTITION_NEXT_OFFSET: Def = def(
    "realstat_partition_next_offset",
    Gauge,
    &["partition"],
    "Next offset to apply, per partition.",
);
pub const PARTITION_END_OFFSET: Def = def(
    "realstat_partition_end_offset",
    Gauge,
    &["partition"],
    "Last known end (high watermark) offset, per partition.",
);
pub const PARTITION_LAG: Def = def(
    "realstat_partition_lag",
    Gauge,
    &["partition"],
    "End offset minus next offset to apply, per partition (messages).",
);
pub const EVENT_VISIBLE_DELAY: Def = def(
    "realstat_event_visible_delay_seconds",
    Histogram,
    &[],
    "Delay from an event's ts to the moment it is visible to queries.",
);
pub const FOLD_BATCH_DURATION: Def = def(
    "realstat_fold_batch_duration_seconds",
    Histogram,
    &[],
    "Time to decode and fold one batch of messages.",
);
pub const REQUESTS: Def = def(
    "realstat_requests_total",
    Counter,
    &["status", "code"],
    "realstatistic requests by HTTP status and resultCode.",
);
pub const REQUEST_DURATION: Def = def(
    "realstat_request_duration_seconds",
    Histogram,
    &["code"],
    "realstatistic request latency, by resultCode.",
);
pub const AUTH_FAILURES: Def = def(
    "realstat_auth_failures_total",
    Counter,
    &["category"],
    "Failed authentications by category.",
);
pub const TASKS_TRACKED: Def = def("realstat_tasks_tracked", Gauge, &[], "Tasks in memory.");
pub const CALLS_TRACKED: Def = def("realstat_calls_tracked", Gauge, &[], "Calls in memory.");
pub const CALLS_EXPIRED: Def = def(
    "realstat_calls_expired_total",
    Counter,
    &[],
    "Calls taken out of waitCount/execCount for having no news too long.",
);
pub const READY: Def = def(
    "realstat_ready",
    Gauge,
    &[],
    "1 when caught up with the log and serving, else 0.",
);
pub const CONSUMER_ERRORS: Def = def(
    "realstat_consumer_errors_total",
    Counter,
    &["kind"],
    "Errors reported by the Kafka consumer, by kind.",
);
pub const SNAPSHOT_AGE: Def = def(
    "realstat_snapshot_age_seconds",
    Gauge,
    &[],
    "Seconds since the last snapshot was written (or loaded).",
);
pub const SNAPSHOT_DURATION: Def = def(
    "realstat_snapshot_duration_seconds",
    Histogram,
    &[],
    "Time to write one snapshot.",
);
pub const SNAPSHOT_SIZE: Def = def(
    "realstat_snapshot_size_bytes",
    Gauge,
    &[],
    "Size of the last snapshot written.",
);
pub const SNAPSHOT_FAILURES: Def = def(
    "realstat_snapshot_failures_total",
    Counter,
    &[],
    "Snapshots that could not be written.",
);
pub const DEAD_LETTER_FAILURES: Def = def(
    "realstat_dead_letter_failures_total",
    Counter,
    &[],
    "Rejected events that could not be queued to the dead-letter topic.",
);
pub const KEYS_RELOADS: Def = def(
    "realstat_keys_reloads_total",
    Counter,
    &["result"],
    "Keys file reloads (file changed or SIGHUP), by result (ok, rejected).",
);
pub const KEYS_LOADED: Def = def("realstat_keys_loaded", Gauge, &[], "Access keys in force.");
pub const STREAMS_OPEN: Def = def(
    "realstat_streams_open",
    Gauge,
    &[],
    "Live streams open now.",
);
pub const STREAMS_ENDED: Def = def(
    "realstat_streams_ended_total",
    Counter,
    &["reason"],
    "Live streams ended, by reason (client, slow_reader, key_revoked, shutdown).",
);
pub const BUILD_INFO: Def = def(
    "realstat_build_info",
    Gauge,
    &["version", "git"],
    "Build of the running binary.",
);
pub const CALLBACK_PUSHES: Def = def(
    "realstat_callback_pushes_total",
    Counter,
    &["outcome"],
    "iSales call-result pushes answered, by outcome (accepted, malformed, too_large, body_timeout, unknown_token, locked, not_stored).",
);
pub const CALLBACK_RECORDS: Def = def(
    "realstat_callback_records_total",
    Counter,
    &["outcome"],
    "Call-result records of parsed pushes, by outcome (written, invalid, not_stored).",
);
pub const CALLBACK_INVALID: Def = def(
    "realstat_callback_invalid_records_total",
    Counter,
    &["reason"],
    "Call-result records refused (dead-lettered), by reason.",
);
pub const CALLBACK_PRODUCE: Def = def(
    "realstat_callback_produce_seconds",
    Histogram,
    &[],
    "Time from a push's events handed to Kafka to all acknowledged (or refused).",
);
pub const CALLBACK_TOKENS: Def = def(
    "realstat_callback_tokens_loaded",
    Gauge,
    &[],
    "Callback tokens in force.",
);
pub const CALLBACK_TOKENS_RELOADS: Def = def(
    "realstat_callback_tokens_reloads_total",
    Counter,
    &["result"],
    "Reloads of the callback tokens file, by result (ok, rejected).",
);

pub const EVENTS_LOST: Def = def(
    "realstat_events_lost_total",
    Counter,
    &["partition"],
    "Offsets the log no longer held when this replica needed them (deleted unread), per partition.",
);
pub const LOG_RESETS: Def = def(
    "realstat_log_resets_total",
    Counter,
    &["reason"],
    "Times a partition's position fell outside its log and was reset, by reason (truncated, recreated).",
);
pub const VIEW_AGE: Def = def(
    "realstat_view_age_seconds",
    Gauge,
    &[],
    "Time since the replica last confirmed it had read up to the log end.",
);

/// The service's own metrics, in the order they are listed.
pub const SERVICE: &[Def] = &[
    EVENTS_CONSUMED,
    EVENTS_APPLIED,
    EVENTS_REJECTED,
    EVENTS_FILTERED,
    PARTITION_NEXT_OFFSET,
    PARTITION_END_OFFSET,
    PARTITION_LAG,
    EVENT_VISIBLE_DELAY,
    FOLD_BATCH_DURATION,
    REQUESTS,
    REQUEST_DURATION,
    AUTH_FAILURES,
    TASKS_TRACKED,
    CALLS_TRACKED,
    CALLS_EXPIRED,
    READY,
    CONSUMER_ERRORS,
    SNAPSHOT_AGE,
    SNAPSHOT_DURATION,
    SNAPSHOT_SIZE,
    SNAPSHOT_FAILURES,
    DEAD_LETTER_FAILURES,
    KEYS_RELOADS,
    KEYS_LOADED,
    STREAMS_OPEN,
    STREAMS_ENDED,
    CALLBACK_PUSHES,
    CALLBACK_RECORDS,
    CALLBACK_INVALID,
    CALLBACK_PRODUCE,
    CALLBACK_TOKENS,
    CALLBACK_TOKENS_RELOADS,
    BUILD_INFO,
    EVENTS_LOST,
    LOG_RESETS,
    VIEW_AGE,
];

// The process's numbers, under the names every Prometheus client library uses (read from /proc,
// so Linux only: see `process`).
pub const PROCESS_CPU_SECONDS: Def = def(
    "process_cpu_seconds_total",
    Counter,
    &[],
    "Total user and system CPU time spent in seconds.",
);
pub const PROCESS_OPEN_FDS: Def = def(
    "process_open_fds",
    Gauge,
    &[],
    "Number of open file descriptors.",
);
pub const PROCESS_MAX_FDS: Def = def(
    "process_max_fds",
    Gauge,
    &[],
    "Maximum number of open file descriptors.",
);
pub const PROCESS_VIRTUAL_MEMORY: Def = def(
    "process_virtual_memory_bytes",
    Gauge,
    &[],
    "Virtual memory size in bytes.",
);
pub const PROCESS_RESIDENT_MEMORY: Def = def(
    "process_resident_memory_bytes",
    Gauge,
    &[],
    "Resident memory size in bytes.",
);
pub const PROCESS_START_TIME: Def = def(
    "process_start_time_seconds",
    Gauge,
    &[],
    "Start time of the process since unix epoch in seconds.",
);
pub const PROCESS_THREADS: Def = def(
    "process_threads",
    Gauge,
    &[],
    "Number of OS threads in the process.",
);

pub const PROCESS: &[Def] = &[
    PROCESS_CPU_SECONDS,
    PROCESS_OPEN_FDS,
    PROCESS_MAX_FDS,
    PROCESS_VIRTUAL_MEMORY,
    PROCESS_RESIDENT_MEMORY,
    PROCESS_START_TIME,
    PROCESS_THREADS,
];

pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
pub const DELAY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
pub const SNAPSHOT_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A metric as `realstat metrics list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct MetricInfo {
    pub name: &'static str,
    /// `counter`, `gauge` or `histogram`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub labels: Vec<&'static str>,
    pub help: &'static str,
}

impl From<&Def> for MetricInfo {
    fn from(d: &Def) -> Self {
        MetricInfo {
            name: d.name,
            kind: d.kind.as_str(),
            labels: d.labels.to_vec(),
            help: d.help,
        }
    }
}

/// Every metric this build exports: the service's, then the process's (on Linux, where they
/// are read).
pub fn catalogue() -> Vec<MetricInfo> {
    let process: &[Def] = if cfg!(target_os = "linux") {
        PROCESS
    } else {
        &[]
    };
    SERVICE
        .iter()
        .chain(process)
        .map(MetricInfo::from)
        .collect()
}

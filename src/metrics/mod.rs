//! Prometheus metrics. One registry per service instance (not the global default), so tests can
//! run several instances in one process and read each one's numbers.
//!
//! Label values come from closed sets only (reasons, categories, result codes, partitions): never
//! a task, an AK or anything else a client chooses.

use prometheus::local::{LocalHistogram, LocalIntCounter};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::events::Rejection;

#[cfg(target_os = "linux")]
mod process;

pub struct Metrics {
    registry: Registry,
    pub events_consumed: IntCounter,
    /// Valid events folded, by whether they changed the state (`changed`) or not (`unchanged`:
    /// duplicates, redeliveries, states below the call's current one).
    pub events_applied: IntCounterVec,
    pub events_rejected: IntCounterVec,
    /// Events of tenants this deployment does not keep (`tenants.*`): skipped, not errors.
    pub events_filtered: IntCounter,
    pub partition_next_offset: IntGaugeVec,
    pub partition_end_offset: IntGaugeVec,
    pub partition_lag: IntGaugeVec,
    pub event_visible_delay: Histogram,
    pub fold_batch_duration: Histogram,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    /// The series of the success answer (200, `0100000`), by far the most frequent, resolved
    /// once: looking a labelled series up costs a lock and a hash per request.
    answered_ok: (IntCounter, Histogram),
    pub auth_failures: IntCounterVec,
    pub tasks_tracked: IntGauge,
    pub calls_tracked: IntGauge,
    pub calls_expired: IntCounter,
    pub ready: IntGauge,
    pub consumer_errors: IntCounterVec,
    pub snapshot_age: prometheus::Gauge,
    pub snapshot_duration: Histogram,
    pub snapshot_size: IntGauge,
    pub snapshot_failures: IntCounter,
    pub dead_letter_failures: IntCounter,
    /// Keys file reloads, by `result` (`ok`, `rejected`): use [`Metrics::keys_reloaded`] and
    /// [`Metrics::keys_rejected`].
    pub keys_reloads: IntCounterVec,
    /// Access keys in force: [`Metrics::keys_in_force`].
    pub keys_loaded: IntGauge,
    /// Live streams open now.
    pub streams_open: IntGauge,
    /// Live streams ended, by reason (`StreamEnd::label`).
    pub streams_ended: IntCounterVec,
    /// When the last snapshot was written or restored (ms since the epoch; 0: never). Turned
    /// into `realstat_snapshot_age_seconds` at scrape time.
    pub snapshot_last_ms: std::sync::atomic::AtomicI64,
}

/// What went wrong in the Kafka client, the `kind` of `realstat_consumer_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerError {
    Metadata,
    Assign,
    Watermarks,
    Poll,
}

impl ConsumerError {
    const ALL: [ConsumerError; 4] = [
        ConsumerError::Metadata,
        ConsumerError::Assign,
        ConsumerError::Watermarks,
        ConsumerError::Poll,
    ];

    fn label(self) -> &'static str {
        match self {
            ConsumerError::Metadata => "metadata",
            ConsumerError::Assign => "assign",
            ConsumerError::Watermarks => "watermarks",
            ConsumerError::Poll => "poll",
        }
    }
}

/// Why a request was refused before it was answered, the `category` of
/// `realstat_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefusal {
    /// The signature check failed (missing, malformed, expired, unknown key, mismatch).
    Signature(crate::auth::AuthError),
    /// The client's address is locked out.
    Locked,
    /// A valid key without the right to read the requested VDN or call center.
    Forbidden,
}

impl AuthRefusal {
    fn label(self) -> &'static str {
        match self {
            AuthRefusal::Signature(e) => e.category(),
            AuthRefusal::Locked => "locked",
            AuthRefusal::Forbidden => "forbidden",
        }
    }
}

/// The `result` values of `realstat_keys_reloads_total`.
const KEYS_OK: &str = "ok";
const KEYS_REJECTED: &str = "rejected";

/// Every metric's name and help text: the list an operator reads (docs/operations.md has the
/// same one with labels and meaning).
mod defs {
    pub type Def = (&'static str, &'static str);
    pub const EVENTS_CONSUMED: Def = (
        "realstat_events_consumed_total",
        "Messages read from the event topic.",
    );
    pub const EVENTS_APPLIED: Def = (
        "realstat_events_applied_total",
        "Valid events folded, by effect (changed, unchanged).",
    );
    pub const EVENTS_REJECTED: Def = (
        "realstat_events_rejected_total",
        "Events skipped, by reason.",
    );
    pub const EVENTS_FILTERED: Def = (
        "realstat_events_filtered_total",
        "Events of call centers or VDNs this deployment does not keep (skipped).",
    );
    pub const PARTITION_NEXT_OFFSET: Def = (
        "realstat_partition_next_offset",
        "Next offset to apply, per partition.",
    );
    pub const PARTITION_END_OFFSET: Def = (
        "realstat_partition_end_offset",
        "Last known end (high watermark) offset, per partition.",
    );
    pub const PARTITION_LAG: Def = (
        "realstat_partition_lag",
        "End offset minus next offset to apply, per partition (messages).",
    );
    pub const EVENT_VISIBLE_DELAY: Def = (
        "realstat_event_visible_delay_seconds",
        "Delay from an event's ts to the moment it is visible to queries.",
    );
    pub const FOLD_BATCH_DURATION: Def = (
        "realstat_fold_batch_duration_seconds",
        "Time to decode and fold one batch of messages.",
    );
    pub const REQUESTS: Def = (
        "realstat_requests_total",
        "realstatistic requests by HTTP status and resultCode.",
    );
    pub const REQUEST_DURATION: Def = (
        "realstat_request_duration_seconds",
        "realstatistic request latency, by resultCode.",
    );
    pub const AUTH_FAILURES: Def = (
        "realstat_auth_failures_total",
        "Failed authentications by category.",
    );
    pub const TASKS_TRACKED: Def = ("realstat_tasks_tracked", "Tasks in memory.");
    pub const CALLS_TRACKED: Def = ("realstat_calls_tracked", "Calls in memory.");
    pub const CALLS_EXPIRED: Def = (
        "realstat_calls_expired_total",
        "Calls taken out of waitCount/execCount for having no news too long.",
    );
    pub const READY: Def = (
        "realstat_ready",
        "1 when caught up with the log and serving, else 0.",
    );
    pub const CONSUMER_ERRORS: Def = (
        "realstat_consumer_errors_total",
        "Errors reported by the Kafka consumer, by kind.",
    );
    pub const SNAPSHOT_AGE: Def = (
        "realstat_snapshot_age_seconds",
        "Seconds since the last snapshot was written (or loaded).",
    );
    pub const SNAPSHOT_DURATION: Def = (
        "realstat_snapshot_duration_seconds",
        "Time to write one snapshot.",
    );
    pub const SNAPSHOT_SIZE: Def = (
        "realstat_snapshot_size_bytes",
        "Size of the last snapshot written.",
    );
    pub const SNAPSHOT_FAILURES: Def = (
        "realstat_snapshot_failures_total",
        "Snapshots that could not be written.",
    );
    pub const DEAD_LETTER_FAILURES: Def = (
        "realstat_dead_letter_failures_total",
        "Rejected events that could not be queued to the dead-letter topic.",
    );
    pub const KEYS_RELOADS: Def = (
        "realstat_keys_reloads_total",
        "Keys file reloads (file changed or SIGHUP), by result (ok, rejected).",
    );
    pub const KEYS_LOADED: Def = ("realstat_keys_loaded", "Access keys in force.");
    pub const STREAMS_OPEN: Def = ("realstat_streams_open", "Live streams open now.");
    pub const STREAMS_ENDED: Def = (
        "realstat_streams_ended_total",
        "Live streams ended, by reason (client, slow_reader, key_revoked, shutdown).",
    );
    pub const BUILD_INFO: Def = ("realstat_build_info", "Build of the running binary.");

    pub const LATENCY_BUCKETS: &[f64] = &[
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
    ];
    pub const DELAY_BUCKETS: &[f64] = &[
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ];
    pub const SNAPSHOT_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
}

/// Registers a collector and hands it back.
fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: prometheus::Result<C>,
) -> C {
    let c = collector.expect("valid metric definition");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric name");
    c
}

fn counter(registry: &Registry, (name, help): defs::Def) -> IntCounter {
    register(registry, IntCounter::new(name, help))
}

fn counter_vec(registry: &Registry, (name, help): defs::Def, labels: &[&str]) -> IntCounterVec {
    register(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

fn gauge(registry: &Registry, (name, help): defs::Def) -> IntGauge {
    register(registry, IntGauge::new(name, help))
}

fn gauge_vec(registry: &Registry, (name, help): defs::Def, labels: &[&str]) -> IntGaugeVec {
    register(registry, IntGaugeVec::new(Opts::new(name, help), labels))
}

fn histogram(registry: &Registry, (name, help): defs::Def, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(registry, Histogram::with_opts(opts))
}

fn histogram_vec(
    registry: &Registry,
    (name, help): defs::Def,
    buckets: &[f64],
    labels: &[&str],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(registry, HistogramVec::new(opts, labels))
}

impl Metrics {
    /// Builds and registers every metric (names and help texts: the `defs` table). The
    /// definitions are constants, so registration can only fail on a programming error, caught
    /// by the tests below.
    pub fn new() -> Self {
        use defs::*;
        let r = Registry::new();
        let requests = counter_vec(&r, REQUESTS, &["status", "code"]);
        let request_duration = histogram_vec(&r, REQUEST_DURATION, LATENCY_BUCKETS, &["code"]);
        let m = Metrics {
            events_consumed: counter(&r, EVENTS_CONSUMED),
            events_applied: counter_vec(&r, EVENTS_APPLIED, &["effect"]),
            events_rejected: counter_vec(&r, EVENTS_REJECTED, &["reason"]),
            events_filtered: counter(&r, EVENTS_FILTERED),
            partition_next_offset: gauge_vec(&r, PARTITION_NEXT_OFFSET, &["partition"]),
            partition_end_offset: gauge_vec(&r, PARTITION_END_OFFSET, &["partition"]),
            partition_lag: gauge_vec(&r, PARTITION_LAG, &["partition"]),
            event_visible_delay: histogram(&r, EVENT_VISIBLE_DELAY, DELAY_BUCKETS),
            fold_batch_duration: histogram(&r, FOLD_BATCH_DURATION, LATENCY_BUCKETS),
            answered_ok: (
                requests.with_label_values(&["200", SUCCESS_CODE]),
                request_duration.with_label_values(&[SUCCESS_CODE]),
            ),
            requests,
            request_duration,
            auth_failures: counter_vec(&r, AUTH_FAILURES, &["category"]),
            tasks_tracked: gauge(&r, TASKS_TRACKED),
            calls_tracked: gauge(&r, CALLS_TRACKED),
            calls_expired: counter(&r, CALLS_EXPIRED),
            ready: gauge(&r, READY),
            consumer_errors: counter_vec(&r, CONSUMER_ERRORS, &["kind"]),
            snapshot_age: register(&r, prometheus::Gauge::new(SNAPSHOT_AGE.0, SNAPSHOT_AGE.1)),
            snapshot_duration: histogram(&r, SNAPSHOT_DURATION, SNAPSHOT_BUCKETS),
            snapshot_size: gauge(&r, SNAPSHOT_SIZE),
            snapshot_failures: counter(&r, SNAPSHOT_FAILURES),
            dead_letter_failures: counter(&r, DEAD_LETTER_FAILURES),
            keys_reloads: counter_vec(&r, KEYS_RELOADS, &["result"]),
            keys_loaded: gauge(&r, KEYS_LOADED),
            streams_open: gauge(&r, STREAMS_OPEN),
            streams_ended: counter_vec(&r, STREAMS_ENDED, &["reason"]),
            snapshot_last_ms: std::sync::atomic::AtomicI64::new(0),
            registry: r,
        };
        let build = gauge_vec(&m.registry, BUILD_INFO, &["version", "git"]);
        let git = option_env!("REALSTAT_GIT_HASH").unwrap_or("unknown");
        build
            .with_label_values(&[env!("CARGO_PKG_VERSION"), git])
            .set(1);
        // The process's own numbers (process_resident_memory_bytes, process_cpu_seconds_total,
        // process_open_fds, ...), read from /proc at scrape time.
        #[cfg(target_os = "linux")]
        m.registry
            .register(Box::new(
                process::ProcessCollector::new().expect("valid process metrics"),
            ))
            .expect("unique metric name");
        m.create_closed_series();
        m
    }

    /// Creates every series of a closed label set up front, so dashboards see zeros rather than
    /// nothing.
    fn create_closed_series(&self) {
        for r in Rejection::ALL {
            self.events_rejected.with_label_values(&[r.label()]);
        }
        for kind in ConsumerError::ALL {
            self.consumer_errors.with_label_values(&[kind.label()]);
        }
        for reason in ["client", "slow_reader", "key_revoked", "shutdown"] {
            self.streams_ended.with_label_values(&[reason]);
        }
        for effect in ["changed", "unchanged"] {
            self.events_applied.with_label_values(&[effect]);
        }
        for result in [KEYS_OK, KEYS_REJECTED] {
            self.keys_reloads.with_label_values(&[result]);
        }
    }

    /// The keys in force now: at start and after every reload.
    pub fn keys_in_force(&self, count: usize) {
        self.keys_loaded
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A reload swapped in a new key set of `count` keys.
    pub fn keys_reloaded(&self, count: usize) {
        self.keys_reloads.with_label_values(&[KEYS_OK]).inc();
        self.keys_in_force(count);
    }

    /// A reload was refused (unreadable or invalid file); the previous keys stay in force.
    pub fn keys_rejected(&self) {
        self.keys_reloads.with_label_values(&[KEYS_REJECTED]).inc();
    }

    pub fn consumer_error(&self, kind: ConsumerError) {
        self.consumer_errors
            .with_label_values(&[kind.label()])
            .inc();
    }

    pub fn auth_refused(&self, why: AuthRefusal) {
        self.auth_failures.with_label_values(&[why.label()]).inc();
    }

    /// One answered realstatistic request.
    pub fn request_answered(&self, status: u16, code: &'static str, seconds: f64) {
        if status == 200 && code == SUCCESS_CODE {
            self.answered_ok.0.inc();
            self.answered_ok.1.observe(seconds);
            return;
        }
        self.requests
            .with_label_values(&[status_label(status), code])
            .inc();
        self.request_duration
            .with_label_values(&[code])
            .observe(seconds);
    }

    /// The replica's position in one partition, the partition's end, and so its lag. The one
    /// place lag is computed: messages below the log start (`low`) are gone, not behind.
    pub fn partition_progress(&self, partition: i32, next: Option<i64>, low: i64, end: i64) {
        let label = partition.to_string();
        let next = next.unwrap_or(low).max(low);
        self.partition_next_offset
            .with_label_values(&[&label])
            .set(next);
        self.partition_end_offset
            .with_label_values(&[&label])
            .set(end);
        self.partition_lag
            .with_label_values(&[&label])
            .set((end - next).max(0));
    }

    pub fn snapshot_written(&self, bytes: usize, seconds: f64, at_ms: i64) {
        self.snapshot_duration.observe(seconds);
        self.snapshot_size
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.snapshot_taken_at(at_ms);
    }

    /// A snapshot written or restored at `at_ms` (ms since the epoch): the age starts there.
    pub fn snapshot_taken_at(&self, at_ms: i64) {
        self.snapshot_last_ms
            .store(at_ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

/// The result code of a success answer (api.md), the label of `answered_ok`.
const SUCCESS_CODE: &str = "0100000";

/// The status label: a fixed string per known status, so the hot path does not allocate.
fn status_label(status: u16) -> &'static str {
    match status {
        200 => "200",
        401 => "401",
        403 => "403",
        405 => "405",
        408 => "408",
        413 => "413",
        431 => "431",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

/// The ingest loop's counters, resolved once (looking a labelled series up costs a lock and a
/// hash per call) and local to the loop's thread: counted in plain memory, added to the shared
/// series by [`IngestCounters::flush`] once per batch, so no event pays for an atomic.
pub struct IngestCounters {
    pub consumed: LocalIntCounter,
    pub changed: LocalIntCounter,
    pub unchanged: LocalIntCounter,
    pub filtered: LocalIntCounter,
    /// Indexed like `Rejection::ALL`.
    rejected: Vec<LocalIntCounter>,
    pub visible_delay: LocalHistogram,
}

impl IngestCounters {
    pub fn rejected(&self, reason: Rejection) {
        if let Some(c) = self.rejected.get(reason as usize) {
            c.inc();
        }
    }

    /// Makes everything counted so far visible to `/metrics`.
    pub fn flush(&self) {
        for c in [
            &self.consumed,
            &self.changed,
            &self.unchanged,
            &self.filtered,
        ] {
            c.flush();
        }
        for c in &self.rejected {
            c.flush();
        }
        self.visible_delay.flush();
    }
}

impl Metrics {
    pub fn ingest_counters(&self) -> IngestCounters {
        IngestCounters {
            consumed: self.events_consumed.local(),
            changed: self.events_applied.with_label_values(&["changed"]).local(),
            unchanged: self
                .events_applied
                .with_label_values(&["unchanged"])
                .local(),
            filtered: self.events_filtered.local(),
            rejected: Rejection::ALL
                .iter()
                .map(|r| self.events_rejected.with_label_values(&[r.label()]).local())
                .collect(),
            visible_delay: self.event_visible_delay.local(),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_metrics_register_and_render() {
        let m = Metrics::new();
        m.events_rejected.with_label_values(&["not_json"]).inc();
        let text = m.render();
        assert!(text.contains("realstat_events_rejected_total{reason=\"not_json\"} 1"));
        assert!(text.contains("realstat_build_info{"));
        #[cfg(target_os = "linux")]
        for process in [
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "process_open_fds ",
        ] {
            assert!(text.contains(process), "{process}missing");
        }
        assert!(text.contains("realstat_keys_reloads_total{result=\"ok\"} 0"));
        assert!(text.contains("realstat_keys_reloads_total{result=\"rejected\"} 0"));
        assert!(text.contains("realstat_keys_loaded 0"));
        // Two instances do not clash: each has its own registry.
        let _other = Metrics::new();
    }

    #[test]
    fn key_reloads_and_the_keys_in_force() {
        let m = Metrics::new();
        m.keys_in_force(3);
        m.keys_rejected();
        m.keys_reloaded(2);
        m.keys_reloaded(5);
        let text = m.render();
        assert!(text.contains("realstat_keys_reloads_total{result=\"ok\"} 2"));
        assert!(text.contains("realstat_keys_reloads_total{result=\"rejected\"} 1"));
        assert!(text.contains("realstat_keys_loaded 5"));
    }

    #[test]
    fn rejection_counters_are_indexed_by_the_enum() {
        let m = Metrics::new();
        let c = m.ingest_counters();
        for (i, r) in Rejection::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "Rejection::ALL is in declaration order");
            c.rejected(*r);
        }
        assert!(
            !m.render().contains("reason=\"not_json\"} 1"),
            "not flushed yet"
        );
        c.flush();
        let text = m.render();
        for r in Rejection::ALL {
            let line = format!(
                "realstat_events_rejected_total{{reason=\"{}\"}} 1",
                r.label()
            );
            assert!(text.contains(&line), "{line}");
        }
    }

    #[test]
    fn lag_counts_neither_deleted_nor_read_messages() {
        let m = Metrics::new();
        m.partition_progress(0, Some(5), 10, 30); // stored offset below the log start
        m.partition_progress(1, None, 0, 7); // nothing read yet
        m.partition_progress(2, Some(9), 0, 7); // beyond a reported end
        let text = m.render();
        assert!(text.contains("realstat_partition_lag{partition=\"0\"} 20"));
        assert!(text.contains("realstat_partition_lag{partition=\"1\"} 7"));
        assert!(text.contains("realstat_partition_lag{partition=\"2\"} 0"));
    }
}

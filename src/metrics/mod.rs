//! Prometheus metrics. One registry per service instance (not the global default), so tests can
//! run several instances in one process and read each one's numbers.
//!
//! [`Metrics`] has verbs only: a part says what happened (`snapshot_failed`, `stream_ended`), and
//! this module alone knows which series that moves. Label values come from closed sets only
//! ([`labels`], `Rejection`, [`ResultCode`], partitions): never a task, an AK or anything else a
//! client chooses. Every metric is a row of one table ([`defs`]), which `realstat metrics list`
//! prints ([`catalogue`]).

mod callback;
mod defs;
mod labels;
#[cfg(target_os = "linux")]
mod process;

use std::sync::atomic::{AtomicI64, Ordering};

use prometheus::local::{LocalHistogram, LocalIntCounter};
use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::events::Rejection;
use crate::result_code::ResultCode;
use defs::Def;
use labels::KeysReload;

pub use callback::{InvalidRecord, PushOutcome};
pub use defs::{catalogue, MetricInfo};
pub use labels::{AuthRefusal, ConsumerError, Effect, LogReset, StreamEnd};

pub struct Metrics {
    registry: Registry,
    events_consumed: IntCounter,
    /// Valid events folded, by [`Effect`].
    events_applied: IntCounterVec,
    events_rejected: IntCounterVec,
    /// Events of tenants this deployment does not keep (`tenants.*`): skipped, not errors.
    events_filtered: IntCounter,
    partition_next_offset: IntGaugeVec,
    partition_end_offset: IntGaugeVec,
    partition_lag: IntGaugeVec,
    event_visible_delay: Histogram,
    fold_batch_duration: Histogram,
    requests: IntCounterVec,
    request_duration: HistogramVec,
    /// The series of the success answer (200, `0100000`), by far the most frequent, resolved
    /// once: looking a labelled series up costs a lock and a hash per request.
    answered_ok: (IntCounter, Histogram),
    auth_failures: IntCounterVec,
    tasks_tracked: IntGauge,
    calls_tracked: IntGauge,
    calls_expired: IntCounter,
    ready: IntGauge,
    consumer_errors: IntCounterVec,
    snapshot_age: Gauge,
    snapshot_duration: Histogram,
    snapshot_size: IntGauge,
    snapshot_failures: IntCounter,
    dead_letter_failures: IntCounter,
    keys_reloads: IntCounterVec,
    keys_loaded: IntGauge,
    streams_open: IntGauge,
    streams_ended: IntCounterVec,
    callback: callback::CallbackMetrics,
    /// When the last snapshot was written or restored (ms since the epoch; 0: never). Turned
    /// into `realstat_snapshot_age_seconds` at scrape time.
    snapshot_last_ms: AtomicI64,
    events_lost: IntCounterVec,
    log_resets: IntCounterVec,
    view_age: Gauge,
}

/// What the admin listener reads from the store and `progress` when it is scraped: facts kept
/// elsewhere, set into their gauges then rather than kept in step.
#[derive(Debug, Clone, Copy)]
pub struct ScrapeFacts {
    pub tasks_tracked: usize,
    pub calls_tracked: u64,
    pub ready: bool,
    /// The wall clock (ms since the epoch), for the snapshot's age.
    pub now_ms: i64,
    /// How old the replica's view of the log is (`progress::Readiness::view_age_ms`).
    pub view_age_ms: i64,
}

/// Registers a collector and hands it back. The definitions are constants, so this can only
/// fail on a programming error, which the tests below catch.
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

fn opts(d: Def) -> Opts {
    Opts::new(d.name, d.help)
}

fn counter(r: &Registry, d: Def) -> IntCounter {
    register(r, IntCounter::with_opts(opts(d)))
}

fn counter_vec(r: &Registry, d: Def) -> IntCounterVec {
    register(r, IntCounterVec::new(opts(d), d.labels))
}

fn gauge(r: &Registry, d: Def) -> IntGauge {
    register(r, IntGauge::with_opts(opts(d)))
}

fn gauge_vec(r: &Registry, d: Def) -> IntGaugeVec {
    register(r, IntGaugeVec::new(opts(d), d.labels))
}

fn histogram(r: &Registry, d: Def, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(d.name, d.help).buckets(buckets.to_vec());
    register(r, Histogram::with_opts(opts))
}

fn histogram_vec(r: &Registry, d: Def, buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(d.name, d.help).buckets(buckets.to_vec());
    register(r, HistogramVec::new(opts, d.labels))
}

impl Metrics {
    /// Builds and registers every metric of the [`defs`] table.
    pub fn new() -> Self {
        use defs::*;
        let r = Registry::new();
        let requests = counter_vec(&r, REQUESTS);
        let request_duration = histogram_vec(&r, REQUEST_DURATION, LATENCY_BUCKETS);
        let ok = ResultCode::Success.as_str();
        // The order breaks the list into short runs of one shape (the `duplicates` tool pairs
        // any long run of `field: constructor(&r, DEF)` with any other).
        let m = Metrics {
            events_consumed: counter(&r, EVENTS_CONSUMED),
            events_applied: counter_vec(&r, EVENTS_APPLIED),
            events_rejected: counter_vec(&r, EVENTS_REJECTED),
            events_filtered: counter(&r, EVENTS_FILTERED),
            event_visible_delay: histogram(&r, EVENT_VISIBLE_DELAY, DELAY_BUCKETS),
            fold_batch_duration: histogram(&r, FOLD_BATCH_DURATION, LATENCY_BUCKETS),
            partition_next_offset: gauge_vec(&r, PARTITION_NEXT_OFFSET),
            partition_end_offset: gauge_vec(&r, PARTITION_END_OFFSET),
            partition_lag: gauge_vec(&r, PARTITION_LAG),
            calls_expired: counter(&r, CALLS_EXPIRED),
            answered_ok: (
                requests.with_label_values(&[status_label(200), ok]),
                request_duration.with_label_values(&[ok]),
            ),
            requests,
            request_duration,
            auth_failures: counter_vec(&r, AUTH_FAILURES),
            tasks_tracked: gauge(&r, TASKS_TRACKED),
            calls_tracked: gauge(&r, CALLS_TRACKED),
            ready: gauge(&r, READY),
            snapshot_age: register(&r, Gauge::with_opts(opts(SNAPSHOT_AGE))),
            consumer_errors: counter_vec(&r, CONSUMER_ERRORS),
            dead_letter_failures: counter(&r, DEAD_LETTER_FAILURES),
            keys_reloads: counter_vec(&r, KEYS_RELOADS),
            keys_loaded: gauge(&r, KEYS_LOADED),
            snapshot_duration: histogram(&r, SNAPSHOT_DURATION, SNAPSHOT_BUCKETS),
            snapshot_size: gauge(&r, SNAPSHOT_SIZE),
            snapshot_failures: counter(&r, SNAPSHOT_FAILURES),
            streams_open: gauge(&r, STREAMS_OPEN),
            streams_ended: counter_vec(&r, STREAMS_ENDED),
            snapshot_last_ms: AtomicI64::new(0),
            events_lost: counter_vec(&r, EVENTS_LOST),
            log_resets: counter_vec(&r, LOG_RESETS),
            view_age: register(&r, Gauge::with_opts(opts(VIEW_AGE))),
            callback: callback::CallbackMetrics::new(&r),
            registry: r,
        };
        let git = option_env!("REALSTAT_GIT_HASH").unwrap_or("unknown");
        gauge_vec(&m.registry, BUILD_INFO)
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
        for reason in LogReset::ALL {
            self.log_resets.with_label_values(&[reason.label()]);
        }
        for end in StreamEnd::ALL {
            self.streams_ended.with_label_values(&[end.label()]);
        }
        for effect in Effect::ALL {
            self.events_applied.with_label_values(&[effect.label()]);
        }
        for result in KeysReload::ALL {
            self.keys_reloads.with_label_values(&[result.label()]);
        }
    }

    /// The keys in force now: at start and after every reload.
    pub fn keys_in_force(&self, count: usize) {
        self.keys_loaded
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A reload swapped in a new key set of `count` keys.
    pub fn keys_reloaded(&self, count: usize) {
        self.keys_reloads
            .with_label_values(&[KeysReload::Ok.label()])
            .inc();
        self.keys_in_force(count);
    }

    /// A reload was refused (unreadable or invalid file); the previous keys stay in force.
    pub fn keys_rejected(&self) {
        self.keys_reloads
            .with_label_values(&[KeysReload::Rejected.label()])
            .inc();
    }

    pub fn consumer_error(&self, kind: ConsumerError) {
        self.consumer_errors
            .with_label_values(&[kind.label()])
            .inc();
    }

    pub fn auth_refused(&self, why: AuthRefusal) {
        self.auth_failures.with_label_values(&[why.label()]).inc();
    }

    /// One answered request of the API listener's signed routes.
    pub fn request_answered(&self, status: u16, code: ResultCode, seconds: f64) {
        if status == 200 && code == ResultCode::Success {
            self.answered_ok.0.inc();
            self.answered_ok.1.observe(seconds);
            return;
        }
        self.requests
            .with_label_values(&[status_label(status), code.as_str()])
            .inc();
        self.request_duration
            .with_label_values(&[code.as_str()])
            .observe(seconds);
    }

    /// A live stream started.
    pub fn stream_opened(&self) {
        self.streams_open.inc();
    }

    /// A live stream gave its place back.
    pub fn stream_closed(&self) {
        self.streams_open.dec();
    }

    /// A live stream ended, and why.
    pub fn stream_ended(&self, why: StreamEnd) {
        self.streams_ended.with_label_values(&[why.label()]).inc();
    }

    /// The replica's position in one partition, the partition's end, and so its lag. The one
    /// place lag is computed: messages below the log start (`low`) are gone, not behind.
    pub fn partition_progress(&self, partition: i32, next: Option<i64>, low: i64, end: i64) {
        let mut buf = itoa::Buffer::new();
        let label = buf.format(partition);
        let next = next.unwrap_or(low).max(low);
        self.partition_next_offset
            .with_label_values(&[label])
            .set(next);
        self.partition_end_offset
            .with_label_values(&[label])
            .set(end);
        self.partition_lag
            .with_label_values(&[label])
            .set((end - next).max(0));
    }

    /// One batch decoded and folded, in `seconds`.
    pub fn batch_folded(&self, seconds: f64) {
        self.fold_batch_duration.observe(seconds);
    }

    /// A maintenance pass took `count` calls out of waitCount/execCount.
    pub fn calls_expired(&self, count: u64) {
        self.calls_expired.inc_by(count);
    }

    /// A rejected event could not be queued to the dead-letter topic.
    pub fn dead_letter_failed(&self) {
        self.dead_letter_failures.inc();
    }

    /// The replica caught up with the log (readiness is kept once reached).
    pub fn became_ready(&self) {
        self.ready.set(1);
    }

    pub fn snapshot_written(&self, bytes: usize, seconds: f64, at_ms: i64) {
        self.snapshot_duration.observe(seconds);
        self.snapshot_size
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.snapshot_taken_at(at_ms);
    }

    /// A snapshot written or restored at `at_ms` (ms since the epoch): the age starts there.
    pub fn snapshot_taken_at(&self, at_ms: i64) {
        self.snapshot_last_ms.store(at_ms, Ordering::Relaxed);
    }

    /// One incident of positions outside the log (however many partitions it touched).
    pub fn log_reset(&self, reason: LogReset) {
        self.log_resets.with_label_values(&[reason.label()]).inc();
    }

    /// `lost` offsets of `partition` were deleted before this replica read them.
    pub fn events_lost(&self, partition: i32, lost: u64) {
        self.events_lost
            .with_label_values(&[&partition.to_string()])
            .inc_by(lost);
    }

    /// A snapshot could not be written.
    pub fn snapshot_failed(&self) {
        self.snapshot_failures.inc();
    }

    /// Sets what is read at scrape time, then renders: the answer to `/metrics`.
    pub fn scrape(&self, facts: ScrapeFacts) -> String {
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.tasks_tracked.set(count(facts.tasks_tracked));
        self.calls_tracked
            .set(i64::try_from(facts.calls_tracked).unwrap_or(i64::MAX));
        self.ready.set(i64::from(facts.ready));
        let last = self.snapshot_last_ms.load(Ordering::Relaxed);
        if last > 0 {
            let age_ms = facts.now_ms.saturating_sub(last).max(0);
            self.snapshot_age.set(age_ms as f64 / 1000.0);
        }
        self.view_age.set(facts.view_age_ms.max(0) as f64 / 1000.0);
        self.render()
    }

    /// The text exposition format, as it stands.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// Messages read from the event topic so far (flushed batches only).
    pub fn events_consumed(&self) -> u64 {
        self.events_consumed.get()
    }

    /// Valid events folded so far with this effect (flushed batches only).
    pub fn events_applied(&self, effect: Effect) -> u64 {
        self.events_applied
            .with_label_values(&[effect.label()])
            .get()
    }

    /// Live streams open now.
    pub fn streams_open(&self) -> i64 {
        self.streams_open.get()
    }
}

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
    consumed: LocalIntCounter,
    changed: LocalIntCounter,
    unchanged: LocalIntCounter,
    filtered: LocalIntCounter,
    /// Indexed like `Rejection::ALL`.
    rejected: Vec<LocalIntCounter>,
    visible_delay: LocalHistogram,
}

impl IngestCounters {
    /// A message was read.
    pub fn consumed(&self) {
        self.consumed.inc();
    }

    /// A valid event changed the state; it became visible `delay_seconds` after its `ts`.
    pub fn changed(&self, delay_seconds: f64) {
        self.changed.inc();
        self.visible_delay.observe(delay_seconds);
    }

    /// A valid event changed nothing (a duplicate, a redelivery, an older state).
    pub fn unchanged(&self) {
        self.unchanged.inc();
    }

    /// An event of a tenant this deployment does not keep.
    pub fn filtered(&self) {
        self.filtered.inc();
    }

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
        let applied = |e: Effect| self.events_applied.with_label_values(&[e.label()]).local();
        IngestCounters {
            consumed: self.events_consumed.local(),
            changed: applied(Effect::Changed),
            unchanged: applied(Effect::Unchanged),
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
mod tests;

//! The Kafka consumer that feeds the fold.
//!
//! Two threads run the consumer: the [`fetch`] thread polls librdkafka and copies messages into
//! batches; the [`worker`] thread decodes and folds each batch, notes the next offsets and
//! publishes them. Decoding and folding cost more than polling, and the split lets them run on
//! one core while the next messages are taken on another. Every replica assigns itself *all* partitions of the topic by hand (no consumer group: a group
//! would split the partitions and each replica would serve partial counts), and keeps its own
//! offsets. A second thread ([`end_offsets`]) reads the partitions' end offsets for the lag
//! metrics, so those round trips never stall the consumer.
//!
//! Readiness: at start the loop reads each partition's end offset; the replica is ready once it
//! has applied everything below those offsets. After that it stays ready: a broker outage leaves
//! the numbers as they are, which is better than no numbers; the view's age and the lag metrics
//! tell the story. The one exception is a recreated topic ([`resets`]): not ready again until it
//! is read again.
//!
//! [`Ingest`] owns the three threads: it starts them, stops them (on its own stop signal, a child of
//! the process's) and joins them.

pub mod dead_letter;
mod end_offsets;
mod fetch;
pub mod kafka;
mod resets;
mod worker;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;

use crate::events::{Decoder, TenantFilter};
use crate::fold::Store;
use crate::log_position::{Offset, Partition};
use crate::metrics::Metrics;
use crate::progress::{Changes, Positions, Readiness};
use crate::shutdown::Shutdown;
use dead_letter::DeadLetters;
use kafka::Role;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot create the Kafka client ({role:?}): {source}")]
    Client {
        role: Role,
        #[source]
        source: KafkaError,
    },
    #[error("cannot start the {name} thread: {source}")]
    Thread {
        name: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Where to read from and how.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub brokers: String,
    pub topic: String,
    /// Extra librdkafka properties, applied last (they may override ours).
    pub properties: Vec<(String, String)>,
    pub metadata_refresh: Duration,
    pub default_cc_id: u16,
    /// Copy rejected events here (with the reason and origin in headers).
    pub dlq_topic: Option<String>,
    /// Events of other tenants are skipped (counted, not rejected).
    pub tenants: TenantFilter,
}

/// The offsets a partition's log spans, as the broker last reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bounds {
    /// The earliest offset still in the log (retention deletes below it).
    low: Offset,
    /// The offset the next message written will get (one past the last).
    end: Offset,
}

impl Bounds {
    /// From librdkafka's `fetch_watermarks` answer.
    fn from_watermarks((low, high): (i64, i64)) -> Bounds {
        Bounds {
            low: Offset(low),
            end: Offset(high),
        }
    }
}

/// The latest known bounds per partition.
type Ends = Arc<Mutex<BTreeMap<Partition, Bounds>>>;

/// Batches in flight between the fetcher and the worker: enough to keep both busy, few enough
/// that a stop does not wait on a long queue.
const BATCHES_IN_FLIGHT: usize = 2;

/// The running fetch, worker and end-offsets threads.
pub struct Ingest {
    stop: Shutdown,
    fetch: Option<JoinHandle<()>>,
    consumer: Option<JoinHandle<Positions>>,
    end_offsets: Option<JoinHandle<()>>,
    positions: Arc<Mutex<Positions>>,
}

impl Ingest {
    /// Starts consuming `config.topic` from `start` (partitions not in it: from the beginning),
    /// until `shutdown` or [`Ingest::stop`].
    pub fn start(
        config: IngestConfig,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        changes: Arc<Changes>,
        start: Positions,
        shutdown: &Shutdown,
    ) -> Result<Ingest, IngestError> {
        let consumer: Arc<BaseConsumer> = Arc::new(client(&config, Role::Consumer)?);
        let watermarks = client(&config, Role::Watermarks)?;
        let dead_letters = match &config.dlq_topic {
            Some(topic) => DeadLetters::to_topic(client(&config, Role::DeadLetters)?, topic),
            None => DeadLetters::log_only(),
        };
        let stop = shutdown.child();
        let positions = Arc::new(Mutex::new(start.clone()));
        let ends: Ends = Arc::default();
        let ends_read_at = Arc::new(AtomicI64::new(0));
        let end_offsets = spawn("end-offsets", &stop, {
            let reader = end_offsets::Reader {
                consumer: watermarks,
                topic: config.topic.clone(),
                metrics: metrics.clone(),
                positions: positions.clone(),
                ends: ends.clone(),
                ends_read_at: ends_read_at.clone(),
            };
            let stop = stop.clone();
            move || reader.run(&stop)
        })?;
        let (to_worker, handoffs) = sync_channel(BATCHES_IN_FLIGHT);
        let (recycle, recycled) = sync_channel(BATCHES_IN_FLIGHT + 2);
        let fetcher = fetch::Fetcher {
            consumer: consumer.clone(),
            to_worker,
            recycled,
            metrics: metrics.clone(),
        };
        let worker = worker::Worker {
            consumer,
            handoffs,
            recycle,
            decoder: Decoder::new(config.default_cc_id),
            dead_letters,
            counters: metrics.ingest_counters(),
            config,
            store,
            metrics,
            readiness,
            changes,
            shutdown: stop.clone(),
            published: positions.clone(),
            positions: start,
            targets: BTreeMap::new(),
            ends,
            touched: Vec::new(),
            limit_logged: Default::default(),
            ends_read_at,
            last_read_ms: BTreeMap::new(),
            reset_pending: false,
        };
        // From here on, `Ingest` owns the threads: on an error, dropping it stops and joins
        // those already started (the worker ends when the fetcher, or its channel, is gone).
        let mut ingest = Ingest {
            stop: stop.clone(),
            fetch: None,
            consumer: None,
            end_offsets: Some(end_offsets),
            positions,
        };
        ingest.consumer = Some(spawn("ingest", &stop, move || worker.run())?);
        let fetch_stop = stop.clone();
        ingest.fetch = Some(spawn("fetch", &stop, move || fetcher.run(&fetch_stop))?);
        Ok(ingest)
    }

    /// The positions as of the last published batch: every event below them is in the store.
    pub fn positions(&self) -> Positions {
        lock(&self.positions).clone()
    }

    /// A reader of [`Ingest::positions`] that can live on another thread (the snapshotter).
    pub fn position_reader(&self) -> impl Fn() -> Positions + Send + 'static {
        let shared = self.positions.clone();
        move || lock(&shared).clone()
    }

    /// Stops both threads, joins them, and returns the final positions (everything below them
    /// is folded). Blocks for up to one poll interval.
    pub fn stop(mut self) -> Positions {
        self.join().unwrap_or_else(|| self.positions())
    }

    fn join(&mut self) -> Option<Positions> {
        self.stop.trigger();
        for t in [self.end_offsets.take(), self.fetch.take()]
            .into_iter()
            .flatten()
        {
            let _ = t.join();
        }
        self.consumer.take().and_then(|t| t.join().ok())
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.join();
    }
}

fn client<C: rdkafka::config::FromClientConfig>(
    config: &IngestConfig,
    role: Role,
) -> Result<C, IngestError> {
    kafka::client_config(&config.brokers, &config.properties, role)
        .create()
        .map_err(|source| IngestError::Client { role, source })
}

/// Starts thread `name` under supervision: if it panics or returns before `stop`, the process
/// stops and exits non-zero naming it (a dead consumer must not leave a ready replica serving
/// frozen numbers).
fn spawn<T: Send + 'static>(
    name: &'static str,
    stop: &Shutdown,
    run: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, IngestError> {
    let supervisor = stop.clone();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || supervisor.supervise(name, run))
        .map_err(|source| IngestError::Thread { name, source })
}

/// The positions and the known ends, as metrics, for every partition or `only` some (sorted).
/// Called by both threads: whichever learns something new (a batch applied, an end offset read)
/// publishes the pair.
fn publish_progress(
    metrics: &Metrics,
    positions: &Positions,
    ends: &Mutex<BTreeMap<Partition, Bounds>>,
    only: Option<&[Partition]>,
) {
    for (&p, bounds) in lock(ends).iter() {
        if only.is_none_or(|o| o.binary_search(&p).is_ok()) {
            let next = positions.get(&p).map(|o| o.0);
            metrics.partition_progress(p.0, next, bounds.low.0, bounds.end.0);
        }
    }
}

/// Locks shared ingest state. The policy for a poisoned lock, here as everywhere in realstat:
/// carry on with the data. Every value behind these locks is replaced whole under the lock
/// (a map of offsets, a key set), so a thread that panicked while holding it cannot have left
/// it half-written; refusing to read it would only turn one failure into two.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ingest_thread_that_dies_stops_the_process() {
        let process = Shutdown::new();
        let stop = process.child();
        let thread =
            spawn("ingest", &stop, || -> Positions { panic!("fold bug") }).expect("starts");
        assert!(thread.join().is_err());
        assert!(
            process.is_triggered(),
            "a dead worker must not leave the replica up"
        );
        assert_eq!(process.failure().map(|f| f.part), Some("ingest"));
    }
}

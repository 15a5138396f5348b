//! The Kafka consumer that feeds the fold.
//!
//! One dedicated thread runs one loop: poll, decode, fold, note the next offset. Every replica
//! assigns itself *all* partitions of the topic by hand (no consumer group: a group would split
//! the partitions and each replica would serve partial counts), and keeps its own offsets.
//!
//! Readiness: at start the loop reads each partition's end offset; the replica is ready once it
//! has applied everything below those offsets. After that it stays ready: a broker outage leaves
//! the numbers as they are, which is better than no numbers; the lag metrics tell the story.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

pub mod dead_letter;
mod end_offsets;

use crate::events::Decoder;
use crate::fold::calendar::now_ms;
use crate::fold::{Applied, Store};
use crate::metrics::{IngestCounters, Metrics, REJECT_FROM_THE_FUTURE, REJECT_TOO_OLD};
use dead_letter::{DeadLetters, Origin};
use end_offsets::{EndOffsets, Ends};

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("cannot create the Kafka consumer: {0}")]
    Client(#[source] KafkaError),
    #[error("cannot start the consumer thread: {0}")]
    Thread(#[source] std::io::Error),
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
}

/// Readiness shared with the HTTP side: false until the consumer has caught up once.
#[derive(Debug, Default)]
pub struct Readiness {
    ready: AtomicBool,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}

/// Next offset to read, per partition: the replica's position in the log.
pub type Positions = BTreeMap<i32, i64>;

/// A running consumer thread.
pub struct Ingest {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Positions>>,
    end_offsets: Option<EndOffsets>,
    positions: Arc<Mutex<Positions>>,
}

impl Ingest {
    /// Starts consuming `config.topic` from `start` (partitions not in it: from the beginning).
    pub fn start(
        config: IngestConfig,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        readiness: Arc<Readiness>,
        start: Positions,
    ) -> Result<Ingest, IngestError> {
        let client_config = client_config(&config);
        let consumer = client_config.create().map_err(IngestError::Client)?;
        let dead_letters = DeadLetters::new(config.dlq_topic.as_deref(), &client_config)
            .map_err(IngestError::Client)?;
        let stop = Arc::new(AtomicBool::new(false));
        let positions = Arc::new(Mutex::new(start.clone()));
        let ends: Ends = Arc::default();
        let end_offsets = EndOffsets::start(
            &client_config,
            config.topic.clone(),
            metrics.clone(),
            positions.clone(),
            ends.clone(),
            stop.clone(),
        )
        .map_err(IngestError::Client)?;
        let worker = Worker {
            consumer,
            decoder: Decoder::new(config.default_cc_id),
            dead_letters,
            counters: metrics.ingest_counters(),
            config,
            store,
            metrics,
            readiness,
            stop: stop.clone(),
            published: positions.clone(),
            positions: start,
            targets: BTreeMap::new(),
            ends,
        };
        let thread = std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || worker.run())
            .map_err(IngestError::Thread)?;
        Ok(Ingest {
            stop,
            thread: Some(thread),
            end_offsets: Some(end_offsets),
            positions,
        })
    }

    /// The positions as of the last published batch: every event below them is in the store.
    pub fn positions(&self) -> Positions {
        read_positions(&self.positions)
    }

    /// A reader of [`Ingest::positions`] that can live on another thread (the snapshotter).
    pub fn position_reader(&self) -> impl Fn() -> Positions + Send + 'static {
        let shared = self.positions.clone();
        move || read_positions(&shared)
    }

    /// Stops the loop and returns the final positions (everything below them is folded).
    pub fn stop(mut self) -> Positions {
        self.stop.store(true, Ordering::Release);
        if let Some(e) = self.end_offsets.take() {
            e.join();
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(p)) => p,
            _ => self.positions(),
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_positions(shared: &Mutex<Positions>) -> Positions {
    shared.lock().map(|p| p.clone()).unwrap_or_default()
}

fn client_config(config: &IngestConfig) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", &config.brokers)
        // A group id is needed by librdkafka's consumer even with manual assignment; nothing is
        // ever committed under it.
        .set("group.id", "realstat")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("client.id", "realstat")
        // Larger fetches: replay speed is bound by how much arrives per round trip.
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "10485760")
        .set("queued.min.messages", "200000")
        // librdkafka pauses fetching for this long once its local queue is full (default 1 s):
        // during a catch-up that idled the consumer most of the time (docs/BENCHMARKS.md).
        .set("fetch.queue.backoff.ms", "10")
        // How long a broker may hold an empty fetch. The default 500 ms is the floor of the
        // event-to-visible delay; 10 ms brings it to tens of ms at the cost of more (small)
        // fetch requests while idle. Override through the Kafka properties if that matters more.
        .set("fetch.wait.max.ms", "10");
    for (k, v) in &config.properties {
        cc.set(k, v);
    }
    cc
}

const POLL: Duration = Duration::from_millis(100);
const MAX_BATCH: usize = 4096;
const MAINTAIN_EVERY: Duration = Duration::from_secs(1);
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

struct Worker {
    consumer: BaseConsumer,
    decoder: Decoder,
    dead_letters: DeadLetters,
    counters: IngestCounters,
    config: IngestConfig,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    stop: Arc<AtomicBool>,
    published: Arc<Mutex<Positions>>,
    /// Next offset to apply per partition.
    positions: Positions,
    /// End offsets seen at start: caught up once every partition reaches its target.
    targets: BTreeMap<i32, i64>,
    /// Latest known end offsets, for lag (kept fresh by the end-offsets thread).
    ends: Ends,
}

impl Worker {
    fn run(mut self) -> Positions {
        let topic = self.config.topic.clone();
        tracing::info!(topic = %topic, brokers = %self.config.brokers, "ingest starting");

        // Wait for the topic: it may not exist yet, or the broker may still be starting.
        let mut partitions = loop {
            if self.stopping() {
                return self.positions;
            }
            match self.partitions() {
                Ok(p) if !p.is_empty() => break p,
                Ok(_) => tracing::info!(topic = %topic, "topic not there yet; waiting"),
                Err(e) => {
                    self.metrics
                        .consumer_errors
                        .with_label_values(&["metadata"])
                        .inc();
                    tracing::warn!(topic = %topic, error = %e, "cannot read topic metadata; retrying")
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        };

        // End offsets first: they are the readiness targets, and they tell whether a stored
        // position still lies inside the log before the consumer is sent there.
        self.read_start_offsets(&partitions);
        self.assign(&partitions);
        self.check_caught_up();

        let mut last_maintain = Instant::now();
        let mut last_metadata = Instant::now();
        while !self.stopping() {
            let batch_start = Instant::now();
            let applied = self.poll_batch();
            if applied > 0 {
                self.metrics
                    .fold_batch_duration
                    .observe(batch_start.elapsed().as_secs_f64());
                self.publish();
                self.check_caught_up();
            } else if !self.readiness.is_ready() {
                // Idle but not caught up: the end may be a transaction marker, which is never
                // delivered as a message; librdkafka's position moves past it. Or an end offset
                // could not be read at start: ask again.
                self.adopt_consumer_positions();
                let unknown: Vec<i32> = self
                    .targets
                    .iter()
                    .filter(|(_, &t)| t == i64::MAX)
                    .map(|(&p, _)| p)
                    .collect();
                if !unknown.is_empty() {
                    self.read_start_offsets(&unknown);
                }
                self.check_caught_up();
            }
            if last_maintain.elapsed() >= MAINTAIN_EVERY {
                let m = self.store.maintain();
                self.metrics.calls_expired.inc_by(m.calls_expired);
                last_maintain = Instant::now();
            }
            if last_metadata.elapsed() >= self.config.metadata_refresh {
                if let Ok(now) = self.partitions() {
                    let new: Vec<i32> = now
                        .iter()
                        .copied()
                        .filter(|p| !partitions.contains(p))
                        .collect();
                    if !new.is_empty() {
                        tracing::info!(?new, "new partitions; reading them from the beginning");
                        self.assign_more(&new);
                        partitions = now;
                    }
                }
                last_metadata = Instant::now();
            }
        }
        self.publish();
        self.dead_letters.flush();
        tracing::info!(positions = ?self.positions, "ingest stopped");
        self.positions
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn partitions(&self) -> Result<Vec<i32>, KafkaError> {
        let md = self
            .consumer
            .fetch_metadata(Some(&self.config.topic), METADATA_TIMEOUT)?;
        let Some(t) = md.topics().iter().find(|t| t.name() == self.config.topic) else {
            return Ok(Vec::new());
        };
        if t.error().is_some() {
            return Ok(Vec::new());
        }
        let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    fn offset_for(&self, partition: i32) -> Offset {
        match self.positions.get(&partition) {
            Some(&o) if o >= 0 => Offset::Offset(o),
            _ => Offset::Beginning,
        }
    }

    fn assign(&mut self, partitions: &[i32]) {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            if let Err(e) = tpl.add_partition_offset(&self.config.topic, p, self.offset_for(p)) {
                tracing::error!(partition = p, error = %e, "cannot add partition to assignment");
            }
        }
        if let Err(e) = self.consumer.assign(&tpl) {
            self.metrics
                .consumer_errors
                .with_label_values(&["assign"])
                .inc();
            tracing::error!(error = %e, "cannot assign partitions");
        }
    }

    fn assign_more(&mut self, partitions: &[i32]) {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            let _ = tpl.add_partition_offset(&self.config.topic, p, self.offset_for(p));
        }
        if let Err(e) = self.consumer.incremental_assign(&tpl) {
            self.metrics
                .consumer_errors
                .with_label_values(&["assign"])
                .inc();
            tracing::error!(error = %e, "cannot assign new partitions");
        }
    }

    /// Reads every partition's offsets at start: the end offsets become the readiness targets,
    /// and a stored position below the log's start (retention deleted it) moves to the earliest
    /// offset here rather than being left to the broker's reset policy.
    fn read_start_offsets(&mut self, partitions: &[i32]) {
        for &p in partitions {
            match self
                .consumer
                .fetch_watermarks(&self.config.topic, p, METADATA_TIMEOUT)
            {
                Ok((low, high)) => {
                    if let Ok(mut e) = self.ends.lock() {
                        e.insert(p, high);
                    }
                    if let Some(&pos) = self.positions.get(&p) {
                        if pos < low {
                            tracing::warn!(
                                partition = p,
                                stored = pos,
                                earliest = low,
                                "stored offset no longer in the log; reading from the earliest"
                            );
                            self.positions.insert(p, low);
                        } else if pos > high {
                            // Either the topic was recreated, or the broker reports its end
                            // short (tansu 0.6 leaves out the last batch). Keep the position:
                            // if the broker answers "out of range", librdkafka resets to the
                            // earliest offset (auto.offset.reset) and the log is read again,
                            // which the idempotent fold makes safe.
                            tracing::warn!(
                                partition = p,
                                stored = pos,
                                end = high,
                                "stored offset beyond the reported end of the log"
                            );
                        }
                    }
                    // An empty partition, or one whose messages are all deleted, has nothing to
                    // catch up with.
                    self.targets.insert(p, if high <= low { 0 } else { high });
                    self.metrics
                        .partition_end_offset
                        .with_label_values(&[&p.to_string()])
                        .set(high);
                }
                Err(e) => {
                    self.metrics
                        .consumer_errors
                        .with_label_values(&["watermarks"])
                        .inc();
                    // Unknown end: wait for it rather than declaring readiness on a guess.
                    self.targets.insert(p, i64::MAX);
                    tracing::warn!(partition = p, error = %e, "cannot read end offset");
                }
            }
        }
        self.publish();
    }

    /// Polls up to `MAX_BATCH` messages (waiting only for the first) and folds them.
    fn poll_batch(&mut self) -> usize {
        let mut n = 0;
        let mut timeout = POLL;
        while n < MAX_BATCH {
            let Some(result) = self.consumer.poll(timeout) else {
                break;
            };
            timeout = Duration::ZERO;
            match result {
                Ok(msg) => {
                    n += 1;
                    let partition = msg.partition();
                    let offset = msg.offset();
                    let payload = msg.payload().unwrap_or_default();
                    if let Some(reason) = self.fold(payload) {
                        let origin = Origin {
                            topic: &self.config.topic,
                            partition,
                            offset,
                        };
                        if !self.dead_letters.reject(reason, payload, msg.key(), origin) {
                            self.metrics.dead_letter_failures.inc();
                        }
                    }
                    self.positions.insert(partition, offset + 1);
                }
                Err(e) => {
                    self.metrics
                        .consumer_errors
                        .with_label_values(&["poll"])
                        .inc();
                    tracing::warn!(error = %e, "consumer error");
                    break;
                }
            }
        }
        n
    }

    /// Decodes and folds one message; returns the rejection reason of a message not applied.
    fn fold(&self, payload: &[u8]) -> Option<&'static str> {
        let c = &self.counters;
        c.consumed.inc();
        let event = match self.decoder.decode(payload) {
            Ok(e) => e,
            Err(reason) => {
                c.rejected(reason).inc();
                return Some(reason.label());
            }
        };
        let now = now_ms();
        match self.store.apply(&event, now) {
            Applied::Changed => {
                c.changed.inc();
                c.visible_delay
                    .observe((now - event.ts).max(0) as f64 / 1000.0);
                None
            }
            Applied::Unchanged => {
                c.unchanged.inc();
                None
            }
            Applied::TooOld => {
                c.too_old.inc();
                Some(REJECT_TOO_OLD)
            }
            Applied::FromTheFuture => {
                c.from_the_future.inc();
                Some(REJECT_FROM_THE_FUTURE)
            }
        }
    }

    fn adopt_consumer_positions(&mut self) {
        let Ok(tpl) = self.consumer.position() else {
            return;
        };
        for e in tpl.elements() {
            if let Offset::Offset(o) = e.offset() {
                let cur = self.positions.entry(e.partition()).or_insert(o);
                *cur = (*cur).max(o);
            }
        }
    }

    fn check_caught_up(&self) {
        if self.readiness.is_ready() {
            return;
        }
        let caught_up = self.targets.iter().all(|(p, &target)| {
            target <= 0 || self.positions.get(p).is_some_and(|&pos| pos >= target)
        });
        if caught_up && !self.targets.is_empty() {
            tracing::info!(
                tasks = self.store.tasks_tracked(),
                calls = self.store.calls_tracked(),
                "caught up with the log; ready"
            );
            self.metrics.ready.set(1);
            self.readiness.set_ready();
        }
    }

    fn publish(&self) {
        let ends = self.ends.lock().map(|e| e.clone()).unwrap_or_default();
        for (p, &next) in &self.positions {
            let label = p.to_string();
            self.metrics
                .partition_next_offset
                .with_label_values(&[&label])
                .set(next);
            if let Some(&end) = ends.get(p) {
                self.metrics
                    .partition_lag
                    .with_label_values(&[&label])
                    .set((end.max(next) - next).max(0));
            }
        }
        if let Ok(mut shared) = self.published.lock() {
            shared.clone_from(&self.positions);
        }
    }
}

//! The consumer loop: take a batch from the [fetcher](super::fetch), decode and fold it, note the
//! next offsets, publish. One thread, one loop; it alone owns the positions.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset as KafkaOffset, TopicPartitionList};

use super::dead_letter::{DeadLetters, Origin};
use super::fetch::{Batch, Handoff};
use super::{kafka, Bounds, Ends, IngestConfig};
use crate::clock::{now_ms, EpochMs};
use crate::events::ids::TaskKey;
use crate::events::{Decoder, Rejection};
use crate::fold::{Applied, Store};
use crate::log_position::{Offset, Partition};
use crate::metrics::{ConsumerError, IngestCounters, Metrics};
use crate::progress::{Changes, Positions, Readiness};
use crate::shutdown::Shutdown;

const MAINTAIN_EVERY: Duration = Duration::from_secs(1);
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct Worker {
    /// Shared with the fetcher, which alone polls it; used here for metadata, offsets and
    /// assignments (librdkafka's client is thread-safe).
    pub consumer: Arc<BaseConsumer>,
    /// Batches and idle notices from the fetcher; closed when the fetcher stops.
    pub handoffs: Receiver<Handoff>,
    /// Folded batches go back to the fetcher for reuse.
    pub recycle: SyncSender<Batch>,
    pub decoder: Decoder,
    pub dead_letters: DeadLetters,
    pub counters: IngestCounters,
    pub config: IngestConfig,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    /// Bumped after every batch, for live streams.
    pub changes: Arc<Changes>,
    pub shutdown: Shutdown,
    /// What the rest of the process reads: updated after every batch.
    pub published: Arc<Mutex<Positions>>,
    /// Next offset to apply per partition.
    pub positions: Positions,
    /// End offsets seen at start: caught up once every partition reaches its target.
    pub targets: BTreeMap<Partition, CatchUp>,
    /// Latest known bounds of each partition's log, kept fresh by the end-offsets thread.
    pub ends: Ends,
    /// The partitions the last batch moved, sorted (reused from batch to batch).
    pub touched: Vec<Partition>,
    /// Tasks already named in a log line for hitting a state limit (bounded: see `note_limit`).
    pub limit_logged: RefCell<HashSet<TaskKey>>,
}

/// Tasks named individually in "limit reached" log lines; past that, the rate-limited
/// rejection line of the dead letters still counts them.
const LIMIT_LOG_TASKS: usize = 1000;

/// How far one partition must be read before the replica is ready: its end when it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CatchUp {
    /// The end offset could not be read: wait for it (asked again while idle) rather than
    /// declaring readiness on a guess.
    EndUnknown,
    /// Nothing to read: the partition is empty, or all its messages are deleted.
    Nothing,
    /// Caught up once the position reaches this offset.
    To(Offset),
}

impl CatchUp {
    /// The target for a partition whose log spans `bounds` at start.
    fn of(bounds: Bounds) -> CatchUp {
        // An end at or below offset 0 has nothing below it either, whatever `low` says.
        if bounds.end <= bounds.low || bounds.end.0 <= 0 {
            CatchUp::Nothing
        } else {
            CatchUp::To(bounds.end)
        }
    }

    fn reached_by(self, position: Option<Offset>) -> bool {
        match self {
            CatchUp::EndUnknown => false,
            CatchUp::Nothing => true,
            CatchUp::To(end) => position.is_some_and(|pos| pos >= end),
        }
    }
}

impl Worker {
    pub fn run(mut self) -> Positions {
        tracing::info!(topic = %self.config.topic, brokers = %self.config.brokers, "ingest starting");
        let Some(mut partitions) = self.wait_for_topic() else {
            return self.positions;
        };
        // End offsets first: they are the readiness targets, and they tell whether a stored
        // position still lies inside the log before the consumer is sent there.
        self.read_start_offsets(&partitions);
        self.assign(&partitions, false);
        self.check_caught_up();

        let mut last_maintain = Instant::now();
        let mut last_metadata = Instant::now();
        // Ends when the fetcher stops (on the stop signal) and everything it handed over is
        // folded: batches already taken from librdkafka are not thrown away.
        while let Ok(handoff) = self.handoffs.recv() {
            match handoff {
                Handoff::Batch(batch) => {
                    self.fold_batch(&batch);
                    let _ = self.recycle.try_send(batch);
                    self.publish_batch();
                    self.changes.bump();
                    self.check_caught_up();
                }
                Handoff::Idle(consumer_positions) => {
                    if !self.readiness.is_ready() {
                        self.retry_readiness(&consumer_positions);
                    }
                }
            }
            if last_maintain.elapsed() >= MAINTAIN_EVERY {
                let m = self.store.maintain();
                self.metrics.calls_expired(m.calls_expired);
                if m.calls_expired + m.calls_dropped > 0 {
                    self.changes.bump();
                }
                last_maintain = Instant::now();
            }
            if last_metadata.elapsed() >= self.config.metadata_refresh {
                self.discover_partitions(&mut partitions);
                last_metadata = Instant::now();
            }
        }
        self.publish();
        self.dead_letters.flush();
        tracing::info!(positions = ?self.positions, "ingest stopped");
        self.positions
    }

    /// Waits until the topic exists and has partitions (the broker may still be starting).
    /// `None`: asked to stop first.
    fn wait_for_topic(&self) -> Option<Vec<Partition>> {
        let topic = &self.config.topic;
        loop {
            match kafka::partitions(&self.consumer, topic, METADATA_TIMEOUT) {
                Ok(p) if !p.is_empty() => return Some(p),
                Ok(_) => tracing::info!(topic = %topic, "topic not there yet; waiting"),
                Err(e) => {
                    self.metrics.consumer_error(ConsumerError::Metadata);
                    tracing::warn!(topic = %topic, error = %e, "cannot read topic metadata; retrying")
                }
            }
            if self.shutdown.sleep(Duration::from_secs(1)) {
                return None;
            }
        }
    }

    /// Idle but not caught up: the end may be a transaction marker, which is never delivered as
    /// a message (librdkafka's position moves past it), or an end offset could not be read at
    /// start: ask again.
    fn retry_readiness(&mut self, consumer_positions: &[(Partition, Offset)]) {
        for &(partition, offset) in consumer_positions {
            let cur = self.positions.entry(partition).or_insert(offset);
            *cur = (*cur).max(offset);
        }
        let unknown: Vec<Partition> = self
            .targets
            .iter()
            .filter(|(_, &t)| t == CatchUp::EndUnknown)
            .map(|(&p, _)| p)
            .collect();
        if !unknown.is_empty() {
            self.read_start_offsets(&unknown);
        }
        self.publish();
        self.check_caught_up();
    }

    fn discover_partitions(&mut self, known: &mut Vec<Partition>) {
        let Ok(now) = kafka::partitions(&self.consumer, &self.config.topic, METADATA_TIMEOUT)
        else {
            return;
        };
        let new: Vec<Partition> = now.iter().copied().filter(|p| !known.contains(p)).collect();
        if !new.is_empty() {
            tracing::info!(?new, "new partitions; reading them from the beginning");
            self.assign(&new, true);
            *known = now;
        }
    }

    fn offset_for(&self, partition: Partition) -> KafkaOffset {
        match self.positions.get(&partition) {
            Some(&Offset(o)) if o >= 0 => KafkaOffset::Offset(o),
            _ => KafkaOffset::Beginning,
        }
    }

    /// Assigns `partitions` at their positions: all of them at start, or `more` later.
    fn assign(&mut self, partitions: &[Partition], more: bool) {
        let mut tpl = TopicPartitionList::new();
        for &p in partitions {
            if let Err(e) = tpl.add_partition_offset(&self.config.topic, p.0, self.offset_for(p)) {
                tracing::error!(partition = p.0, error = %e, "cannot add partition to assignment");
            }
        }
        let result = if more {
            self.consumer.incremental_assign(&tpl)
        } else {
            self.consumer.assign(&tpl)
        };
        if let Err(e) = result {
            self.metrics.consumer_error(ConsumerError::Assign);
            tracing::error!(error = %e, "cannot assign partitions");
        }
    }

    /// Reads every partition's offsets at start: the end offsets become the readiness targets,
    /// and a stored position below the log's start (retention deleted it) moves to the earliest
    /// offset here rather than being left to the broker's reset policy.
    fn read_start_offsets(&mut self, partitions: &[Partition]) {
        for &p in partitions {
            match self
                .consumer
                .fetch_watermarks(&self.config.topic, p.0, METADATA_TIMEOUT)
            {
                Ok(watermarks) => {
                    let bounds = Bounds::from_watermarks(watermarks);
                    super::lock(&self.ends).insert(p, bounds);
                    self.check_stored_position(p, bounds);
                    self.targets.insert(p, CatchUp::of(bounds));
                }
                Err(e) => {
                    self.metrics.consumer_error(ConsumerError::Watermarks);
                    self.targets.insert(p, CatchUp::EndUnknown);
                    tracing::warn!(partition = p.0, error = %e, "cannot read end offset");
                }
            }
        }
        self.publish();
    }

    fn check_stored_position(&mut self, p: Partition, bounds: Bounds) {
        let Some(&pos) = self.positions.get(&p) else {
            return;
        };
        if pos < bounds.low {
            tracing::warn!(
                partition = p.0,
                stored = pos.0,
                earliest = bounds.low.0,
                "stored offset no longer in the log; reading from the earliest"
            );
            self.positions.insert(p, bounds.low);
        } else if pos > bounds.end {
            // Either the topic was recreated, or the broker reports its end short (tansu 0.6
            // leaves out the last batch). Keep the position: if the broker answers "out of
            // range", librdkafka resets to the earliest offset (auto.offset.reset) and the log
            // is read again, which the idempotent fold makes safe.
            tracing::warn!(
                partition = p.0,
                stored = pos.0,
                end = bounds.end.0,
                "stored offset beyond the reported end of the log"
            );
        }
    }

    /// Decodes and folds one batch, noting each partition's next offset as it goes. Timed for
    /// the fold-batch histogram; the counters are flushed once per batch rather than touched
    /// per event (shared atomics cost more than the fold of a small event).
    fn fold_batch(&mut self, batch: &Batch) {
        let started = Instant::now();
        // One clock reading per batch: a batch is folded within milliseconds, and the clock
        // costs as much as a quarter of the fold of one event on some virtual machines.
        let now = now_ms();
        // librdkafka delivers a partition's messages in runs: note a run's end once, not every
        // message's offset (a map insert per event shows in the profile).
        let mut run: Option<(Partition, Offset)> = None;
        self.touched.clear();
        for msg in batch.messages() {
            if let Err(reason) = self.fold(msg.payload, now) {
                let origin = Origin {
                    topic: &self.config.topic,
                    partition: msg.partition,
                    offset: msg.offset,
                };
                if !self
                    .dead_letters
                    .reject(reason, msg.payload, msg.key, origin)
                {
                    self.metrics.dead_letter_failed();
                }
            }
            match &mut run {
                Some((p, next)) if *p == msg.partition => *next = msg.offset.after(),
                _ => {
                    if let Some((p, next)) = run.replace((msg.partition, msg.offset.after())) {
                        self.positions.insert(p, next);
                        self.touched.push(p);
                    }
                }
            }
        }
        if let Some((p, next)) = run {
            self.positions.insert(p, next);
            self.touched.push(p);
        }
        self.touched.sort_unstable();
        self.touched.dedup();
        self.counters.flush();
        self.metrics.batch_folded(started.elapsed().as_secs_f64());
    }

    /// Decodes and folds one message, counting what happened to it.
    fn fold(&self, payload: &[u8], now: EpochMs) -> Result<(), Rejection> {
        let c = &self.counters;
        c.consumed();
        let event = self
            .decoder
            .decode(payload)
            .inspect_err(|&r| c.rejected(r))?;
        if !self.config.tenants.keeps_task(&event.task) {
            c.filtered();
            return Ok(());
        }
        let applied = self.store.apply(&event, now);
        match applied {
            Applied::Changed => {
                c.changed((now - event.ts).max(0) as f64 / 1000.0);
            }
            Applied::Unchanged => c.unchanged(),
            Applied::TooOld | Applied::FromTheFuture | Applied::TaskLimit | Applied::CallLimit => {}
        }
        match applied.rejection() {
            Some(r) => {
                c.rejected(r);
                if matches!(applied, Applied::TaskLimit | Applied::CallLimit) {
                    self.note_limit(&event.task, r);
                }
                Err(r)
            }
            None => Ok(()),
        }
    }

    /// Says once per task that a state limit refused its events (so a flood of new tasks does
    /// not become a flood of log lines, the first `LIMIT_LOG_TASKS` tasks are named).
    fn note_limit(&self, task: &TaskKey, reason: Rejection) {
        let mut logged = self.limit_logged.borrow_mut();
        if logged.len() > LIMIT_LOG_TASKS || logged.contains(task) {
            return;
        }
        if logged.len() == LIMIT_LOG_TASKS {
            tracing::warn!("more tasks hit state limits; no longer naming them one by one");
        } else {
            tracing::warn!(
                cc_id = task.cc_id,
                vdn = task.vdn,
                task_id = %task.task_id,
                reason = reason.label(),
                tasks_tracked = self.store.tasks_tracked(),
                "state limit reached: events refused for this task"
            );
        }
        logged.insert(*task);
    }

    fn check_caught_up(&self) {
        if self.readiness.is_ready() {
            return;
        }
        let caught_up = self
            .targets
            .iter()
            .all(|(p, target)| target.reached_by(self.positions.get(p).copied()));
        if caught_up && !self.targets.is_empty() {
            tracing::info!(
                tasks = self.store.tasks_tracked(),
                calls = self.store.calls_tracked(),
                "caught up with the log; ready"
            );
            self.metrics.became_ready();
            self.readiness.set_ready();
        }
    }

    /// Makes the positions visible to the snapshotter and the lag metrics.
    fn publish(&self) {
        super::publish_progress(&self.metrics, &self.positions, &self.ends, None);
        super::lock(&self.published).clone_from(&self.positions);
    }

    /// After a batch, the same for the partitions it moved only: a batch of live traffic often
    /// touches one or two of many partitions, and the rest have not changed since.
    fn publish_batch(&self) {
        let touched = Some(self.touched.as_slice());
        super::publish_progress(&self.metrics, &self.positions, &self.ends, touched);
        let mut published = super::lock(&self.published);
        for p in &self.touched {
            if let Some(&next) = self.positions.get(p) {
                published.insert(*p, next);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(low: i64, end: i64) -> Bounds {
        Bounds::from_watermarks((low, end))
    }

    #[test]
    fn a_partition_with_messages_is_caught_up_at_its_end() {
        let target = CatchUp::of(bounds(3, 10));
        assert_eq!(target, CatchUp::To(Offset(10)));
        assert!(!target.reached_by(None));
        assert!(!target.reached_by(Some(Offset(9))));
        assert!(target.reached_by(Some(Offset(10))));
        assert!(target.reached_by(Some(Offset(11))));
    }

    #[test]
    fn an_empty_or_emptied_partition_has_nothing_to_catch_up_with() {
        for (low, end) in [(0, 0), (7, 7), (8, 7), (-1, -1)] {
            let target = CatchUp::of(bounds(low, end));
            assert_eq!(target, CatchUp::Nothing, "low {low}, end {end}");
            assert!(target.reached_by(None));
        }
    }

    #[test]
    fn an_unknown_end_is_never_reached() {
        assert!(!CatchUp::EndUnknown.reached_by(None));
        assert!(!CatchUp::EndUnknown.reached_by(Some(Offset(i64::MAX))));
    }
}

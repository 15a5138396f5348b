//! The consumer loop: take a batch from the [fetcher](super::fetch), decode and fold it, note the
//! next offsets, publish. One thread, one loop; it alone owns the positions.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset as KafkaOffset, TopicPartitionList};

use super::dead_letter::{DeadLetters, Origin};
use super::fetch::{Batch, Handoff};
use super::resets::{self, Incident};
use super::{kafka, Bounds, Ends, IngestConfig};
use crate::clock::{now_ms, EpochMs};
use crate::events::ids::TaskKey;
use crate::events::{Decoder, Rejection};
use crate::fold::{Applied, Store};
use crate::log_position::{Offset, Partition};
use crate::metrics::{ConsumerError, IngestCounters, LogReset, Metrics};
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
    /// When the end-offsets thread last read every partition's end (ms since the epoch): once
    /// the positions reach those ends, the view is confirmed as of then.
    pub ends_read_at: Arc<AtomicI64>,
    /// The Kafka timestamp of the last message read per partition, for naming the days a gap
    /// may have shortened.
    pub last_read_ms: BTreeMap<Partition, EpochMs>,
    /// An out-of-range position could not be judged yet (the broker did not answer): the
    /// partition stays stopped until it is.
    pub reset_pending: bool,
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
    /// The stored position lies beyond the reported end: either the topic was recreated (the
    /// first fetch answers "out of range" within a round trip, see `resets`) or the broker
    /// reports its end short (tansu 0.6 leaves out the last batch). Ready only once the fetch
    /// had time to say which, so a recreated topic is never served short, not even briefly.
    Settle(Instant),
}

/// How long a position beyond the reported end waits for the broker's verdict.
const SETTLE: Duration = Duration::from_secs(2);

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
            CatchUp::Settle(at) => Instant::now() >= at,
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
                    self.confirm_view(&[]);
                }
                Handoff::Idle(consumer_positions) => {
                    if self.reset_pending {
                        self.on_out_of_range();
                    }
                    if !self.readiness.is_ready() {
                        self.retry_readiness(&consumer_positions);
                    }
                    self.confirm_view(&consumer_positions);
                }
                Handoff::OutOfRange => self.on_out_of_range(),
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

    /// Reads every partition's offsets at start: the end offsets become the readiness targets.
    /// A stored position outside the log is found by the first fetch (`resets`).
    fn read_start_offsets(&mut self, partitions: &[Partition]) {
        for &p in partitions {
            match self.bounds_of(p) {
                Ok(bounds) => {
                    // The series exists from the start, at 0, so an alert sees its first rise.
                    self.metrics.events_lost(p.0, 0);
                    super::lock(&self.ends).insert(p, bounds);
                    let target = match self.positions.get(&p) {
                        Some(&pos) if pos > bounds.end => CatchUp::Settle(Instant::now() + SETTLE),
                        _ => CatchUp::of(bounds),
                    };
                    self.targets.insert(p, target);
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

    /// A partition's log as the broker reports it now.
    fn bounds_of(&self, p: Partition) -> rdkafka::error::KafkaResult<Bounds> {
        self.consumer
            .fetch_watermarks(&self.config.topic, p.0, METADATA_TIMEOUT)
            .map(Bounds::from_watermarks)
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
        let mut run: Option<(Partition, Offset, EpochMs)> = None;
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
                Some((p, next, ts)) if *p == msg.partition => {
                    (*next, *ts) = (msg.offset.after(), msg.timestamp);
                }
                _ => {
                    let here = (msg.partition, msg.offset.after(), msg.timestamp);
                    if let Some(ended) = run.replace(here) {
                        self.run_ended(ended);
                    }
                }
            }
        }
        if let Some(ended) = run {
            self.run_ended(ended);
        }
        self.touched.sort_unstable();
        self.touched.dedup();
        self.counters.flush();
        self.metrics.batch_folded(started.elapsed().as_secs_f64());
    }

    /// A run of one partition's messages is folded up to `next`, the last one stamped `ts`.
    fn run_ended(&mut self, (p, next, ts): (Partition, Offset, EpochMs)) {
        self.positions.insert(p, next);
        self.last_read_ms.insert(p, ts);
        self.touched.push(p);
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

    /// librdkafka found a position outside the log: judge every partition against its bounds,
    /// count and log what was lost, and send the consumer where to go on (see `resets`).
    fn on_out_of_range(&mut self) {
        self.reset_pending = true;
        let partitions = kafka::partitions(&self.consumer, &self.config.topic, METADATA_TIMEOUT);
        let Ok(partitions) = partitions else {
            self.metrics.consumer_error(ConsumerError::Metadata);
            return; // asked again on the next idle poll
        };
        let mut bounds = BTreeMap::new();
        for &p in &partitions {
            match self.bounds_of(p) {
                Ok(b) => bounds.insert(p, b),
                Err(_) => {
                    self.metrics.consumer_error(ConsumerError::Watermarks);
                    return;
                }
            };
        }
        self.reset_pending = false;
        let incident = Incident::of(
            bounds
                .iter()
                .map(|(&p, &b)| (p, resets::judge(self.positions.get(&p).copied(), b))),
        );
        let now = now_ms();
        if !incident.truncated.is_empty() {
            self.truncated(&incident, &bounds, now);
        }
        if !incident.recreated.is_empty() {
            self.recreated(&incident, &bounds, now);
        }
        super::lock(&self.ends).extend(bounds);
        // Every partition again at its (judged) position: the one librdkafka stopped resumes.
        self.assign(&partitions, false);
        self.publish();
    }

    fn truncated(
        &mut self,
        incident: &Incident,
        bounds: &BTreeMap<Partition, Bounds>,
        now: EpochMs,
    ) {
        for &(p, lost) in &incident.truncated {
            self.metrics.events_lost(p.0, lost);
            if let Some(b) = bounds.get(&p) {
                self.positions.insert(p, b.low);
            }
        }
        let since = (incident.truncated.iter())
            .filter_map(|(p, _)| self.last_read_ms.get(p).copied())
            .min();
        self.metrics.log_reset(LogReset::Truncated);
        tracing::error!(
            partitions = ?incident.truncated,
            lost = incident.lost(),
            days_maybe_short = %resets::days_short(self.store.calendar(), since, now),
            "events deleted from the log before this replica read them; going on from the log's \
             start; counts of these days may be short"
        );
    }

    fn recreated(
        &mut self,
        incident: &Incident,
        bounds: &BTreeMap<Partition, Bounds>,
        now: EpochMs,
    ) {
        for (&p, b) in bounds {
            self.positions.insert(p, b.low);
            self.targets.insert(p, CatchUp::of(*b));
        }
        let since = self.last_read_ms.values().copied().min();
        self.metrics.log_reset(LogReset::Recreated);
        self.readiness.set_unready();
        tracing::error!(
            beyond_end = ?incident.recreated,
            days_maybe_short = %resets::days_short(self.store.calendar(), since, now),
            "the topic was recreated: reading every partition again from its start, not ready \
             until the end; events of the old topic not read before it was deleted are lost"
        );
        self.check_caught_up();
    }

    /// Confirms the view once every partition's position (the worker's, or the consumer's
    /// `seen` on an idle poll, past any transaction marker) has reached the ends last read.
    /// Runs after every batch: once the ends of one reading are reached, the next batches skip
    /// the walk over the partitions until the end-offsets thread reads the ends again.
    fn confirm_view(&self, seen: &[(Partition, Offset)]) {
        let at = self.ends_read_at.load(Ordering::Acquire);
        if at <= 0 || self.readiness.is_confirmed_at(at) {
            return;
        }
        let ends = super::lock(&self.ends);
        let reached = !ends.is_empty()
            && ends.iter().all(|(p, b)| {
                let seen = seen.iter().find(|(q, _)| q == p).map(|&(_, o)| o);
                let pos = self.positions.get(p).copied().max(seen);
                b.end <= b.low || pos.is_some_and(|pos| pos >= b.end)
            });
        if reached {
            self.readiness.confirm_view(at);
        }
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

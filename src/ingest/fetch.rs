//! The polling half of the consumer: takes messages off librdkafka's queue and copies them into
//! batches for the [`worker`](super::worker), so that decoding and folding run on one core while
//! the next messages are taken off the queue on another.
//!
//! Why copy: a message polled from librdkafka borrows the consumer and cannot cross threads,
//! and detaching it costs three allocations. Copying the payload and key into one reused buffer
//! costs a `memcpy` of ~200 bytes. Batches go back to this thread once folded, so in steady state
//! nothing is allocated.
//!
//! Order and exactness: one fetcher, one worker, one FIFO channel, so the worker folds messages
//! in the order librdkafka delivered them and notes each partition's next offset only after the
//! message below it is folded. The fetcher never touches the positions.

use std::ops::Range;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message as _;
use rdkafka::topic_partition_list::Offset as KafkaOffset;

use crate::log_position::{Offset, Partition};
use crate::metrics::{ConsumerError, Metrics};
use crate::shutdown::Shutdown;

/// How long one poll waits for the first message of a batch; also the longest the fetcher takes
/// to notice the stop signal.
pub(super) const POLL: Duration = Duration::from_millis(100);
/// At most this many messages per batch.
const MAX_BATCH: usize = 4096;

/// What the fetcher hands the worker.
pub(super) enum Handoff {
    Batch(Batch),
    /// One poll interval passed with nothing to take. While the replica is not ready, this also
    /// carries the consumer's own next offsets, read right after the empty poll: they may lie
    /// past the last message handed over (a transaction marker at the end of a partition is never
    /// delivered as a message), and no message below them is still on its way.
    Idle(Vec<(Partition, Offset)>),
    /// librdkafka found a partition's position outside its log (`auto.offset.reset=error`) and
    /// stopped fetching it; the worker decides what was lost and where to go on (`resets`).
    /// Sent after every batch taken before it, so the worker's positions are the fetch's.
    OutOfRange,
}

/// Messages copied out of librdkafka, in delivery order.
#[derive(Default)]
pub(super) struct Batch {
    bytes: Vec<u8>,
    records: Vec<Record>,
}

#[derive(Clone)]
struct Record {
    partition: Partition,
    offset: Offset,
    payload: Range<usize>,
    /// `None`: the message had no key.
    key: Option<Range<usize>>,
    /// The message's Kafka timestamp (ms since the epoch; 0: none).
    timestamp: i64,
}

/// One message of a [`Batch`].
pub(super) struct Fetched<'a> {
    pub partition: Partition,
    pub offset: Offset,
    pub payload: &'a [u8],
    pub key: Option<&'a [u8]>,
    pub timestamp: i64,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }

    fn push(
        &mut self,
        (partition, offset, timestamp): (Partition, Offset, i64),
        payload: &[u8],
        key: Option<&[u8]>,
    ) {
        let payload = self.append(payload);
        let key = key.map(|k| self.append(k));
        self.records.push(Record {
            partition,
            offset,
            payload,
            key,
            timestamp,
        });
    }

    fn append(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    pub fn messages(&self) -> impl Iterator<Item = Fetched<'_>> {
        self.records.iter().map(|r| Fetched {
            partition: r.partition,
            offset: r.offset,
            payload: self.bytes.get(r.payload.clone()).unwrap_or_default(),
            key: r.key.clone().and_then(|k| self.bytes.get(k)),
            timestamp: r.timestamp,
        })
    }
}

pub(super) struct Fetcher {
    pub consumer: Arc<BaseConsumer>,
    pub to_worker: SyncSender<Handoff>,
    /// Folded batches, returned for reuse.
    pub recycled: Receiver<Batch>,
    pub metrics: Arc<Metrics>,
}

impl Fetcher {
    /// Polls until `stop`, then returns, which closes the channel: the worker folds what it was
    /// handed and stops too.
    pub fn run(self, stop: &Shutdown) {
        while !stop.is_triggered() {
            let mut batch = self.recycled.try_recv().unwrap_or_default();
            batch.clear();
            let out_of_range = self.fill(&mut batch);
            let handoff = if batch.is_empty() {
                Handoff::Idle(self.consumer_positions())
            } else {
                Handoff::Batch(batch)
            };
            if self.to_worker.send(handoff).is_err() {
                break; // the worker has stopped
            }
            if out_of_range && self.to_worker.send(Handoff::OutOfRange).is_err() {
                break;
            }
        }
    }

    /// Polls up to `MAX_BATCH` messages, waiting only for the first. `true`: a partition's
    /// position was found outside its log.
    fn fill(&self, batch: &mut Batch) -> bool {
        let mut timeout = POLL;
        while batch.len() < MAX_BATCH {
            match self.consumer.poll(timeout) {
                None => break,
                Some(Ok(m)) => batch.push(
                    (
                        Partition(m.partition()),
                        Offset(m.offset()),
                        m.timestamp().to_millis().unwrap_or(0),
                    ),
                    m.payload().unwrap_or_default(),
                    m.key(),
                ),
                Some(Err(e))
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::AutoOffsetReset) =>
                {
                    return true;
                }
                Some(Err(e)) => {
                    self.metrics.consumer_error(ConsumerError::Poll);
                    tracing::warn!(error = %e, "consumer error");
                    break;
                }
            }
            timeout = Duration::ZERO;
        }
        false
    }

    /// The consumer's next offsets: read on every idle poll, for readiness and for the view's
    /// age (an end that is a transaction marker is reached only by these).
    fn consumer_positions(&self) -> Vec<(Partition, Offset)> {
        let Ok(tpl) = self.consumer.position() else {
            return Vec::new();
        };
        tpl.elements()
            .iter()
            .filter_map(|e| match e.offset() {
                KafkaOffset::Offset(o) => Some((Partition(e.partition()), Offset(o))),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_gives_back_each_message_as_pushed() {
        let mut b = Batch::default();
        let (p0, p3) = (Partition(0), Partition(3));
        b.push((p3, Offset(10), 5), b"{\"a\":1}", Some(b"k1"));
        b.push((p0, Offset(7), 0), b"", None);
        b.push((p3, Offset(11), 6), b"xyz", Some(b""));
        let got: Vec<_> = b
            .messages()
            .map(|m| {
                (
                    m.partition,
                    m.offset,
                    m.payload.to_vec(),
                    m.key.map(<[u8]>::to_vec),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (p3, Offset(10), b"{\"a\":1}".to_vec(), Some(b"k1".to_vec())),
                (p0, Offset(7), Vec::new(), None),
                (p3, Offset(11), b"xyz".to_vec(), Some(Vec::new())),
            ]
        );
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.messages().count(), 0);
    }
}

//! Rejected events: counted by reason, logged at a bounded rate, and, when a dead-letter topic
//! is configured, copied there with the reason and their origin in headers.
//!
//! Nothing here may slow the valid events down: the copy is queued in librdkafka's producer
//! (which delivers in the background) and, when that queue is full, dropped and counted.

use std::time::{Duration, Instant};

use crate::events::Rejection;
use crate::log_position::{Offset, Partition};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

pub const HEADER_REASON: &str = "realstat-reject-reason";
pub const HEADER_TOPIC: &str = "realstat-source-topic";
pub const HEADER_PARTITION: &str = "realstat-source-partition";
pub const HEADER_OFFSET: &str = "realstat-source-offset";

const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct DeadLetters {
    producer: Option<(ThreadedProducer<DefaultProducerContext>, String)>,
    /// Rejections since the last log line, and when that was.
    unlogged: u64,
    last_log: Option<Instant>,
}

/// Where a rejected message came from.
pub struct Origin<'a> {
    pub topic: &'a str,
    pub partition: Partition,
    pub offset: Offset,
}

impl DeadLetters {
    /// Rejections are counted and logged only.
    pub fn log_only() -> Self {
        DeadLetters {
            producer: None,
            unlogged: 0,
            last_log: None,
        }
    }

    /// Rejections are also copied to `topic` by `producer` (see `kafka::Role::DeadLetters`).
    pub fn to_topic(producer: ThreadedProducer<DefaultProducerContext>, topic: &str) -> Self {
        DeadLetters {
            producer: Some((producer, topic.to_owned())),
            ..Self::log_only()
        }
    }

    pub fn reject(
        &mut self,
        reason: Rejection,
        payload: &[u8],
        key: Option<&[u8]>,
        origin: Origin<'_>,
    ) -> bool {
        self.unlogged += 1;
        if self.last_log.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
            // One line per interval, whatever the rate: a flood of bad events must not flood logs.
            tracing::warn!(
                reason = reason.label(),
                partition = origin.partition.0,
                offset = origin.offset.0,
                rejected_since_last_line = self.unlogged,
                "event rejected"
            );
            self.unlogged = 0;
            self.last_log = Some(Instant::now());
        }
        let Some((producer, topic)) = &self.producer else {
            return true;
        };
        let partition = origin.partition.to_string();
        let offset = origin.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: HEADER_REASON,
                value: Some(reason.label()),
            })
            .insert(Header {
                key: HEADER_TOPIC,
                value: Some(origin.topic),
            })
            .insert(Header {
                key: HEADER_PARTITION,
                value: Some(&partition),
            })
            .insert(Header {
                key: HEADER_OFFSET,
                value: Some(&offset),
            });
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
            .payload(payload)
            .headers(headers);
        if let Some(k) = key {
            record = record.key(k);
        }
        producer.send(record).is_ok()
    }

    /// Waits (bounded) for queued copies to be delivered, on shutdown.
    pub fn flush(&self) {
        if let Some((p, _)) = &self.producer {
            let _ = p.flush(Duration::from_secs(5));
        }
    }
}

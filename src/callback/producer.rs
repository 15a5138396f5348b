//! Writes a push's events (and the dead-letter copies of its refused records) to Kafka and
//! waits, at most the deadline, until every one is acknowledged by all in-sync replicas.
//!
//! An acknowledgement to iSales is a promise that the record is on the topic: so `acks=all` and
//! the idempotent producer (a librdkafka retry cannot duplicate or reorder), and the answer waits
//! for every delivery report. librdkafka is told the same deadline (`message.timeout.ms`), so a
//! message it could not deliver in time is dropped from its queue rather than piling up during
//! an outage; iSales pushes it again.
//!
//! After a failed push the producer is replaced: at once when librdkafka declares it fatally
//! failed, otherwise at most once per [`REPLACE_AT_MOST_EVERY`]. A push fails when the broker
//! is away or refuses, and afterwards the producer's idempotence state (its producer id and
//! sequences) is in doubt: a broker restarted without that state may refuse the old id in a way
//! librdkafka does not recover from (tansu after a kill -9 fails every produce of the old id,
//! and its own storage with it), while a new producer starts a new session. The cost is one
//! `InitProducerId`. A record written by both producers could be on the topic twice; the
//! event's `eventId` is derived from the record, so the fold counts it once.

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};

use super::mapping::{Message, Refused};
use crate::ingest::dead_letter::HEADER_REASON;
use crate::ingest::kafka::{client_config, Role};

/// The dead-letter header that says a copy came from the callback, not from the event topic.
pub const HEADER_SOURCE: &str = "realstat-source";
pub const SOURCE_CALLBACK: &str = "isales-callback";

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create the callback producer: {0}")]
    Create(#[source] KafkaError),
    #[error("Kafka did not take the message: {0}")]
    Enqueue(#[source] KafkaError),
    #[error("Kafka refused the message: {0}")]
    Delivery(#[source] KafkaError),
    #[error("the producer was stopped")]
    Stopped,
    #[error("not acknowledged within {0:?}")]
    Deadline(Duration),
}

/// rdkafka's futures on tokio (its `tokio` feature is off in this build): used only by
/// `FutureProducer::send`'s queue wait, which the writer does not call.
pub struct TokioRuntime;

impl rdkafka::util::AsyncRuntime for TokioRuntime {
    type Delay = tokio::time::Sleep;

    fn spawn<T>(task: T)
    where
        T: std::future::Future<Output = ()> + Send + 'static,
    {
        tokio::spawn(task);
    }

    fn delay_for(duration: Duration) -> Self::Delay {
        tokio::time::sleep(duration)
    }
}

type Producer = FutureProducer<rdkafka::client::DefaultClientContext, TokioRuntime>;

/// How often a producer may be replaced after failed pushes: during an outage, or with a refusal
/// a new producer cannot cure either (a topic not authorized), not every push makes a new one.
pub const REPLACE_AT_MOST_EVERY: Duration = Duration::from_secs(5);

pub struct Writer {
    /// Replaced whole when librdkafka declares it fatally failed (an idempotent producer whose
    /// sequence the broker lost, e.g. after a broker restart without its state): a fatal
    /// producer never delivers again, so without this every later push would be refused.
    producer: RwLock<Arc<Producer>>,
    config: ClientConfig,
    topic: String,
    dead_letter_topic: Option<String>,
    deadline: Duration,
    /// When the producer was last replaced after a failed push.
    replaced_at: Mutex<Option<Instant>>,
}

impl Writer {
    /// A producer on `brokers` with the operator's `properties`, then ours: the guarantees are
    /// not the operator's to weaken.
    pub fn new(
        brokers: &str,
        properties: &[(String, String)],
        topic: &str,
        dead_letter_topic: Option<&str>,
        deadline: Duration,
    ) -> Result<Writer, WriteError> {
        let ms = deadline.as_millis().clamp(1, i32::MAX as u128).to_string();
        let mut config = client_config(brokers, properties, Role::DeadLetters);
        config
            .set("client.id", "realstat-callback")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", &ms);
        let producer = config.create().map_err(WriteError::Create)?;
        Ok(Writer {
            producer: RwLock::new(Arc::new(producer)),
            config,
            topic: topic.to_owned(),
            dead_letter_topic: dead_letter_topic.map(str::to_owned),
            deadline,
            replaced_at: Mutex::new(None),
        })
    }

    /// Hands every message to librdkafka at once, then waits for all the delivery reports
    /// within the deadline. Refused records go to the dead-letter topic when there is one.
    pub async fn write(&self, events: &[Message], refused: &[Refused]) -> Result<(), WriteError> {
        let producer = Arc::clone(&self.producer.read().unwrap_or_else(PoisonError::into_inner));
        let written = self.write_with(&producer, events, refused).await;
        if let Err(e) = &written {
            if let Some(why) = self.replacement_reason(&producer, e) {
                self.replace(&producer, &why);
            }
        }
        release(producer);
        written
    }

    async fn write_with(
        &self,
        producer: &Producer,
        events: &[Message],
        refused: &[Refused],
    ) -> Result<(), WriteError> {
        let mut pending = Vec::with_capacity(events.len() + refused.len());
        for e in events {
            pending.push(enqueue(producer, &self.topic, e, None)?);
        }
        if let Some(dlq) = &self.dead_letter_topic {
            for r in refused {
                pending.push(enqueue(producer, dlq, &r.copy, Some(r.reason.label()))?);
            }
        }
        let all = async {
            for delivery in pending {
                match delivery.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => return Err(WriteError::Delivery(e)),
                    Err(_) => return Err(WriteError::Stopped),
                }
            }
            Ok(())
        };
        tokio::time::timeout(self.deadline, all)
            .await
            .unwrap_or(Err(WriteError::Deadline(self.deadline)))
    }

    /// Why `failed` should be replaced after `error`, if it should.
    fn replacement_reason(&self, failed: &Producer, error: &WriteError) -> Option<String> {
        if let Some((code, reason)) = failed.client().fatal_error() {
            return Some(format!("fatal error {code:?}: {reason}"));
        }
        let mut last = self
            .replaced_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < REPLACE_AT_MOST_EVERY) {
            return None;
        }
        *last = Some(Instant::now());
        Some(format!("a push failed: {error}"))
    }

    /// A new producer in place of `failed`, unless another push replaced it already.
    fn replace(&self, failed: &Arc<Producer>, why: &str) {
        let mut slot = self
            .producer
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if !Arc::ptr_eq(&slot, failed) {
            return;
        }
        // Creating one does not wait for the broker: it connects in the background.
        match self.config.create::<Producer>() {
            Ok(fresh) => {
                let old = std::mem::replace(&mut *slot, Arc::new(fresh));
                drop(slot);
                tracing::warn!(reason = why, "callback producer replaced");
                release(old);
            }
            Err(e) => {
                tracing::error!(reason = why, error = %e, "callback producer cannot be recreated")
            }
        }
    }
}

/// Lets go of a handle on a producer. The last handle of a replaced producer destroys it on a
/// thread of its own: librdkafka's destroy purges, flushes (up to 500 ms) and joins its threads,
/// which must not stall an HTTP worker.
fn release(producer: Arc<Producer>) {
    if let Some(last) = Arc::into_inner(producer) {
        std::thread::spawn(move || drop(last));
    }
}

fn enqueue(
    producer: &Producer,
    topic: &str,
    m: &Message,
    reason: Option<&str>,
) -> Result<DeliveryFuture, WriteError> {
    let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(topic).payload(&m.payload);
    if let Some(k) = &m.key {
        record = record.key(k.as_str());
    }
    if let Some(reason) = reason {
        record = record.headers(
            OwnedHeaders::new()
                .insert(Header {
                    key: HEADER_REASON,
                    value: Some(reason),
                })
                .insert(Header {
                    key: HEADER_SOURCE,
                    value: Some(SOURCE_CALLBACK),
                }),
        );
    }
    producer
        .send_result(record)
        .map_err(|(e, _)| WriteError::Enqueue(e))
}

#[cfg(all(test, feature = "dev"))]
mod tests {
    use super::*;

    use crate::dev::embedded::EmbeddedKafka;

    /// A mock cluster with topic `t`, a writer to it with `deadline`, and one event to write.
    fn writer_to_mock(deadline: Duration) -> (EmbeddedKafka, Writer, Message) {
        let kafka = EmbeddedKafka::start().expect("mock cluster");
        kafka.create_topic("t", 1).expect("topic");
        let writer =
            Writer::new(kafka.bootstrap_servers(), &[], "t", None, deadline).expect("writer");
        let event = Message {
            key: Some("1:92:1".into()),
            payload: b"{}".to_vec(),
        };
        (kafka, writer, event)
    }

    /// A producer librdkafka declares fatally failed is replaced, so pushes are stored again.
    #[tokio::test]
    async fn a_fatally_failed_producer_is_replaced() {
        let (_kafka, writer, event) = writer_to_mock(Duration::from_secs(5));
        writer
            .write(std::slice::from_ref(&event), &[])
            .await
            .expect("stored");
        let first = Arc::clone(&writer.producer.read().expect("lock"));
        let reason = std::ffi::CString::new("test").expect("text");
        // SAFETY: a live client handle and a NUL-terminated string; librdkafka's own test hook.
        unsafe {
            rdkafka::bindings::rd_kafka_test_fatal_error(
                first.client().native_ptr(),
                rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                reason.as_ptr(),
            );
        }
        assert!(
            writer
                .write(std::slice::from_ref(&event), &[])
                .await
                .is_err(),
            "refused while fatal"
        );
        assert!(!Arc::ptr_eq(&first, &writer.producer.read().expect("lock")));
        writer
            .write(&[event], &[])
            .await
            .expect("stored by the new producer");
    }

    /// A push that fails for want of a broker replaces the producer, once per
    /// REPLACE_AT_MOST_EVERY however many pushes fail; with the broker back, pushes are stored.
    #[tokio::test]
    async fn a_push_refused_in_an_outage_replaces_the_producer_at_most_every_few_seconds() {
        let (kafka, writer, event) = writer_to_mock(Duration::from_secs(2));
        let current = || Arc::clone(&writer.producer.read().expect("lock"));
        writer
            .write(std::slice::from_ref(&event), &[])
            .await
            .expect("stored");
        let first = current();
        kafka.brokers_down().expect("down");
        assert!(writer
            .write(std::slice::from_ref(&event), &[])
            .await
            .is_err());
        let second = current();
        assert!(
            !Arc::ptr_eq(&first, &second),
            "replaced after the failed push"
        );
        assert!(writer
            .write(std::slice::from_ref(&event), &[])
            .await
            .is_err());
        assert!(
            Arc::ptr_eq(&second, &current()),
            "not again within the interval"
        );
        kafka.brokers_up().expect("up");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while writer
            .write(std::slice::from_ref(&event), &[])
            .await
            .is_err()
        {
            assert!(std::time::Instant::now() < deadline, "never stored again");
        }
    }
}

//! Writes a push's events (and the dead-letter copies of its refused records) to Kafka and
//! waits, at most the deadline, until every one is acknowledged by all in-sync replicas.
//!
//! An acknowledgement to iSales is a promise that the record is on the topic: so `acks=all` and
//! the idempotent producer (a librdkafka retry cannot duplicate or reorder), and the answer waits
//! for every delivery report. librdkafka is told the same deadline (`message.timeout.ms`), so a
//! message it could not deliver in time is dropped from its queue rather than piling up during
//! an outage; iSales pushes it again.

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

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

pub struct Writer {
    producer: Producer,
    topic: String,
    dead_letter_topic: Option<String>,
    deadline: Duration,
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
        let producer = client_config(brokers, properties, Role::DeadLetters)
            .set("client.id", "realstat-callback")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", &ms)
            .create()
            .map_err(WriteError::Create)?;
        Ok(Writer {
            producer,
            topic: topic.to_owned(),
            dead_letter_topic: dead_letter_topic.map(str::to_owned),
            deadline,
        })
    }

    /// Hands every message to librdkafka at once, then waits for all the delivery reports
    /// within the deadline. Refused records go to the dead-letter topic when there is one.
    pub async fn write(&self, events: &[Message], refused: &[Refused]) -> Result<(), WriteError> {
        let mut pending = Vec::with_capacity(events.len() + refused.len());
        for e in events {
            pending.push(self.enqueue(&self.topic, e, None)?);
        }
        if let Some(dlq) = &self.dead_letter_topic {
            for r in refused {
                pending.push(self.enqueue(dlq, &r.copy, Some(r.reason.label()))?);
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

    fn enqueue(
        &self,
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
        self.producer
            .send_result(record)
            .map_err(|(e, _)| WriteError::Enqueue(e))
    }
}

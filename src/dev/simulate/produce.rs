//! Producing simulated (or given) events to Kafka: [`produce`] runs a [`Simulator`] against the
//! wall clock, [`produce_raw`] writes given messages verbatim.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::ClientContext;

use super::{SimulateOptions, Simulator};
use crate::shutdown::Shutdown;

#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    #[error("kafka producer: {0}")]
    Kafka(#[from] KafkaError),
    #[error("{failed} of {total} messages were not delivered (first error: {first})")]
    Delivery {
        failed: u64,
        total: u64,
        first: String,
    },
    #[error("{pending} messages still undelivered after waiting {waited:?}")]
    Flush { pending: u64, waited: Duration },
}

/// What [`produce`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulateReport {
    /// Events handed to the producer, redeliveries included.
    pub events_sent: u64,
    /// Of which redeliveries.
    pub duplicates_sent: u64,
    /// Events the broker acknowledged.
    pub delivered: u64,
    /// Events whose delivery failed (logged).
    pub delivery_failures: u64,
    pub calls_started: u64,
    pub calls_resolved: u64,
    pub elapsed: Duration,
}

/// Producer context counting delivery reports and forwarding librdkafka's logs to `tracing`.
#[derive(Default)]
struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl DeliveryCounter {
    fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }
    fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
    fn first_error(&self) -> String {
        self.first_error
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .unwrap_or_default()
    }
}

impl ClientContext for DeliveryCounter {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "{fac} {log_message}")
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{fac} {log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{fac} {log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{fac} {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", %error, "producer error: {reason}");
    }
}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((err, _)) => {
                let n = self.failed.fetch_add(1, Ordering::Relaxed);
                if n < 10 {
                    tracing::warn!(error = %err, "simulate: message not delivered");
                }
                if let Ok(mut first) = self.first_error.lock() {
                    if first.is_none() {
                        *first = Some(err.to_string());
                    }
                }
            }
        }
    }
}

fn create_producer(
    brokers: &str,
    extra: &[(String, String)],
    defaults: &[(&str, &str)],
) -> Result<BaseProducer<DeliveryCounter>, SimulateError> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (k, v) in defaults {
        config.set(*k, *v);
    }
    for (k, v) in extra {
        config.set(k, v);
    }
    Ok(config.create_with_context(DeliveryCounter::default())?)
}

/// Hands one message to the producer, waiting while its queue is full. `Ok(false)`: `stop` was
/// set while waiting.
fn send_retrying(
    producer: &BaseProducer<DeliveryCounter>,
    mut record: BaseRecord<'_, str, [u8]>,
    stop: Option<&Shutdown>,
) -> Result<bool, SimulateError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(true),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(50));
                if stop.is_some_and(Shutdown::is_triggered) {
                    return Ok(false);
                }
            }
            Err((err, _)) => return Err(err.into()),
        }
    }
}

fn wall_clock_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs a [`Simulator`] against the wall clock (a step every ~50 ms) and produces its events to
/// `topic`, keyed, until `stop` is set or `max_calls` calls have ended; then flushes. `extra` are
/// librdkafka properties, set verbatim after `bootstrap.servers`.
pub fn produce(
    brokers: &str,
    topic: &str,
    extra: &[(String, String)],
    opts: SimulateOptions,
    stop: &Shutdown,
) -> Result<SimulateReport, SimulateError> {
    // linger.ms 0: hand each event to the broker at once, like the per-event sends of a call
    // platform; librdkafka's default 5 ms batching would show up as event-to-visible delay.
    let producer = create_producer(brokers, extra, &[("linger.ms", "0")])?;
    let mut sim = Simulator::new(opts);
    let mut batch = Vec::new();
    let mut report = SimulateReport::default();
    let started = Instant::now();
    let mut last_log = started;
    tracing::info!(
        brokers,
        topic,
        tasks = sim.options().tasks.len(),
        calls_per_second = sim.options().calls_per_second,
        max_calls = ?sim.options().max_calls,
        "simulate: producing"
    );

    'run: while !stop.is_triggered() {
        sim.step(wall_clock_ms(), &mut batch);
        for ev in batch.drain(..) {
            let record = BaseRecord::to(topic)
                .key(ev.key.as_str())
                .payload(ev.payload.as_slice());
            if !send_retrying(&producer, record, Some(stop))? {
                break 'run;
            }
            report.events_sent += 1;
        }
        if sim.is_done() {
            break;
        }
        // Wake when the next event is due (at most 50 ms later, to serve delivery reports and
        // the stop signal): an event sent late would carry an old `ts`, and the demo's
        // event-to-visible delay would show the simulator's sleep instead of the service's.
        let due = sim
            .next_due_ms()
            .map_or(50, |at| (at - wall_clock_ms()).clamp(0, 50));
        producer.poll(Duration::from_millis(u64::try_from(due).unwrap_or(0)));
        if last_log.elapsed() >= Duration::from_secs(10) {
            last_log = Instant::now();
            let ctx = producer.context();
            tracing::info!(
                events_sent = report.events_sent,
                delivered = ctx.delivered(),
                failed = ctx.failed(),
                calls_started = sim.calls_started(),
                calls_resolved = sim.calls_resolved(),
                active_calls = sim.active_calls(),
                "simulate: progress"
            );
        }
    }
    finish(&producer, &sim, report, started)
}

/// Flushes what is queued and completes the report with the delivery outcome.
fn finish(
    producer: &BaseProducer<DeliveryCounter>,
    sim: &Simulator,
    mut report: SimulateReport,
    started: Instant,
) -> Result<SimulateReport, SimulateError> {
    let flushed = producer.flush(FLUSH_TIMEOUT);
    let ctx = producer.context();
    report.duplicates_sent = sim.duplicates_emitted();
    report.delivered = ctx.delivered();
    report.delivery_failures = ctx.failed();
    report.calls_started = sim.calls_started();
    report.calls_resolved = sim.calls_resolved();
    report.elapsed = started.elapsed();
    if flushed.is_err() {
        return Err(SimulateError::Flush {
            pending: u64::try_from(producer.in_flight_count()).unwrap_or(0),
            waited: FLUSH_TIMEOUT,
        });
    }
    if report.delivery_failures > 0 {
        tracing::error!(
            failed = report.delivery_failures,
            first_error = %ctx.first_error(),
            "simulate: some events were not delivered"
        );
    }
    tracing::info!(
        events_sent = report.events_sent,
        delivered = report.delivered,
        failed = report.delivery_failures,
        calls_started = report.calls_started,
        calls_resolved = report.calls_resolved,
        "simulate: done"
    );
    Ok(report)
}

/// Produces exactly these messages (key, explicit partition, value; `None` key: no key, `None`
/// partition: librdkafka's partitioner) in order, waits for every delivery report and fails if
/// any delivery failed. `message.timeout.ms` defaults to 30 s here (overridable by `extra`).
pub fn produce_raw(
    brokers: &str,
    topic: &str,
    extra: &[(String, String)],
    messages: &[(Option<&str>, Option<i32>, &[u8])],
) -> Result<(), SimulateError> {
    let producer = create_producer(brokers, extra, &[("message.timeout.ms", "30000")])?;
    for (key, partition, payload) in messages {
        let mut record = BaseRecord::<str, [u8]>::to(topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = partition {
            record = record.partition(*partition);
        }
        send_retrying(&producer, record, None)?;
        producer.poll(Duration::ZERO);
    }
    // Wait longer than the message timeout, so that every message gets its delivery report.
    let timeout_ms = extra
        .iter()
        .rev()
        .find(|(k, _)| k == "message.timeout.ms" || k == "delivery.timeout.ms")
        .and_then(|(_, v)| v.trim().parse::<u64>().ok())
        .unwrap_or(30_000);
    let waited = Duration::from_millis(timeout_ms.saturating_add(10_000));
    let flushed = producer.flush(waited);
    let total = messages.len() as u64;
    let ctx = producer.context();
    if ctx.failed() > 0 {
        return Err(SimulateError::Delivery {
            failed: ctx.failed(),
            total,
            first: ctx.first_error(),
        });
    }
    if flushed.is_err() || ctx.delivered() < total {
        return Err(SimulateError::Flush {
            pending: total.saturating_sub(ctx.delivered()),
            waited,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::simulate::tests::{check_schema, run};
    use crate::dev::simulate::SimEvent;
    use std::collections::HashMap;

    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::mocking::MockCluster;
    use rdkafka::{Offset, TopicPartitionList};

    fn consume_all(
        brokers: &str,
        topic: &str,
        partitions: i32,
        n: usize,
    ) -> Vec<(i32, Option<String>, Vec<u8>)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "realstat-simulate-test")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, Offset::Beginning)
                .expect("partition offset");
        }
        consumer.assign(&tpl).expect("assign");
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = Vec::new();
        while got.len() < n && Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => got.push((
                    m.partition(),
                    m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    m.payload().unwrap_or_default().to_vec(),
                )),
                Some(Err(e)) => panic!("consume: {e}"),
                None => {}
            }
        }
        got
    }

    #[test]
    fn produce_raw_to_mock_cluster() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let topic = "isales.call-events";
        cluster.create_topic(topic, 3, 1).expect("topic");
        let brokers = cluster.bootstrap_servers();

        let opts = SimulateOptions::default();
        let (_, events) = run(opts, 5);
        let mut messages: Vec<(Option<&str>, Option<i32>, &[u8])> = events
            .iter()
            .map(|e| (Some(e.key.as_str()), None, e.payload.as_slice()))
            .collect();
        messages.push((None, Some(2), b"not json"));
        messages.push((Some("x"), Some(1), b""));
        produce_raw(&brokers, topic, &[], &messages).expect("produce_raw");

        let got = consume_all(&brokers, topic, 3, messages.len());
        assert_eq!(got.len(), messages.len());
        // Every message arrived once, with its key; one key stays on one partition.
        let mut expected: Vec<(Option<String>, Vec<u8>)> = messages
            .iter()
            .map(|(k, _, p)| (k.map(str::to_owned), p.to_vec()))
            .collect();
        let mut actual: Vec<(Option<String>, Vec<u8>)> =
            got.iter().map(|(_, k, p)| (k.clone(), p.clone())).collect();
        expected.sort();
        actual.sort();
        assert_eq!(expected, actual);
        let mut partition_of_key: HashMap<&str, i32> = HashMap::new();
        for (p, k, payload) in &got {
            match (k.as_deref(), payload.as_slice()) {
                (None, b"not json") => assert_eq!(*p, 2),
                (Some("x"), b"") => assert_eq!(*p, 1),
                (Some(k), _) => {
                    assert_eq!(*partition_of_key.entry(k).or_insert(*p), *p, "key {k}");
                }
                other => panic!("unexpected message {other:?}"),
            }
        }
        // Within a partition, the order of production is kept.
        for key in partition_of_key.keys() {
            let sent: Vec<&[u8]> = messages
                .iter()
                .filter(|(k, _, _)| *k == Some(*key))
                .map(|(_, _, p)| *p)
                .collect();
            let read: Vec<&[u8]> = got
                .iter()
                .filter(|(_, k, _)| k.as_deref() == Some(*key))
                .map(|(_, _, p)| p.as_slice())
                .collect();
            assert_eq!(sent, read);
        }
    }

    #[test]
    fn produce_raw_fails_on_unknown_partition() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("t", 1, 1).expect("topic");
        let brokers = cluster.bootstrap_servers();
        let extra = [("message.timeout.ms".to_owned(), "2000".to_owned())];
        let err = produce_raw(&brokers, "t", &extra, &[(None, Some(7), b"{}".as_slice())])
            .expect_err("partition 7 does not exist");
        // Rejected when enqueued if the producer already knows the topic, else on delivery.
        assert!(
            matches!(
                err,
                SimulateError::Delivery {
                    failed: 1,
                    total: 1,
                    ..
                } | SimulateError::Kafka(KafkaError::MessageProduction(
                    RDKafkaErrorCode::UnknownPartition
                ))
            ),
            "{err}"
        );
    }

    #[test]
    fn produce_runs_until_stopped() {
        let cluster = MockCluster::new(1).expect("mock cluster");
        let topic = "sim";
        cluster.create_topic(topic, 3, 1).expect("topic");
        let brokers = cluster.bootstrap_servers();
        let stop = Shutdown::new();
        let stopper = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(1500));
                stop.trigger();
            })
        };
        let opts = SimulateOptions {
            calls_per_second: 100.0,
            duplicate_ratio: 0.1,
            ..SimulateOptions::default()
        };
        let report = produce(&brokers, topic, &[], opts.clone(), &stop).expect("produce");
        stopper.join().expect("stopper");
        assert!(report.calls_started > 50, "{report:?}");
        assert!(report.events_sent > report.calls_started);
        assert_eq!(report.delivered, report.events_sent);
        assert_eq!(report.delivery_failures, 0);

        let got = consume_all(&brokers, topic, 3, report.events_sent as usize);
        assert_eq!(got.len() as u64, report.events_sent);
        for (_, key, payload) in got {
            let ev = SimEvent {
                key: key.expect("keyed"),
                payload,
            };
            check_schema(&ev, &opts);
        }
    }
}

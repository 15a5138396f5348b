//! The end offsets of every partition, read on a thread of its own for the lag metrics.
//!
//! Asking the broker for a partition's end offset is a round trip that queues behind the
//! consumer's pending fetch on the same connection; done on the consumer thread it stalled
//! ingestion (measured: most of a catch-up spent there with many partitions). Here it costs the
//! consumer nothing, and a broker outage shows up as errors and growing lag, not as a stall.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;

use super::Positions;
use crate::metrics::Metrics;

const EVERY: Duration = Duration::from_secs(5);
const TIMEOUT: Duration = Duration::from_secs(1);

pub type Ends = Arc<Mutex<BTreeMap<i32, i64>>>;

pub struct EndOffsets {
    thread: Option<JoinHandle<()>>,
}

impl EndOffsets {
    pub fn start(
        client: &ClientConfig,
        topic: String,
        metrics: Arc<Metrics>,
        positions: Arc<Mutex<Positions>>,
        ends: Ends,
        stop: Arc<AtomicBool>,
    ) -> Result<EndOffsets, KafkaError> {
        let consumer: BaseConsumer = client.create()?;
        let thread = std::thread::Builder::new()
            .name("end-offsets".into())
            .spawn(move || {
                let mut last = Instant::now();
                while !stop.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(100));
                    if last.elapsed() < EVERY {
                        continue;
                    }
                    last = Instant::now();
                    refresh(&consumer, &topic, &metrics, &positions, &ends);
                }
            })
            .map_err(|e| KafkaError::ClientCreation(e.to_string()))?;
        Ok(EndOffsets {
            thread: Some(thread),
        })
    }

    /// Waits for the thread (the caller has set the shared stop flag).
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn refresh(
    consumer: &BaseConsumer,
    topic: &str,
    metrics: &Metrics,
    positions: &Mutex<Positions>,
    ends: &Mutex<BTreeMap<i32, i64>>,
) {
    let partitions: Vec<i32> = match consumer.fetch_metadata(Some(topic), TIMEOUT) {
        Ok(md) => md
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect(),
        Err(e) => {
            metrics
                .consumer_errors
                .with_label_values(&["watermarks"])
                .inc();
            tracing::warn!(error = %e, "cannot read end offsets");
            return;
        }
    };
    for p in partitions {
        match consumer.fetch_watermarks(topic, p, TIMEOUT) {
            Ok((low, high)) => {
                if let Ok(mut e) = ends.lock() {
                    e.insert(p, high);
                }
                let next = positions
                    .lock()
                    .ok()
                    .and_then(|pos| pos.get(&p).copied())
                    .unwrap_or(low)
                    .max(low);
                let label = p.to_string();
                metrics
                    .partition_end_offset
                    .with_label_values(&[&label])
                    .set(high);
                metrics
                    .partition_lag
                    .with_label_values(&[&label])
                    .set((high - next).max(0));
            }
            Err(e) => {
                metrics
                    .consumer_errors
                    .with_label_values(&["watermarks"])
                    .inc();
                tracing::warn!(partition = p, error = %e, "cannot read end offset");
                // The broker is likely away: try again next round, not once per partition.
                return;
            }
        }
    }
}

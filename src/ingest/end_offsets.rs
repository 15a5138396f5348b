//! The end offsets of every partition, read on a thread of its own for the lag metrics.
//!
//! Asking the broker for a partition's end offset is a round trip that queues behind the
//! consumer's pending fetch on the same connection; done on the consumer thread it stalled
//! ingestion (measured: most of a catch-up spent there with many partitions). Here it costs the
//! consumer nothing, and a broker outage shows up as errors and growing lag, not as a stall.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::{kafka, lock, publish_progress, Bounds, Ends};
use crate::metrics::{ConsumerError, Metrics};
use crate::progress::Positions;
use crate::shutdown::Shutdown;

/// Also how often the view's age can be confirmed: it reads 0-2 s on a replica that keeps up.
const EVERY: Duration = Duration::from_secs(2);
const TIMEOUT: Duration = Duration::from_secs(1);

pub(super) struct Reader {
    pub consumer: BaseConsumer,
    pub topic: String,
    pub metrics: Arc<Metrics>,
    pub positions: Arc<Mutex<Positions>>,
    pub ends: Ends,
    /// When the last complete reading of every end began (ms since the epoch).
    pub ends_read_at: Arc<AtomicI64>,
}

impl Reader {
    pub fn run(self, stop: &Shutdown) {
        while !stop.sleep(EVERY) {
            self.refresh();
        }
    }

    fn refresh(&self) {
        let started = crate::clock::now_ms();
        let partitions = match kafka::partitions(&self.consumer, &self.topic, TIMEOUT) {
            Ok(p) => p,
            Err(e) => {
                self.metrics.consumer_error(ConsumerError::Watermarks);
                tracing::warn!(error = %e, "cannot read end offsets");
                return;
            }
        };
        for p in partitions {
            match self.consumer.fetch_watermarks(&self.topic, p.0, TIMEOUT) {
                Ok(offsets) => {
                    lock(&self.ends).insert(p, Bounds::from_watermarks(offsets));
                }
                Err(e) => {
                    self.metrics.consumer_error(ConsumerError::Watermarks);
                    tracing::warn!(partition = p.0, error = %e, "cannot read end offset");
                    // The broker is likely away: try again next round, not once per partition.
                    return;
                }
            }
        }
        self.ends_read_at.store(started, Ordering::Release);
        let positions = lock(&self.positions).clone();
        publish_progress(&self.metrics, &positions, &self.ends, None);
    }
}

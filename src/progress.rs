//! How far the replica has read the log, and whether it is ready: the two facts that ingest
//! produces and that the HTTP listeners and the snapshotter read. They live here, not in
//! `ingest`, so that those readers depend on the facts and not on the Kafka consumer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// Next offset to read, per partition: the replica's position in the log.
pub type Positions = BTreeMap<i32, i64>;

/// False until the consumer has caught up with the log once; then true for good (a broker
/// outage leaves the numbers as they are, which is better than no numbers).
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

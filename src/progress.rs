//! How far the replica has read the log, and whether it is ready: the two facts that ingest
//! produces and that the HTTP listeners and the snapshotter read. They live here, not in
//! `ingest`, so that those readers depend on the facts and not on the Kafka consumer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::log_position::{Offset, Partition};

/// Next offset to read, per partition: the replica's position in the log.
pub type Positions = BTreeMap<Partition, Offset>;

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

/// "The store may have changed": bumped by the consumer after each batch it folded and each
/// maintenance pass that expired or dropped calls. Live streams wait on it, then compare their
/// tasks' change numbers, so the fold itself never wakes anyone.
#[derive(Debug)]
pub struct Changes {
    tx: tokio::sync::watch::Sender<u64>,
}

impl Default for Changes {
    fn default() -> Self {
        Changes {
            tx: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Changes {
    /// Wakes every subscriber (cheap when there is none).
    pub fn bump(&self) {
        self.tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every later [`Changes::bump`] (several coalesce into one wake).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

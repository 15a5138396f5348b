//! How far the replica has read the log, and whether it is ready: the two facts that ingest
//! produces and that the HTTP listeners and the snapshotter read. They live here, not in
//! `ingest`, so that those readers depend on the facts and not on the Kafka consumer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use crate::log_position::{Offset, Partition};

/// Next offset to read, per partition: the replica's position in the log.
pub type Positions = BTreeMap<Partition, Offset>;

/// Whether the replica may answer, and how fresh its view is.
///
/// Ready: false until the consumer has caught up with the log once; then true, through broker
/// outages (the numbers as they are beat no numbers; the view's age tells how old they are),
/// until the topic is found recreated: then false again until the re-read reaches the end.
///
/// The view's age: the time since the replica last confirmed that it had read everything the
/// log held at some moment. Before the first confirmation it counts from the start.
#[derive(Debug)]
pub struct Readiness {
    ready: AtomicBool,
    /// When the log held nothing the replica has not read (ms since the epoch).
    confirmed_ms: AtomicI64,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            ready: AtomicBool::new(false),
            confirmed_ms: AtomicI64::new(crate::clock::now_ms()),
        }
    }
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// The log no longer matches what was read (a recreated topic): answers would be short
    /// until it is read again.
    pub fn set_unready(&self) {
        self.ready.store(false, Ordering::Release);
    }

    /// Everything the log held at `at_ms` (ms since the epoch) has been read.
    pub fn confirm_view(&self, at_ms: i64) {
        self.confirmed_ms.fetch_max(at_ms, Ordering::AcqRel);
    }

    /// Whether the view is already confirmed as of `at_ms` or later.
    pub fn is_confirmed_at(&self, at_ms: i64) -> bool {
        self.confirmed_ms.load(Ordering::Acquire) >= at_ms
    }

    /// Milliseconds since the last [`Readiness::confirm_view`], at `now_ms`.
    pub fn view_age_ms(&self, now_ms: i64) -> i64 {
        now_ms
            .saturating_sub(self.confirmed_ms.load(Ordering::Acquire))
            .max(0)
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

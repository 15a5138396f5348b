//! One open stream: wakes when the consumer has folded a batch, finds which of its tasks changed
//! by their change numbers, and sends their rows, at most one event per task per [`COALESCE`].
//!
//! Bounded by design: what a stream holds is one row per task; what it has sent but the client
//! has not read yet sits in a channel of [`OUTBOX`] chunks (and the sockets' buffers). A reader
//! that lets the channel fill up is dropped ([`StreamEnd::SlowReader`]) rather than buffered
//! for. The key is looked up again on every wake and heartbeat: a key removed (or given another
//! secret, or a scope without this VDN) by a key rotation ends the stream.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use actix_web::web::Bytes;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, watch};
use tokio::time::{Duration, Instant};

use crate::api::batch::Batch;
use crate::api::response::Row;
use crate::api::{today, ApiState};
use crate::auth::{KeyEntry, Keys};
use crate::events::ids::TaskKey;
use crate::fold::{Day, Store};
use crate::progress::Changes;
use crate::shutdown::Shutdown;

/// Chunks sent and not yet taken by the connection; a full outbox drops the stream.
pub const OUTBOX: usize = 32;
/// Least time between two events of one task.
pub const COALESCE: Duration = Duration::from_millis(250);
/// A comment line this often keeps proxies from closing an idle stream.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Least time between two reads of the change numbers: a burst of batches costs one read.
const SCAN_GAP: Duration = Duration::from_millis(20);

/// Why a stream ended: a label of the metrics, so defined there, once.
pub use crate::metrics::StreamEnd;

/// What a feed reads besides its request: the store, the live keys, the change signal and the
/// process's stop signal.
pub struct Sources<'a> {
    pub store: Arc<Store>,
    pub keys: Keys,
    pub changes: &'a Changes,
    pub shutdown: Shutdown,
}

pub struct Feed {
    store: Arc<Store>,
    keys: Keys,
    key: Arc<KeyEntry>,
    changes: watch::Receiver<u64>,
    shutdown: Shutdown,
    tx: mpsc::Sender<Bytes>,
    cc_id: u16,
    vdn: u16,
    tasks: Vec<TaskKey>,
    /// Per task: the change number last read, the row last sent and when, whether to look again.
    seen: Vec<u64>,
    sent: Vec<Option<Row>>,
    sent_at: Vec<Option<Instant>>,
    dirty: Vec<bool>,
    day: Day,
    last_id: u64,
    scratch: Vec<u64>,
}

impl Feed {
    pub fn new(
        state: &ApiState,
        key: Arc<KeyEntry>,
        batch: &Batch,
        tx: mpsc::Sender<Bytes>,
    ) -> Feed {
        let sources = Sources {
            store: state.store.clone(),
            keys: state.keys.clone(),
            changes: &state.changes,
            shutdown: state.shutdown.clone(),
        };
        Feed::from_sources(sources, key, batch, tx)
    }

    pub fn from_sources(
        sources: Sources<'_>,
        key: Arc<KeyEntry>,
        batch: &Batch,
        tx: mpsc::Sender<Bytes>,
    ) -> Feed {
        let tasks = batch.keys();
        let n = tasks.len();
        Feed {
            day: today(&sources.store, batch.cc_id, batch.vdn),
            store: sources.store,
            keys: sources.keys,
            key,
            // Subscribed before the first read: no change after it can be missed.
            changes: sources.changes.subscribe(),
            shutdown: sources.shutdown,
            tx,
            cc_id: batch.cc_id,
            vdn: batch.vdn,
            tasks,
            seen: vec![0; n],
            sent: vec![None; n],
            sent_at: vec![None; n],
            dirty: vec![true; n],
            last_id: 0,
            scratch: Vec::with_capacity(n),
        }
    }

    /// Runs until the stream ends, and says why.
    pub async fn run(mut self) -> StreamEnd {
        match self.serve().await {
            Ok(never) => match never {},
            Err(end) => end,
        }
    }

    async fn serve(&mut self) -> Result<Infallible, StreamEnd> {
        self.changes.borrow_and_update();
        if !self.key_in_force() {
            return Err(StreamEnd::KeyRevoked);
        }
        self.read_versions();
        self.dirty.fill(true);
        self.emit(Instant::now())?;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
        let mut last_scan = Instant::now();
        loop {
            let due = self.next_due();
            tokio::select! {
                _ = self.shutdown.wait() => return Err(StreamEnd::Shutdown),
                _ = self.tx.closed() => return Err(StreamEnd::Client),
                changed = self.changes.changed() => {
                    // The sender lives as long as the application: gone means stopping.
                    changed.map_err(|_| StreamEnd::Shutdown)?;
                    tokio::time::sleep_until(last_scan + SCAN_GAP).await;
                    last_scan = Instant::now();
                    self.read_versions();
                }
                _ = tokio::time::sleep_until(due.unwrap_or(last_scan)), if due.is_some() => {}
                _ = heartbeat.tick() => self.send(Bytes::from_static(b": heartbeat\n\n"))?,
            }
            if !self.key_in_force() {
                return Err(StreamEnd::KeyRevoked);
            }
            let day = today(&self.store, self.cc_id, self.vdn);
            if day != self.day {
                // Midnight: today's counts start again, whatever changed.
                self.day = day;
                self.dirty.fill(true);
            }
            self.emit(Instant::now())?;
        }
    }

    /// Marks the tasks whose change number moved.
    fn read_versions(&mut self) {
        self.store.versions_of(&self.tasks, &mut self.scratch);
        for (i, &v) in self.scratch.iter().enumerate() {
            if self.seen[i] != v {
                self.seen[i] = v;
                self.dirty[i] = true;
            }
        }
    }

    /// When the next marked task may be sent, if one waits for its coalescing window.
    fn next_due(&self) -> Option<Instant> {
        (0..self.tasks.len())
            .filter(|&i| self.dirty[i])
            .filter_map(|i| self.sent_at[i].map(|t| t + COALESCE))
            .min()
    }

    /// Sends, in one chunk, the rows of the marked tasks whose window is open and whose values
    /// differ from what was last sent.
    fn emit(&mut self, now: Instant) -> Result<(), StreamEnd> {
        let due: Vec<usize> = (0..self.tasks.len())
            .filter(|&i| self.dirty[i] && self.sent_at[i].is_none_or(|t| now >= t + COALESCE))
            .collect();
        if due.is_empty() {
            return Ok(());
        }
        let keys: Vec<TaskKey> = due.iter().map(|&i| self.tasks[i]).collect();
        let stats = self.store.stats_of(&keys, self.day);
        let mut chunk = String::new();
        for (&i, s) in due.iter().zip(stats) {
            self.dirty[i] = false;
            let row = Row::new(self.tasks[i].task_id, s);
            if self.sent[i].as_ref() == Some(&row) {
                continue;
            }
            self.last_id += 1;
            let _ = write!(chunk, "id: {}\ndata: {}\n\n", self.last_id, row.to_json());
            self.sent[i] = Some(row);
            self.sent_at[i] = Some(now);
        }
        if chunk.is_empty() {
            return Ok(());
        }
        self.send(Bytes::from(chunk))
    }

    fn send(&self, chunk: Bytes) -> Result<(), StreamEnd> {
        self.tx.try_send(chunk).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => StreamEnd::SlowReader,
            mpsc::error::TrySendError::Closed(_) => StreamEnd::Client,
        })
    }

    /// The key that opened the stream is still in the key set, with the same secret and a scope
    /// that still covers the stream.
    fn key_in_force(&self) -> bool {
        match self.keys.lookup(&self.key.ak) {
            None => false,
            Some(k) if Arc::ptr_eq(&k, &self.key) => true,
            Some(k) => {
                bool::from(k.secret.expose().ct_eq(self.key.secret.expose()))
                    && k.may_read(self.cc_id, self.vdn)
            }
        }
    }
}

#[cfg(test)]
mod tests;

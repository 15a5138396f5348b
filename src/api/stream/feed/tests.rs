//! The feed without HTTP: a store, a change signal and keys, driven by hand. Waits are bounded
//! only so that a broken feed fails the test instead of hanging it; nothing asserts on time.

use std::time::Duration;

use super::*;
use crate::auth::KeySet;
use crate::events::CallState;
use crate::fold::testing::{call, failed, store};

const A: TaskKey = TaskKey {
    cc_id: 1,
    vdn: 92,
    task_id: 1,
};
const B: TaskKey = TaskKey { task_id: 2, ..A };
const GUARD: Duration = Duration::from_secs(20);

struct Rig {
    store: Arc<Store>,
    keys: Keys,
    changes: Changes,
    shutdown: Shutdown,
}

impl Rig {
    fn new() -> Rig {
        Rig {
            store: Arc::new(store()),
            keys: Keys::new(KeySet::single("ak", "sk")),
            changes: Changes::default(),
            shutdown: Shutdown::new(),
        }
    }

    fn feed(&self, capacity: usize) -> (Feed, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(capacity);
        let key = self.keys.lookup("ak").expect("key");
        let batch = Batch {
            cc_id: 1,
            vdn: 92,
            task_ids: vec![1, 2],
        };
        let sources = Sources {
            store: self.store.clone(),
            keys: self.keys.clone(),
            changes: &self.changes,
            shutdown: self.shutdown.clone(),
        };
        (Feed::from_sources(sources, key, &batch, tx), rx)
    }

    /// Folds an event stamped a second ago and signals it, as the consumer does.
    fn apply(&self, e: crate::events::Event) {
        self.store.apply(&e, i64::MAX / 2);
        self.changes.bump();
    }

    /// The `data:` the stream must send for `task` now.
    fn row(&self, task: TaskKey) -> String {
        let stats = self
            .store
            .stats(&task, today(&self.store, task.cc_id, task.vdn));
        Row::new(task.task_id, stats).to_json()
    }
}

fn now() -> i64 {
    crate::clock::now_ms() - 1_000
}

/// The `(id, data)` pairs of a chunk; heartbeats left out.
fn events(chunk: &Bytes) -> Vec<(u64, String)> {
    let text = std::str::from_utf8(chunk).expect("UTF-8");
    text.split("\n\n")
        .filter(|e| !e.is_empty() && !e.starts_with(':'))
        .map(|e| {
            let mut lines = e.lines();
            let id = lines
                .next()
                .and_then(|l| l.strip_prefix("id: "))
                .expect("id line");
            let data = lines
                .next()
                .and_then(|l| l.strip_prefix("data: "))
                .expect("data line");
            (id.parse().expect("numeric id"), data.to_owned())
        })
        .collect()
}

async fn next_events(rx: &mut mpsc::Receiver<Bytes>) -> Vec<(u64, String)> {
    loop {
        let chunk = tokio::time::timeout(GUARD, rx.recv())
            .await
            .expect("an event in time")
            .expect("stream open");
        let e = events(&chunk);
        if !e.is_empty() {
            return e;
        }
    }
}

#[tokio::test]
async fn current_values_at_once_then_changes_of_the_changed_task_only() {
    let rig = Rig::new();
    rig.apply(call(A, "a", CallState::Finished, now()));
    let (feed, mut rx) = rig.feed(OUTBOX);
    let run = tokio::spawn(feed.run());

    let first = next_events(&mut rx).await;
    assert_eq!(first, vec![(1, rig.row(A)), (2, rig.row(B))]);
    assert!(first[0].1.contains(r#""totalCount":"1""#));

    rig.apply(call(B, "b", CallState::Queued, now()));
    let second = next_events(&mut rx).await;
    assert_eq!(second, vec![(3, rig.row(B))]);
    assert!(second[0].1.contains(r#""waitCount":"1""#));

    rig.shutdown.trigger();
    assert_eq!(run.await.expect("joins"), StreamEnd::Shutdown);
}

#[tokio::test]
async fn changes_within_the_window_are_coalesced_into_one_event() {
    let rig = Rig::new();
    let (feed, mut rx) = rig.feed(OUTBOX);
    let run = tokio::spawn(feed.run());
    next_events(&mut rx).await;
    rig.apply(call(A, "a", CallState::Queued, now()));
    assert_eq!(next_events(&mut rx).await, vec![(3, rig.row(A))]);
    // Right after an event of A: three more changes, each seen by the feed (it runs between
    // them), all inside A's window.
    for id in ["b", "c", "d"] {
        rig.apply(call(A, id, CallState::Dialing, now()));
        tokio::task::yield_now().await;
    }
    let coalesced = next_events(&mut rx).await;
    assert_eq!(coalesced, vec![(4, rig.row(A))]);
    assert!(coalesced[0].1.contains(r#""execCount":"3""#));
    drop(rx);
    assert_eq!(run.await.expect("joins"), StreamEnd::Client);
}

#[tokio::test]
async fn a_change_that_leaves_the_values_as_they_were_sends_nothing() {
    let rig = Rig::new();
    rig.apply(failed(A, "a", "00302", now()));
    let (feed, mut rx) = rig.feed(OUTBOX);
    let run = tokio::spawn(feed.run());
    assert_eq!(next_events(&mut rx).await.len(), 2);
    // Another cause for the same failed call: a change of the store, not of the eight values.
    rig.apply(failed(A, "a", "00601", now()));
    tokio::time::sleep(COALESCE * 2).await;
    rig.apply(call(A, "z", CallState::Queued, now()));
    // The next event is the real change, numbered right after the first two.
    assert_eq!(next_events(&mut rx).await, vec![(3, rig.row(A))]);
    rig.shutdown.trigger();
    assert_eq!(run.await.expect("joins"), StreamEnd::Shutdown);
}

#[tokio::test]
async fn a_reader_that_does_not_read_is_dropped() {
    let rig = Rig::new();
    // Room for the first chunk only, and nobody reads.
    let (feed, _rx) = rig.feed(1);
    let run = tokio::spawn(feed.run());
    tokio::task::yield_now().await;
    rig.apply(call(A, "a", CallState::Queued, now()));
    let end = ended(run).await;
    assert_eq!(end, StreamEnd::SlowReader);
}

#[tokio::test]
async fn a_key_rotation_ends_the_stream_unless_the_key_is_unchanged() {
    let rig = Rig::new();
    let (feed, mut rx) = rig.feed(OUTBOX);
    let run = tokio::spawn(feed.run());
    next_events(&mut rx).await;
    // The same key reloaded (a new entry, same secret and scope): the stream goes on.
    rig.keys.replace(KeySet::single("ak", "sk"));
    rig.apply(call(A, "a", CallState::Queued, now()));
    assert_eq!(next_events(&mut rx).await, vec![(3, rig.row(A))]);
    // A new secret for the key: ended at the next wake.
    rig.keys.replace(KeySet::single("ak", "rotated"));
    rig.changes.bump();
    let end = ended(run).await;
    assert_eq!(end, StreamEnd::KeyRevoked);

    let rig = Rig::new();
    let (feed, _rx) = rig.feed(OUTBOX);
    let run = tokio::spawn(feed.run());
    rig.keys.replace(KeySet::single("someone-else", "sk"));
    rig.changes.bump();
    let end = ended(run).await;
    assert_eq!(end, StreamEnd::KeyRevoked);
}

/// How a stream run ended (the test fails if it does not end within `GUARD`).
async fn ended(run: tokio::task::JoinHandle<StreamEnd>) -> StreamEnd {
    tokio::time::timeout(GUARD, run)
        .await
        .expect("ends")
        .expect("joins")
}

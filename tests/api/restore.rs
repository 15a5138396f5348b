//! Restoring from a snapshot whose offsets do not fit the log (the topic was recreated).

use std::time::Duration;

use realstat::events::ids::TaskKey;
use realstat::events::{encode_call, CallState, Decoder};
use realstat::fold::{Calendar, Store};
use realstat::log_position::{Offset, Partition};
use realstat::snapshot::SnapshotDir;

use crate::support::*;

#[actix_web::test]
async fn offsets_beyond_the_end_of_the_log_are_read_again_from_the_start() {
    let task = TaskKey {
        cc_id: 1,
        vdn: 92,
        task_id: 8,
    };
    let t = now_ms() - 1_000;
    let events: Vec<String> = (0..3)
        .map(|i| encode_call(&task, &format!("c{i}"), CallState::Finished, t))
        .collect();
    let kafka = MockKafka::start("events", 1);
    let msgs: Vec<(Option<&str>, &[u8])> = events.iter().map(|e| (None, e.as_bytes())).collect();
    kafka.produce(&msgs);

    // A snapshot from a previous life of the topic: it already holds the first event and one
    // the new log does not have, and claims offset 1000.
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = test_settings(&kafka.brokers(), "events", &dir);
    let old = Store::new(
        Calendar::named("Asia/Shanghai").expect("zone"),
        settings.fold_policy(),
    );
    let decoder = Decoder::new(1);
    for e in [
        events[0].clone(),
        encode_call(&task, "old-only", CallState::Failed, t),
    ] {
        old.apply(&decoder.decode(e.as_bytes()).expect("valid"), now_ms());
    }
    SnapshotDir::new(&settings.snapshot.dir, 3)
        .write(&old, &[(Partition(0), Offset(1000))].into(), "events")
        .expect("snapshot written");

    let app = spawn_app(settings, dir).await;
    app.wait_ready(Duration::from_secs(20)).await;
    // The stored offset is kept (a broker may report its end short); the broker's "out of
    // range" then sends the consumer back to the earliest offset and the log is read again.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while metric(&app.metrics().await, "realstat_events_consumed_total") != Some(3.0) {
        assert!(std::time::Instant::now() < deadline, "log not read again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, desc) = result(&app.query(r#"{"vdn":92,"taskId":8}"#).await);
    assert_eq!(code, "0100000");
    // The three events of the log (one already in the snapshot, counted once) plus the one only
    // the snapshot knows.
    assert_eq!(desc["totalCount"], "4");
    assert_eq!(desc["succCount"], "3");
    assert_eq!(desc["failCount"], "1");
    app.stop().await;
}

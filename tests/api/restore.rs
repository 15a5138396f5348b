//! Restoring from a snapshot whose offsets do not fit the log (the topic was recreated).

use realstat::events::{encode_call, CallState, Decoder};
use realstat::fold::{Calendar, Store};
use realstat::log_position::{Offset, Partition};
use realstat::snapshot::SnapshotDir;

use crate::support::*;

#[actix_web::test]
async fn offsets_beyond_the_end_of_the_log_are_read_again_from_the_start() {
    let task = task(8);
    let t = now_ms() - 1_000;
    let events: Vec<String> = (0..3)
        .map(|i| encode_call(&task, &format!("c{i}"), CallState::Finished, t))
        .collect();
    // A snapshot from a previous life of the topic: it already holds the first event and one
    // the new log does not have, and claims offset 1000.
    let old = Store::new(
        Calendar::named("Asia/Shanghai").expect("zone"),
        realstat::config::Settings::default().fold_policy(),
    );
    let decoder = Decoder::new(1);
    for e in [
        events[0].clone(),
        encode_call(&task, "old-only", CallState::Failed, t),
    ] {
        old.apply(&decoder.decode(e.as_bytes()).expect("valid"), now_ms());
    }
    let app = TestApp::builder()
        .events(&events)
        .settings(move |s| {
            SnapshotDir::new(&s.snapshot.dir, 3)
                .write(&old, &[(Partition(0), Offset(1000))].into(), TOPIC)
                .expect("snapshot written");
        })
        .spawn()
        .await;
    // The stored offset is kept (a broker may report its end short); the broker's "out of
    // range" then sends the consumer back to the earliest offset and the log is read again.
    app.wait_metric("realstat_events_consumed_total", |n| n == 3.0)
        .await;
    let (code, desc) = result(&app.query(r#"{"vdn":92,"taskId":8}"#).await);
    assert_eq!(code, "0100000");
    // The three events of the log (one already in the snapshot, counted once) plus the one only
    // the snapshot knows.
    assert_eq!(desc["totalCount"], "4");
    assert_eq!(desc["succCount"], "3");
    assert_eq!(desc["failCount"], "1");
    app.stop().await;
}

//! Positions the log no longer holds (issue 17.2): counted, and never papered over.
//! - Truncation: librdkafka's mock cluster keeps about 5 MB per partition and drops older
//!   messages, so a stored position of 0 behind 8 MB of newer messages is below the log's start.
//! - A recreated topic: a snapshot whose offsets are beyond the end of one partition, and below
//!   the end of another (where the new topic already holds more events).

use realstat::events::{encode_call, CallState};
use realstat::fold::{Calendar, Store};
use realstat::log_position::{Offset, Partition};
use realstat::snapshot::SnapshotDir;

use crate::support::*;

fn empty_store() -> Store {
    Store::new(
        Calendar::named("Asia/Shanghai").expect("zone"),
        realstat::config::Settings::default().fold_policy(),
    )
}

fn produce_to(brokers: &str, messages: &[(i32, Vec<u8>)]) {
    let msgs: Vec<(Option<&str>, Option<i32>, &[u8])> = messages
        .iter()
        .map(|(p, v)| (None, Some(*p), v.as_slice()))
        .collect();
    realstat::dev::simulate::produce_raw(brokers, TOPIC, &[], &msgs).expect("produced");
}

fn calls(task_id: u128, n: usize) -> Vec<Vec<u8>> {
    let t = now_ms() - 1_000;
    (0..n)
        .map(|i| encode_call(&task(task_id), &format!("c{i}"), CallState::Finished, t).into_bytes())
        .collect()
}

#[actix_web::test]
async fn events_deleted_before_they_were_read_are_counted_as_lost() {
    let app = TestApp::builder()
        .settings(|s| {
            let brokers = s.kafka.brokers.clone().expect("brokers");
            // 80 messages of 100 kB: the mock cluster drops the oldest ~3 MB of them.
            let filler: Vec<(i32, Vec<u8>)> = (0..80).map(|_| (0, vec![b'x'; 100_000])).collect();
            produce_to(&brokers, &filler);
            let tail: Vec<(i32, Vec<u8>)> = calls(5, 2).into_iter().map(|c| (0, c)).collect();
            produce_to(&brokers, &tail);
            // This replica read nothing of it before it went down.
            SnapshotDir::new(&s.snapshot.dir, 3)
                .write(&empty_store(), &[(Partition(0), Offset(0))].into(), TOPIC)
                .expect("snapshot written");
        })
        .spawn()
        .await;
    let m = app
        .wait_metric(r#"realstat_log_resets_total{reason="truncated"}"#, |n| {
            n == 1.0
        })
        .await;
    let lost = metric(&m, r#"realstat_events_lost_total{partition="0"}"#).expect("counted");
    assert!(lost > 0.0 && lost < 82.0, "{lost} offsets lost");
    let m = app
        .wait_metric("realstat_partition_next_offset{partition=\"0\"}", |n| {
            n == 82.0
        })
        .await;
    assert_eq!(
        metric(&m, "realstat_events_consumed_total"),
        Some(82.0 - lost)
    );
    let (_, desc) = result(&app.query(r#"{"vdn":92,"taskId":5}"#).await);
    assert_eq!(desc["totalCount"], "2", "what the log still holds is read");
    app.stop().await;
}

#[actix_web::test]
async fn a_recreated_topic_is_read_again_on_every_partition() {
    let app = TestApp::builder()
        .partitions(2)
        .unready()
        .settings(|s| {
            let brokers = s.kafka.brokers.clone().expect("brokers");
            let mut new_log: Vec<(i32, Vec<u8>)> = vec![(0, calls(6, 1).remove(0))];
            new_log.extend(calls(7, 3).into_iter().map(|c| (1, c)));
            produce_to(&brokers, &new_log);
            // The old topic's positions: beyond the new end on partition 0, but below it on
            // partition 1, where offset 0 of the new topic would be skipped without a word.
            let at = [(Partition(0), Offset(1000)), (Partition(1), Offset(1))].into();
            SnapshotDir::new(&s.snapshot.dir, 3)
                .write(&empty_store(), &at, TOPIC)
                .expect("snapshot written");
        })
        .spawn()
        .await;
    app.wait_ready().await;
    let m = app.metrics().await;
    assert_eq!(
        metric(&m, r#"realstat_log_resets_total{reason="recreated"}"#),
        Some(1.0)
    );
    let (_, desc) = result(&app.query(r#"{"vdn":92,"taskId":7}"#).await);
    assert_eq!(
        desc["totalCount"], "3",
        "partition 1 is read from its start too"
    );
    let (_, desc) = result(&app.query(r#"{"vdn":92,"taskId":6}"#).await);
    assert_eq!(desc["totalCount"], "1");
    app.stop().await;
}

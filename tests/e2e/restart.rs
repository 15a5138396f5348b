//! Restarts against the real broker: SIGTERM (final snapshot, no replay), kill -9 in the middle of
//! ingestion, corrupt snapshots.

use std::time::Duration;

use crate::oracle::Oracle;
use crate::process::{create_topic, unique_topic, Replica};
use crate::support::*;
use crate::{answers, expected, produce_log, simulated_log};

fn consumed(metrics: &str) -> usize {
    metric(metrics, "realstat_events_consumed_total").unwrap_or(0.0) as usize
}

#[actix_web::test]
#[ignore = "needs a real broker: run scripts/test"]
async fn sigterm_writes_a_final_snapshot_and_the_restart_resumes_from_it() {
    let topic = unique_topic("e2e-sigterm");
    create_topic(&topic, 3).await;
    let log = simulated_log(11, 5);
    produce_log(&topic, &log, &[]);
    let oracle = Oracle::fold(log.iter().map(|(_, v)| v.as_slice()));
    let dir = tempfile::tempdir().expect("tempdir");
    // A long interval: the only snapshot is the one written on SIGTERM.
    let env = [("REALSTAT_SNAPSHOT_INTERVAL", "1h")];

    let a = Replica::start_in(&topic, dir.path(), &env);
    a.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(answers(&a).await, expected(&oracle));
    let log_a = a.log_text();
    assert!(a.terminate().success(), "SIGTERM exits 0");
    assert!(!log_a.contains("restored snapshot"));

    // Restart: resumes from the final snapshot; reads nothing already folded.
    let b = Replica::start_in(&topic, dir.path(), &env);
    b.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(answers(&b).await, expected(&oracle));
    let m = get(&b.admin, "/metrics").await.text();
    assert_eq!(consumed(&m), 0, "no replay after a clean stop");
    assert!(b.log_text().contains("restored snapshot"));

    // Events produced while it runs, then a corrupt newest snapshot: the restart falls back to
    // the older snapshot, catches up from its offsets, and is exact.
    let more = simulated_log(12, 1);
    produce_log(&topic, &more, &[]);
    let all = Oracle::fold(log.iter().chain(more.iter()).map(|(_, v)| v.as_slice()));
    b.wait_consumed(more.len(), Duration::from_secs(60)).await;
    assert!(b.terminate().success());
    let snaps = realstat::snapshot::SnapshotDir::new(dir.path().join("data"), 3)
        .list()
        .expect("snapshots");
    assert!(snaps.len() >= 2, "a snapshot per clean stop: {snaps:?}");
    let mut bytes = std::fs::read(&snaps[0]).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&snaps[0], &bytes).expect("corrupt");

    let c = Replica::start_in(&topic, dir.path(), &env);
    c.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(answers(&c).await, expected(&all));
    let log_c = c.log_text();
    assert!(log_c.contains("invalid snapshot skipped"), "{log_c}");
    let m = get(&c.admin, "/metrics").await.text();
    assert_eq!(
        consumed(&m),
        more.len(),
        "caught up from the older snapshot's offsets only"
    );
    assert!(c.terminate().success());
}

#[actix_web::test]
#[ignore = "needs a real broker: run scripts/test"]
async fn kill_9_in_the_middle_of_ingestion_loses_and_doubles_nothing() {
    let topic = unique_topic("e2e-kill9");
    create_topic(&topic, 4).await;
    let first = simulated_log(21, 20);
    produce_log(&topic, &first, &[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("REALSTAT_SNAPSHOT_INTERVAL", "200ms")];

    let a = Replica::start_in(&topic, dir.path(), &env);
    a.wait_ready(Duration::from_secs(60)).await;
    // Periodic snapshots now cover the first log. More events arrive, and the replica is
    // killed without warning while it reads them; more arrive while it is down.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let second = simulated_log(22, 3);
    let (head, tail) = second.split_at(second.len() / 2);
    produce_log(&topic, head, &[]);
    a.kill();
    produce_log(&topic, tail, &[]);
    let snaps = realstat::snapshot::SnapshotDir::new(dir.path().join("data"), 3);
    assert!(
        !snaps.list().expect("list").is_empty(),
        "periodic snapshots were written"
    );

    let all = Oracle::fold(first.iter().chain(second.iter()).map(|(_, v)| v.as_slice()));
    let b = Replica::start_in(&topic, dir.path(), &env);
    b.wait_ready(Duration::from_secs(60)).await;
    assert!(b.log_text().contains("restored snapshot"));
    assert_eq!(answers(&b).await, expected(&all));
    let m = get(&b.admin, "/metrics").await.text();
    assert!(
        consumed(&m) < first.len() + second.len(),
        "resumed from a snapshot rather than replaying everything"
    );
    assert!(b.terminate().success());
}

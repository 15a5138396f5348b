//! A part that ends unexpectedly stops the replica with a non-zero exit naming it, after the
//! usual drain and final snapshot (issue 17.1). The parts themselves (threads, servers, tasks)
//! are wired to `Shutdown::supervise`/`watch_task`, tested in `shutdown` and `ingest`; here the
//! process's answer to a failure.

use realstat::snapshot::SnapshotDir;

use crate::support::*;

#[actix_web::test]
async fn a_failed_part_ends_the_process_with_an_error_after_the_final_snapshot() {
    let app = TestApp::builder().spawn().await;
    app.shutdown
        .fail("ingest", "panicked: injected by the test");
    // The test boot expects a clean stop: the failure surfaces as that expectation's panic.
    let ended = app
        .run
        .await
        .expect_err("a failed part is not a clean stop");
    let message = ended.into_panic();
    let message = realstat::shutdown::panic_message(&*message).to_owned();
    assert!(message.contains("PartFailed"), "{message}");
    assert!(message.contains(r#"part: "ingest""#), "{message}");
    let snapshots = SnapshotDir::new(app.dir.path().join("data"), 3);
    assert!(
        !snapshots.list().expect("listed").is_empty(),
        "the final snapshot is still written"
    );
}

use std::time::Duration;

use crate::support::*;

#[actix_web::test]
async fn live_and_ready() {
    let app = TestApp::builder().partitions(2).unready().spawn().await;
    assert_eq!(get(&app.admin, "/health/live").await.status, 200);
    // An empty topic: nothing to catch up with.
    app.wait_ready().await;
    // The admin endpoints are not on the API listener (the balancer exposes only the API).
    assert_eq!(get(&app.api, "/health/ready").await.status, 404);
    assert_eq!(get(&app.api, "/metrics").await.status, 404);
    app.stop().await;
}

/// Until the replica has caught up it answers 503 / 0100999, and readiness says 503 too.
#[actix_web::test]
async fn not_ready_until_the_topic_can_be_read() {
    // The topic does not exist: the consumer waits for it, the replica is not ready.
    let app = TestApp::builder()
        .settings(|s| s.kafka.topic = "no-such-topic".into())
        .unready()
        .spawn()
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get(&app.admin, "/health/live").await.status, 200);
    assert_eq!(get(&app.admin, "/health/ready").await.status, 503);
    let r = app.query(r#"{"vdn":92,"taskId":1}"#).await;
    assert_eq!(r.status, 503);
    assert_eq!(result(&r).0, "0100999");
    // Created late: picked up, and the replica becomes ready.
    app.kafka
        .kafka
        .create_topic("no-such-topic", 1)
        .expect("created");
    app.wait_ready().await;
    assert_eq!(app.query(r#"{"vdn":92,"taskId":1}"#).await.status, 200);
    app.stop().await;
}

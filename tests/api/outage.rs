//! A broker outage (the mock cluster's brokers cut and refused): the replica keeps answering from
//! memory, and resumes from its exact next offsets when the broker returns.

use std::time::Duration;

use realstat::events::{encode_call, CallState};

use crate::support::*;

const TASK: u128 = 5;

fn calls(prefix: &str, n: usize, state: CallState) -> Vec<String> {
    let t = now_ms() - 1_000;
    (0..n)
        .map(|i| encode_call(&task(TASK), &format!("{prefix}{i}"), state, t))
        .collect()
}

/// Under the task's key, as iSales produces them.
fn produce_all(kafka: &MockKafka, events: &[String]) {
    let key = task(TASK).to_string();
    let msgs: Vec<(Option<&str>, &[u8])> = events
        .iter()
        .map(|e| (Some(key.as_str()), e.as_bytes()))
        .collect();
    kafka.produce(&msgs);
}

async fn total(app: &TestApp) -> String {
    let r = app.query(r#"{"vdn":92,"taskId":5}"#).await;
    let (code, desc) = result(&r);
    assert_eq!(code, "0100000");
    desc["totalCount"].as_str().unwrap_or_default().to_owned()
}

#[actix_web::test]
async fn answers_from_memory_during_an_outage_and_resumes_exactly() {
    let app = TestApp::builder()
        .partitions(2)
        .keyed_events(&task(TASK).to_string(), &calls("a", 40, CallState::Failed))
        .spawn()
        .await;
    let kafka = &app.kafka;
    assert_eq!(total(&app).await, "40");

    kafka.kafka.brokers_down().expect("down");
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Still serving, from memory, and still ready: stale numbers beat no numbers.
    assert_eq!(total(&app).await, "40");
    assert_eq!(get(&app.admin, "/health/ready").await.status, 200);
    let m = app.metrics().await;
    assert!(
        metric(&m, r#"realstat_consumer_errors_total{kind="watermarks"}"#).unwrap_or(0.0) >= 1.0,
        "the outage shows in the metrics:\n{m}"
    );

    kafka.kafka.brokers_up().expect("up");
    produce_all(kafka, &calls("b", 25, CallState::Finished));
    // Redelivered old events change nothing; new ones all count.
    produce_all(kafka, &calls("a", 40, CallState::Failed));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while total(&app).await != "65" {
        assert!(std::time::Instant::now() < deadline, "did not resume");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = app.metrics().await;
    assert_eq!(metric(&m, "realstat_events_consumed_total"), Some(105.0));
    app.stop().await;
}

//! `realstat_fold_batch_duration_seconds` times the fold, not the wait for messages: a consumer
//! that mostly waits (100 ms polls) and now and then gets one event shows batches of a few
//! milliseconds at most, never the poll wait.

use std::time::Duration;

use realstat::events::{encode_call, CallState};

use crate::support::*;

const EVENTS: usize = 10;

#[actix_web::test]
async fn fold_batch_duration_excludes_the_wait_for_messages() {
    let app = spawn_app().await;
    let task = task(77);

    // One event at a time, each arriving while the consumer sits in a poll: with the wait
    // counted, each batch would last as long as the consumer had been waiting (0..100 ms).
    for i in 0..EVENTS {
        let event = encode_call(&task, &format!("c{i}"), CallState::Queued, now_ms());
        let k = app.kafka.brokers();
        tokio::task::spawn_blocking(move || produce(&k, TOPIC, &[(None, event.as_bytes())]))
            .await
            .expect("produced");
        tokio::time::sleep(Duration::from_millis(130)).await;
    }
    app.wait_metric("realstat_events_consumed_total", |n| n >= EVENTS as f64)
        .await;
    // Then idle: polls that return nothing are not batches.
    tokio::time::sleep(Duration::from_secs(1)).await;

    let m = app.metrics().await;
    let series = "realstat_fold_batch_duration_seconds";
    let count = metric(&m, &format!("{series}_count")).expect("count");
    let sum = metric(&m, &format!("{series}_sum")).expect("sum");
    let fast = metric(&m, &format!("{series}_bucket{{le=\"0.025\"}}")).expect("bucket");
    assert!(
        (1.0..=EVENTS as f64).contains(&count),
        "one batch per event at most: {count}"
    );
    assert!(sum / count < 0.05, "mean batch {} s: {m}", sum / count);
    // With the wait counted, three batches in four would exceed 25 ms.
    assert!(
        fast >= 0.8 * count,
        "{fast} of {count} batches under 25 ms: {m}"
    );
    app.stop().await;
}

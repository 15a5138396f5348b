//! Bounded state and tenant sharding, end to end through the consumer: events beyond the state
//! limits are refused, counted and dead-lettered while every existing count stays; events of
//! tenants this deployment does not keep are skipped and queries for them refused.

use std::time::{Duration, Instant};

use realstat::events::ids::TaskKey;
use realstat::events::{encode_call, CallState};

use crate::support::*;

fn task(vdn: u16, task_id: u128) -> TaskKey {
    TaskKey {
        cc_id: 1,
        vdn,
        task_id,
    }
}

async fn wait_for(app: &TestApp, series: &str, want: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = app.metrics().await;
        if metric(&m, series) == Some(want) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never reached {want}:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn events_beyond_the_state_limits_are_refused_and_existing_counts_stay() {
    let kafka = MockKafka::start("events", 1);
    kafka
        .kafka
        .create_topic("events.dlq", 1)
        .expect("dlq topic");
    let t = now_ms() - 5_000;
    let mut events = Vec::new();
    // Two tasks fit; the third and fourth are refused. Task 1 keeps three calls; the fourth is
    // refused while its first call still moves on.
    for id in 1..=4 {
        events.push(encode_call(&task(92, id), "a", CallState::Queued, t));
    }
    for call in ["b", "c", "d"] {
        events.push(encode_call(&task(92, 1), call, CallState::Failed, t));
    }
    events.push(encode_call(&task(92, 1), "a", CallState::Finished, t + 1));
    let messages: Vec<(Option<&str>, &[u8])> =
        events.iter().map(|e| (None, e.as_bytes())).collect();
    kafka.produce(&messages);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&kafka.brokers(), "events", &dir);
    settings.limits.max_tasks = 2;
    settings.limits.max_calls_per_task = 3;
    settings.kafka.dlq_topic = Some("events.dlq".into());
    let app = spawn_app(settings, dir).await;
    app.wait_ready(Duration::from_secs(20)).await;

    let m = wait_for(&app, "realstat_events_consumed_total", events.len() as f64).await;
    assert_eq!(
        metric(&m, r#"realstat_events_rejected_total{reason="task_limit"}"#),
        Some(2.0)
    );
    assert_eq!(
        metric(&m, r#"realstat_events_rejected_total{reason="call_limit"}"#),
        Some(1.0)
    );
    assert_eq!(metric(&m, "realstat_tasks_tracked"), Some(2.0));
    let (code, one) = result(&app.query(r#"{"vdn":92,"taskId":1}"#).await);
    assert_eq!(code, "0100000");
    assert_eq!(
        (&one["totalCount"], &one["compCount"]),
        (&"3".into(), &"3".into())
    );
    let (_, three) = result(&app.query(r#"{"vdn":92,"taskId":3}"#).await);
    assert_eq!(three["totalCount"], "0", "a refused task has no counts");
    app.stop().await;
}

#[actix_web::test]
async fn a_deployment_keeps_only_its_tenants() {
    let kafka = MockKafka::start("events", 2);
    let t = now_ms() - 5_000;
    let ours = encode_call(&task(92, 7), "a", CallState::Finished, t);
    let theirs = encode_call(&task(93, 7), "a", CallState::Finished, t);
    kafka.produce(&[(None, ours.as_bytes()), (None, theirs.as_bytes())]);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings(&kafka.brokers(), "events", &dir);
    settings.tenants.vdns = vec![92];
    let app = spawn_app(settings, dir).await;
    app.wait_ready(Duration::from_secs(20)).await;

    let m = wait_for(&app, "realstat_events_consumed_total", 2.0).await;
    assert_eq!(metric(&m, "realstat_events_filtered_total"), Some(1.0));
    assert_eq!(metric(&m, "realstat_tasks_tracked"), Some(1.0));
    let (code, kept) = result(&app.query(r#"{"vdn":92,"taskId":7}"#).await);
    assert_eq!(
        (code.as_str(), &kept["totalCount"]),
        ("0100000", &"1".into())
    );
    let (code, _) = result(&app.query(r#"{"vdn":93,"taskId":7}"#).await);
    assert_eq!(
        code, "0101003",
        "a tenant kept elsewhere is refused, not answered with zeros"
    );
    app.stop().await;
}

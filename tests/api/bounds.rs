//! Bounded state and tenant sharding, end to end through the consumer: events beyond the state
//! limits are refused, counted and dead-lettered while every existing count stays; events of
//! tenants this deployment does not keep are skipped and queries for them refused.

use realstat::events::ids::TaskKey;
use realstat::events::{encode_call, CallState};

use crate::support::*;

fn task_of(vdn: u16, task_id: u128) -> TaskKey {
    TaskKey {
        cc_id: 1,
        vdn,
        task_id,
    }
}

#[actix_web::test]
async fn events_beyond_the_state_limits_are_refused_and_existing_counts_stay() {
    let t = now_ms() - 5_000;
    let mut events = Vec::new();
    // Two tasks fit; the third and fourth are refused. Task 1 keeps three calls; the fourth is
    // refused while its first call still moves on.
    for id in 1..=4 {
        events.push(encode_call(&task_of(92, id), "a", CallState::Queued, t));
    }
    for call in ["b", "c", "d"] {
        events.push(encode_call(&task_of(92, 1), call, CallState::Failed, t));
    }
    events.push(encode_call(
        &task_of(92, 1),
        "a",
        CallState::Finished,
        t + 1,
    ));
    let app = TestApp::builder()
        .events(&events)
        .dead_letters()
        .settings(|s| {
            s.limits.max_tasks = 2;
            s.limits.max_calls_per_task = 3;
        })
        .spawn()
        .await;

    let consumed = events.len() as f64;
    let m = app
        .wait_metric("realstat_events_consumed_total", |n| n == consumed)
        .await;
    assert_metrics(
        &m,
        &[
            (
                r#"realstat_events_rejected_total{reason="task_limit"}"#,
                2.0,
            ),
            (
                r#"realstat_events_rejected_total{reason="call_limit"}"#,
                1.0,
            ),
            ("realstat_tasks_tracked", 2.0),
        ],
    );
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
    let t = now_ms() - 5_000;
    let ours = encode_call(&task_of(92, 7), "a", CallState::Finished, t);
    let theirs = encode_call(&task_of(93, 7), "a", CallState::Finished, t);
    let app = TestApp::builder()
        .partitions(2)
        .events(&[ours, theirs])
        .settings(|s| s.tenants.vdns = vec![92])
        .spawn()
        .await;

    let m = app
        .wait_metric("realstat_events_consumed_total", |n| n == 2.0)
        .await;
    assert_metrics(
        &m,
        &[
            ("realstat_events_filtered_total", 1.0),
            ("realstat_tasks_tracked", 1.0),
        ],
    );
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

use realstat::events::ids::TaskKey;
use realstat::events::{encode_call, encode_task, CallState};
use serde_json::json;

use crate::support::*;

const TASK: TaskKey = TaskKey {
    cc_id: 89,
    vdn: 92,
    task_id: 1_122_104_910,
};

/// The seed's example: a task planned at 8 whose 4 calls so far all ended, 2 answered and 2
/// failed, answers exactly the vendor's example response.
#[actix_web::test]
async fn the_vendor_example_end_to_end() {
    let t = now_ms() - 5_000;
    let key = TASK.to_string();
    let events = [
        encode_task(&TASK, 8, t),
        encode_call(&TASK, "a", CallState::Queued, t + 1),
        encode_call(&TASK, "a", CallState::Dialing, t + 2),
        encode_call(&TASK, "a", CallState::Connected, t + 3),
        encode_call(&TASK, "a", CallState::Finished, t + 4),
        encode_call(&TASK, "b", CallState::Connected, t + 1),
        encode_call(&TASK, "b", CallState::Finished, t + 9),
        encode_call(&TASK, "b", CallState::Finished, t + 9), // redelivered
        encode_call(&TASK, "c", CallState::Dialing, t + 1),
        encode_call(&TASK, "c", CallState::Failed, t + 6),
        encode_call(&TASK, "d", CallState::Failed, t + 7),
    ];
    let app = TestApp::builder()
        .partitions(3)
        .keyed_events(&key, &events)
        .spawn()
        .await;

    // The request exactly as in the vendor's example, ids as strings.
    let r = app
        .query(r#"{ "ccId": "89", "vdn":92, "taskId":"1122104910" }"#)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json().expect("json"),
        json!({ "resultCode": "0100000", "resultDesc": { "compCount": "4", "failCount": "2",
            "compRate": "50%", "execCount": "0", "succCount": "2", "succRate": "50%",
            "totalCount": "4", "waitCount": "0" } })
    );
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    app.stop().await;
}

#[actix_web::test]
async fn ids_are_lenient_and_task_ids_canonical_and_unknown_tasks_are_zero() {
    let task = task(12);
    let t = now_ms() - 1_000;
    let q = encode_call(&task, "x", CallState::Queued, t);
    let d = encode_call(&task, "y", CallState::Dialing, t);
    let app = TestApp::builder().events(&[q, d]).spawn().await;

    let expected = json!({ "totalCount": "2", "succCount": "0", "failCount": "0", "succRate": "0%",
        "compCount": "0", "compRate": "0%", "waitCount": "1", "execCount": "1" });
    let zeros = json!({ "totalCount": "0", "succCount": "0", "failCount": "0", "succRate": "0%",
        "compCount": "0", "compRate": "0%", "waitCount": "0", "execCount": "0" });
    for (body, want) in [
        // No ccId: the default call center (1). taskId with leading zeros, as a number, as a
        // string.
        (r#"{"vdn":92,"taskId":"0012"}"#, &expected),
        (r#"{"vdn":"92","taskId":12}"#, &expected),
        (
            r#"{"ccId":1,"vdn":92,"taskId":"12","unknown":{"x":[1]}}"#,
            &expected,
        ),
        (
            r#"{"ccId":null,"vdn":92,"taskId":"000000000000000000000000000012"}"#,
            &expected,
        ),
        // Another task, call center or VDN: zeros.
        (r#"{"vdn":92,"taskId":"13"}"#, &zeros),
        (r#"{"ccId":2,"vdn":92,"taskId":"12"}"#, &zeros),
        (r#"{"vdn":93,"taskId":"12"}"#, &zeros),
    ] {
        let r = app.query(body).await;
        assert_eq!(result(&r), ("0100000".to_owned(), want.clone()), "{body}");
    }
    app.stop().await;
}

/// Malformed events are counted by reason and skipped; every valid event around them counts.
#[actix_web::test]
async fn malformed_events_are_counted_and_skipped_and_metrics_say_so() {
    let task = task(7);
    let t = now_ms() - 1_000;
    let ok1 = encode_call(&task, "a", CallState::Failed, t);
    let ok2 = encode_call(&task, "b", CallState::Finished, t);
    let dup = ok2.clone();
    let huge = format!(r#"{{"pad":"{}"}}"#, "x".repeat(70_000));
    let messages: Vec<&[u8]> = vec![
        b"not json at all",
        ok1.as_bytes(),
        br#"{"type":"CALL","vdn":92,"taskId":"7","callId":"z","state":"RINGING","ts":5}"#,
        b"",
        br#"{"v":2,"type":"CALL","vdn":92,"taskId":"7","callId":"z","state":"QUEUED","ts":5}"#,
        huge.as_bytes(),
        ok2.as_bytes(),
        dup.as_bytes(),
        br#"{"type":"CALL","vdn":5001,"taskId":"7","callId":"z","state":"QUEUED","ts":5}"#,
    ];
    let app = TestApp::builder().events(&messages).spawn().await;

    let r = app.query(r#"{"vdn":92,"taskId":7}"#).await;
    let (code, desc) = result(&r);
    assert_eq!(code, "0100000");
    assert_eq!(desc["totalCount"], "2");
    assert_eq!(desc["failCount"], "1");
    assert_eq!(desc["compCount"], "2");
    assert_eq!(desc["succRate"], "50%");

    assert_metrics(
        &app.metrics().await,
        &[
            ("realstat_events_consumed_total", 9.0),
            (r#"realstat_events_applied_total{effect="changed"}"#, 2.0),
            (r#"realstat_events_applied_total{effect="unchanged"}"#, 1.0),
            (r#"realstat_events_rejected_total{reason="not_json"}"#, 2.0),
            (r#"realstat_events_rejected_total{reason="bad_state"}"#, 1.0),
            (
                r#"realstat_events_rejected_total{reason="bad_version"}"#,
                1.0,
            ),
            (r#"realstat_events_rejected_total{reason="too_large"}"#, 1.0),
            (r#"realstat_events_rejected_total{reason="bad_vdn"}"#, 1.0),
            (
                r#"realstat_requests_total{code="0100000",status="200"}"#,
                1.0,
            ),
            ("realstat_tasks_tracked", 1.0),
            ("realstat_calls_tracked", 2.0),
            (r#"realstat_partition_next_offset{partition="0"}"#, 9.0),
            ("realstat_ready", 1.0),
        ],
    );
    app.stop().await;
}

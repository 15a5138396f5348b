//! The batch query over real sockets: rows equal the single query's answers, in request order,
//! with canonical ids; the shared checks (signature, scope, method) hold; errors name positions.

use std::time::Duration;

use realstat::api::batch::PATH as BATCH;
use realstat::events::ids::TaskKey;
use realstat::events::{encode_call, encode_task, CallState};
use serde_json::{json, Value};

use crate::support::*;

fn task(task_id: u128) -> TaskKey {
    TaskKey {
        cc_id: 1,
        vdn: 92,
        task_id,
    }
}

#[actix_web::test]
async fn rows_equal_single_queries_in_request_order_and_unknown_tasks_are_zero() {
    let kafka = MockKafka::start("events", 2);
    let t = now_ms() - 5_000;
    let events = [
        encode_task(&task(1_122_104_910), 10, t),
        encode_call(&task(1_122_104_910), "a", CallState::Finished, t),
        encode_call(&task(1_122_104_910), "b", CallState::Failed, t + 1),
        encode_call(&task(1_122_104_910), "c", CallState::Dialing, t + 2),
        encode_call(&task(77), "a", CallState::Queued, t),
        encode_call(&task(42), "a", CallState::Connected, t),
        encode_call(&task(42), "b", CallState::Connected, t),
    ];
    let msgs: Vec<(Option<&str>, &[u8])> = events.iter().map(|e| (None, e.as_bytes())).collect();
    kafka.produce(&msgs);
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(test_settings(&kafka.brokers(), "events", &dir), dir).await;
    app.wait_ready(Duration::from_secs(20)).await;

    let body = r#"{"ccId":1,"vdn":92,"taskIds":["1122104910",77,"0042","999"]}"#;
    let r = signed_post_to(&app.api, BATCH, AK, SK, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("x-request-id").is_some());
    let (code, rows) = result(&r);
    assert_eq!(code, "0100000");
    let rows = rows.as_array().expect("an array of rows").clone();
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["taskId"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, ["1122104910", "77", "42", "999"]);
    for row in &rows {
        let id = row["taskId"].as_str().expect("taskId");
        let single = app
            .query(&format!(r#"{{"ccId":1,"vdn":92,"taskId":"{id}"}}"#))
            .await;
        let (_, values) = result(&single);
        let mut without_id = row.clone();
        without_id.as_object_mut().expect("object").remove("taskId");
        assert_eq!(without_id, values, "row of task {id}");
    }
    assert_eq!(rows[0]["totalCount"], "3");
    assert_eq!(rows[0]["compRate"], "20%");
    assert_eq!(rows[2]["succCount"], "2");
    assert_eq!(
        rows[3],
        json!({"taskId": "999", "totalCount": "0", "succCount": "0", "failCount": "0",
            "succRate": "0%", "compCount": "0", "compRate": "0%", "waitCount": "0", "execCount": "0"})
    );
    app.stop().await;
}

#[actix_web::test]
async fn shared_checks_and_positional_errors() {
    let kafka = MockKafka::start("events", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_app(test_settings(&kafka.brokers(), "events", &dir), dir).await;
    app.wait_ready(Duration::from_secs(20)).await;
    let desc = |r: &crate::support::http::Response| -> (u16, String, Value) {
        let (code, desc) = result(r);
        (r.status, code, desc)
    };

    let r = request_to(&app.api, "GET", BATCH, &[("Host", &app.api)], "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));

    let body = r#"{"vdn":92,"taskIds":[1]}"#;
    let unsigned = request_to(
        &app.api,
        "POST",
        BATCH,
        &[("Host", &app.api), ("Content-Type", "application/json")],
        body,
    )
    .await;
    assert_eq!(desc(&unsigned).0, 401);
    // A signature for the single-query path does not open the batch path.
    let auth = authorization(AK, SK, &app.api, body, &now_timestamp());
    let replayed = request_to(
        &app.api,
        "POST",
        BATCH,
        &[
            ("Host", &app.api),
            ("Content-Type", "application/json;charset=UTF-8"),
            ("Authorization", &auth),
        ],
        body,
    )
    .await;
    assert_eq!(desc(&replayed).0, 401);

    let scoped = signed_post_to(
        &app.api,
        BATCH,
        SCOPED_AK,
        SCOPED_SK,
        r#"{"vdn":93,"taskIds":[1]}"#,
    )
    .await;
    assert_eq!(desc(&scoped).1, "0101003");
    let allowed = signed_post_to(
        &app.api,
        BATCH,
        SCOPED_AK,
        SCOPED_SK,
        r#"{"vdn":92,"taskIds":[1]}"#,
    )
    .await;
    assert_eq!(desc(&allowed).1, "0100000");

    let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    let over = format!(r#"{{"vdn":92,"taskIds":[{}]}}"#, many.join(","));
    for (body, want) in [
        (r#"{"vdn":92,"taskIds":[]}"#, "taskIds must hold 1..100"),
        (over.as_str(), "taskIds[100]"),
        (r#"{"vdn":92,"taskIds":[1,2,"3x"]}"#, "taskIds[2]"),
        (r#"{"vdn":92}"#, "taskIds is required"),
    ] {
        let r = signed_post_to(&app.api, BATCH, AK, SK, body).await;
        let (status, code, text) = desc(&r);
        assert_eq!((status, code.as_str()), (200, "0100002"), "{body}");
        assert!(
            text.as_str().is_some_and(|t| t.contains(want)),
            "{body}: {text}"
        );
    }
    app.stop().await;
}

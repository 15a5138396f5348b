//! The batch query over real sockets: rows equal the single query's answers, in request order,
//! with canonical ids; the shared checks (signature, scope, method) hold; errors name positions.

use realstat::api::batch::PATH as BATCH;
use realstat::events::{encode_call, encode_task, CallState};
use serde_json::json;

use crate::support::*;

#[actix_web::test]
async fn rows_equal_single_queries_in_request_order_and_unknown_tasks_are_zero() {
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
    let app = TestApp::builder()
        .partitions(2)
        .events(&events)
        .spawn()
        .await;

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
    let app = spawn_app().await;
    assert_post_route_checks(&app, "GET", BATCH, |vdn| {
        format!(r#"{{"vdn":{vdn},"taskIds":[1]}}"#)
    })
    .await;

    let many: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    let over = format!(r#"{{"vdn":92,"taskIds":[{}]}}"#, many.join(","));
    assert_parameter_errors(
        &app,
        BATCH,
        &[
            (r#"{"vdn":92,"taskIds":[]}"#, "taskIds must hold 1..100"),
            (&over, "taskIds[100]"),
            (r#"{"vdn":92,"taskIds":[1,2,"3x"]}"#, "taskIds[2]"),
            (r#"{"vdn":92}"#, "taskIds is required"),
        ],
    )
    .await;
    app.stop().await;
}

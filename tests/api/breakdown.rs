//! The breakdown over real sockets: buckets by the local time of each call's first event,
//! failed calls by cause, adding up to the single query's numbers.

use realstat::api::breakdown::PATH as BREAKDOWN;
use realstat::events::{encode_call, encode_call_with_code, CallState};
use serde_json::{json, Value};

use crate::support::*;

/// Local date and `HH:mm` bucket start (of `grain` minutes) of `ts` in Asia/Shanghai.
fn local(ts: i64, grain: i64) -> (String, String) {
    let zoned = jiff::Timestamp::from_millisecond(ts)
        .expect("timestamp")
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").expect("zone"));
    let minute = i64::from(zoned.hour()) * 60 + i64::from(zoned.minute());
    let start = minute / grain * grain;
    (
        zoned.date().to_string(),
        format!("{:02}:{:02}", start / 60, start % 60),
    )
}

#[actix_web::test]
async fn buckets_and_causes_match_the_events_and_add_up() {
    let t = now_ms() - 2_000;
    let task = task(31);
    let events = [
        encode_call(&task, "a", CallState::Finished, t),
        encode_call_with_code(&task, "b", CallState::Failed, t, Some("00601")),
        encode_call_with_code(&task, "c", CallState::Failed, t, Some("00302")),
        encode_call_with_code(&task, "c", CallState::Failed, t, Some("00302")),
        encode_call(&task, "d", CallState::Failed, t),
        encode_call(&task, "e", CallState::Queued, t),
    ];
    let app = TestApp::builder().events(&events).spawn().await;

    let (date, start) = local(t, 15);
    let mut shape = Value::Null;
    for day in ["today", "yesterday"] {
        let body = format!(r#"{{"vdn":92,"taskId":"031","day":"{day}","timeGrain":"15MIN"}}"#);
        let r = signed_post_to(&app.api, BREAKDOWN, AK, SK, &body).await;
        let (code, desc) = result(&r);
        assert_eq!((r.status, code.as_str()), (200, "0100000"), "{}", r.text());
        if desc["day"] == date.as_str() {
            shape = desc;
            break;
        }
    }
    assert_eq!(shape["taskId"], "31");
    assert_eq!(shape["timeGrain"], "15MIN");
    let buckets = shape["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 96);
    let mine = buckets
        .iter()
        .find(|b| b["start"] == start.as_str())
        .expect("the events' bucket");
    assert_eq!(
        *mine,
        json!({"start": start, "totalCount": "5", "succCount": "1", "failCount": "3"})
    );
    let others: u64 = buckets
        .iter()
        .filter(|b| b["start"] != start.as_str())
        .map(|b| {
            b["totalCount"]
                .as_str()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(99)
        })
        .sum();
    assert_eq!(others, 0);
    assert_eq!(
        shape["failCodes"],
        json!([{"failCode": "", "count": "1"}, {"failCode": "00302", "count": "1"},
            {"failCode": "00601", "count": "1"}])
    );
    app.stop().await;
}

#[actix_web::test]
async fn shared_checks_and_parameter_errors() {
    let app = spawn_app().await;
    assert_post_route_checks(&app, "PUT", BREAKDOWN, |vdn| {
        format!(r#"{{"vdn":{vdn},"taskId":1}}"#)
    })
    .await;
    assert_parameter_errors(
        &app,
        BREAKDOWN,
        &[
            (r#"{"vdn":92,"taskId":1,"day":"tomorrow"}"#, "day must be"),
            (
                r#"{"vdn":92,"taskId":1,"timeGrain":"5MIN"}"#,
                "timeGrain must be",
            ),
            (r#"{"vdn":92}"#, "taskId is required"),
        ],
    )
    .await;
    // Defaults: today, hourly; an unknown task has empty buckets and no causes.
    let r = signed_post_to(&app.api, BREAKDOWN, AK, SK, r#"{"vdn":92,"taskId":404}"#).await;
    let (_, desc) = result(&r);
    assert_eq!(desc["timeGrain"], "60MIN");
    assert_eq!(desc["buckets"].as_array().map(Vec::len), Some(24));
    assert_eq!(desc["failCodes"], json!([]));
    app.stop().await;
}

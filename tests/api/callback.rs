//! The iSales call-result callback over real sockets: vendor-format pushes to the callback
//! listener, written to the mock cluster's event topic and folded back by the same replica.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::support::*;

const TOKEN: &str = "cb-token-0123456789abcdef";
const TOKENS: &str = r#"
[[token]]
value = "cb-token-0123456789abcdef"
cc_id = 89
vdns = [92, 93]
"#;
const SUCCESS: &str = r#"{"retCode":"0","retMsg":"success"}"#;
/// A customer's number: it must never reach the topic, the dead-letter topic or the metrics.
const CALLED: &str = "13912345678";
const RECORDING: &str = "https://obs.example/rec/1.wav";

/// A record of the vendor's format, called a minute ago (local time in Asia/Shanghai).
fn record(campaign: &str, call_id: &str, status: u8, vdn: u16) -> String {
    let when = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_secs(60))
        .expect("time")
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").expect("zone"))
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string();
    let fail = if status == 5 { "00601" } else { "00000" };
    format!(
        r#"{{"campaignId":"{campaign}","sessionId":"sub-{call_id}","called":"{CALLED}","callTimeStr":"{when}","callStatus":{status},"failCode":"{fail}","vdnId":{vdn},"callId":"{call_id}","customField":"","recordPath":"{RECORDING}"}}"#
    )
}

fn push_body(records: &[String]) -> String {
    format!("[{}]", records.join(","))
}

async fn push(app: &TestApp, token: &str, body: impl AsRef<[u8]>) -> Response {
    let addr = app.callback.as_deref().expect("callback listener");
    request_to(
        addr,
        "POST",
        &format!("/isales/callresult/{token}"),
        &[],
        body,
    )
    .await
}

/// The task's realstatistic numbers once totalCount reaches `total` (fails after 20 s).
async fn stats_at(app: &TestApp, task: &str, total: &str) -> serde_json::Value {
    let body = format!(r#"{{"ccId":89,"vdn":92,"taskId":"{task}"}}"#);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, desc) = result(&app.query(&body).await);
        if code == "0100000" && desc["totalCount"] == total {
            return desc;
        }
        assert!(Instant::now() < deadline, "never {total}: {desc}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every message of `topic` (partition 0) with its headers, read until `count` or 20 s.
async fn read_topic(brokers: String, topic: &'static str, count: usize) -> Vec<(String, String)> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "callback-test-reader")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning)
            .expect("partition");
        consumer.assign(&tpl).expect("assign");
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen.len() < count && Instant::now() < deadline {
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let headers = m.headers().map_or(String::new(), |hs| {
                hs.iter()
                    .map(|h| {
                        format!(
                            "{}={}",
                            h.key,
                            String::from_utf8_lossy(h.value.unwrap_or_default())
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(";")
            });
            seen.push((
                String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                headers,
            ));
        }
        seen
    })
    .await
    .expect("reader")
}

#[actix_web::test]
async fn a_vendor_push_is_acknowledged_once_written_and_retries_change_nothing() {
    let app = TestApp::builder().callback(TOKENS).spawn().await;
    let first = push_body(&[
        record("7001", "c-1", 6, 92),
        record("7001", "c-2", 5, 92),
        // No callId: the call is the subscriber's at that time.
        record("7001", "", 6, 92).replace("sub-", "subscriber-"),
    ]);
    let r = push(&app, TOKEN, &first).await;
    assert_eq!((r.status, r.text()), (200, SUCCESS.to_owned()));
    let desc = stats_at(&app, "7001", "3").await;
    assert_eq!(
        (desc["failCount"].as_str(), desc["compCount"].as_str()),
        (Some("1"), Some("3"))
    );

    // iSales pushes again (a lost answer), and twice the same record within one push.
    assert_eq!(push(&app, TOKEN, &first).await.status, 200);
    let dup = push_body(&[record("7001", "c-4", 6, 92), record("7001", "c-4", 6, 92)]);
    assert_eq!(push(&app, TOKEN, &dup).await.text(), SUCCESS);
    let desc = stats_at(&app, "7001", "4").await;
    assert_eq!(desc["failCount"], "1");
    let m = app
        .wait_metric(
            r#"realstat_callback_records_total{outcome="written"}"#,
            |v| v == 8.0,
        )
        .await;
    assert_metrics(
        &m,
        &[(r#"realstat_callback_pushes_total{outcome="accepted"}"#, 3.0)],
    );

    // What the topic holds: events of the schema, nothing personal, a retry byte-identical.
    let events = read_topic(app.kafka.brokers(), TOPIC, 8).await;
    assert_eq!(events.len(), 8);
    for (value, _) in &events {
        assert!(
            value.contains(r#""type":"CALL""#) && value.contains(r#""eventId":"cb-"#),
            "{value}"
        );
        assert!(
            !value.contains(CALLED) && !value.contains("obs.example") && !value.contains("sub"),
            "{value}"
        );
    }
    assert_eq!(
        events[0].0, events[3].0,
        "a retried push writes the same event"
    );
    assert!(!m.contains(TOKEN) && !m.contains(CALLED));
    app.stop().await;
}

#[actix_web::test]
async fn an_unknown_token_is_the_404_of_no_route_and_locks_the_address_but_never_a_valid_token() {
    let app = TestApp::builder()
        .callback(TOKENS)
        .settings(|s| s.auth.lockout_threshold = 3)
        .spawn()
        .await;
    let body = push_body(&[record("7002", "c-1", 6, 92)]);
    let nothing = request_to(
        app.callback.as_deref().expect("listener"),
        "POST",
        "/nothing",
        &[],
        &body,
    )
    .await;
    for _ in 0..3 {
        let r = push(&app, "cb-token-0123456789abcdeX", &body).await;
        assert_eq!((r.status, r.text()), (nothing.status, nothing.text()));
    }
    assert_eq!(nothing.status, 404);
    // Locked: further misses are counted as such, answered the same way.
    let r = push(&app, "cb-token-0123456789abcdeY", &body).await;
    assert_eq!((r.status, r.text()), (404, String::new()));
    // A valid token from the same address (another tenant behind the same iSales) still pushes.
    let r = push(&app, TOKEN, &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = app.metrics().await;
    assert_metrics(
        &m,
        &[
            (
                r#"realstat_callback_pushes_total{outcome="unknown_token"}"#,
                3.0,
            ),
            (r#"realstat_callback_pushes_total{outcome="locked"}"#, 1.0),
            (r#"realstat_callback_pushes_total{outcome="accepted"}"#, 1.0),
        ],
    );
    assert!(!m.contains("cb-token"));
    app.stop().await;
}

#[actix_web::test]
async fn bodies_that_are_not_a_bounded_array_are_refused_whole() {
    let app = TestApp::builder()
        .callback(TOKENS)
        .settings(|s| {
            s.callback.max_records = 2;
            s.callback.max_body_bytes = 2048;
        })
        .spawn()
        .await;
    let three = push_body(&[
        record("7003", "a", 6, 92),
        record("7003", "b", 6, 92),
        record("7003", "c", 6, 92),
    ]);
    let cases: [(&str, String, u16, &str); 5] = [
        ("not JSON", "[{".into(), 400, "1"),
        (
            "an object",
            format!(r#"{{"callResultList":{three}}}"#),
            400,
            "1",
        ),
        ("empty", String::new(), 400, "1"),
        ("too many records", three, 413, "2"),
        (
            "too large",
            format!("[{}]", "0,".repeat(1100) + "0"),
            413,
            "2",
        ),
    ];
    for (what, body, status, code) in cases {
        let r = push(&app, TOKEN, &body).await;
        let answer: serde_json::Value = serde_json::from_str(&r.text()).expect(what);
        assert_eq!(
            (r.status, answer["retCode"].as_str()),
            (status, Some(code)),
            "{what}"
        );
    }
    assert_eq!(push(&app, TOKEN, "[]").await.text(), SUCCESS);
    let m = app.metrics().await;
    assert_metrics(
        &m,
        &[
            (
                r#"realstat_callback_pushes_total{outcome="malformed"}"#,
                3.0,
            ),
            (
                r#"realstat_callback_pushes_total{outcome="too_large"}"#,
                2.0,
            ),
            (r#"realstat_callback_records_total{outcome="written"}"#, 0.0),
        ],
    );
    app.stop().await;
}

#[actix_web::test]
async fn invalid_records_are_dead_lettered_without_personal_data_and_the_valid_written() {
    let app = TestApp::builder()
        .callback(TOKENS)
        .dead_letters()
        .spawn()
        .await;
    let body = push_body(&[
        record("7004", "ok", 6, 92),
        record("7004", "status", 7, 92),
        record("7004", "vdn", 6, 94),
        record("7004", "time", 6, 92).replace(r#""callTimeStr":"20"#, r#""callTimeStr":"x20"#),
        record("", "campaign", 6, 92),
        r#""just text""#.to_owned(),
    ]);
    assert_eq!(push(&app, TOKEN, &body).await.text(), SUCCESS);
    stats_at(&app, "7004", "1").await;
    let m = app.metrics().await;
    let reasons = [
        "bad_call_status",
        "vdn_not_allowed",
        "bad_call_time",
        "bad_campaign_id",
        "not_object",
    ];
    for reason in reasons {
        let series = format!(r#"realstat_callback_invalid_records_total{{reason="{reason}"}}"#);
        assert_eq!(metric(&m, &series), Some(1.0), "{series}");
    }
    let copies = read_topic(app.kafka.brokers(), DLQ_TOPIC, 5).await;
    assert_eq!(copies.len(), 5);
    for ((value, headers), reason) in copies.iter().zip(reasons) {
        assert!(
            headers.contains(&format!("realstat-reject-reason={reason}")),
            "{headers}"
        );
        assert!(
            headers.contains("realstat-source=isales-callback"),
            "{headers}"
        );
        assert!(
            !value.contains(CALLED) && !value.contains("obs.example") && !value.contains("sub-"),
            "{value}"
        );
    }
    app.stop().await;
}

#[actix_web::test]
async fn a_push_while_the_broker_is_down_is_refused_in_time_and_taken_after() {
    let app = TestApp::builder()
        .callback(TOKENS)
        .settings(|s| s.callback.deadline = Duration::from_secs(2))
        .spawn()
        .await;
    let body = push_body(&[record("7005", "a", 6, 92), record("7005", "b", 5, 92)]);
    app.kafka.kafka.brokers_down().expect("down");
    let started = Instant::now();
    let r = push(&app, TOKEN, &body).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "answered within the deadline, not hung"
    );
    let answer: serde_json::Value = serde_json::from_str(&r.text()).expect("json");
    assert_eq!(answer["retCode"], "3");

    app.kafka.kafka.brokers_up().expect("up");
    // iSales pushes again until acknowledged.
    let deadline = Instant::now() + Duration::from_secs(30);
    while push(&app, TOKEN, &body).await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "never acknowledged after the broker came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let desc = stats_at(&app, "7005", "2").await;
    assert_eq!(desc["failCount"], "1");
    let m = app.metrics().await;
    assert!(
        metric(
            &m,
            r#"realstat_callback_pushes_total{outcome="not_stored"}"#
        ) >= Some(1.0)
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_new_tokens_file_is_taken_without_a_restart() {
    let app = TestApp::builder().callback(TOKENS).spawn().await;
    let body = push_body(&[record("7006", "a", 6, 93)]);
    let rotated = "rotated-token-0123456789";
    assert_eq!(push(&app, rotated, &body).await.status, 404);
    app.write_tokens(&TOKENS.replace(TOKEN, rotated));
    let deadline = Instant::now() + Duration::from_secs(20);
    while push(&app, rotated, &body).await.status != 200 {
        assert!(Instant::now() < deadline, "the new token was never taken");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        push(&app, TOKEN, &body).await.status,
        404,
        "the old token is gone"
    );
    app.stop().await;
}

/// A field value as iSales might send it, or as a broken sender might.
fn any_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    use serde_json::Value;
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0u64..10_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[0-9]{0,32}".prop_map(Value::String),
        "\\PC{0,40}".prop_map(Value::String),
        Just(Value::String("2026-12-03 10:00:00".into())),
        Just(Value::String("2024-02-30 10:00:00".into())),
        Just(Value::Array(vec![])),
    ]
}

/// A record: any subset of the vendor's fields (and one unknown), each with any value.
fn any_record() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
    use proptest::prelude::*;
    const FIELDS: [&str; 11] = [
        "campaignId",
        "sessionId",
        "called",
        "callTimeStr",
        "callStatus",
        "failCode",
        "vdnId",
        "callId",
        "customField",
        "recordPath",
        "unknown",
    ];
    prop_oneof![
        4 => proptest::collection::vec((0..FIELDS.len(), any_value()), 0..12).prop_map(|pairs| {
            serde_json::Value::Object(
                pairs.into_iter().map(|(i, v)| (FIELDS[i].to_owned(), v)).collect(),
            )
        }),
        1 => any_value(),
    ]
}

/// Any body: an array of records (what iSales sends, or nearly), any JSON, or any bytes.
fn any_body() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    prop_oneof![
        6 => proptest::collection::vec(any_record(), 0..6)
            .prop_map(|r| serde_json::Value::Array(r).to_string().into_bytes()),
        1 => any_record().prop_map(|v| v.to_string().into_bytes()),
        1 => proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

/// The route's contract over real HTTP for generated bodies (the schemathesis of the callback):
/// a JSON array within the bounds is acknowledged exactly as the vendor expects (the broker is
/// up), anything else is refused whole with a non-zero retCode, and never a 5xx.
#[actix_web::test]
async fn any_body_gets_an_answer_of_the_contract() {
    use proptest::test_runner::{Config, TestRunner};
    let app = TestApp::builder()
        .callback(TOKENS)
        .settings(|s| s.callback.max_records = 4)
        .spawn()
        .await;
    let addr = app.callback.clone().expect("listener");
    let checked = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config {
            cases: 96,
            failure_persistence: None,
            ..Config::default()
        });
        runner.run(&any_body(), |body| {
            let path = format!("/isales/callresult/{TOKEN}");
            let r = try_request(&addr, "POST", &path, &[], &body).expect("answered");
            let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
            let expected = match parsed {
                Some(serde_json::Value::Array(records)) if records.len() <= 4 => 200,
                Some(serde_json::Value::Array(_)) => 413,
                _ => 400,
            };
            proptest::prop_assert_eq!(r.status, expected, "{}", String::from_utf8_lossy(&body));
            let answer: serde_json::Value = serde_json::from_str(&r.text()).expect("a JSON answer");
            let code = answer["retCode"].as_str().unwrap_or("missing");
            proptest::prop_assert_eq!(code == "0", r.status == 200, "{}", answer);
            if r.status == 200 {
                proptest::prop_assert_eq!(r.text(), SUCCESS);
            }
            Ok(())
        })
    })
    .await
    .expect("join");
    checked.expect("every generated body answered by the contract");
    app.stop().await;
}

/// With `tls.*` set, the callback speaks HTTPS with the API's certificate, as iSales requires.
#[actix_web::test]
async fn the_callback_speaks_https_like_the_api() {
    use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};
    let app = TestApp::builder()
        .tls("localhost")
        .callback(TOKENS)
        .spawn()
        .await;
    let pem = std::fs::read(app.cert_path()).expect("certificate");
    let roots: Vec<_> = parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    let port = app
        .callback
        .as_deref()
        .and_then(|a| a.rsplit(':').next())
        .expect("port");
    let url = format!("https://localhost:{port}/isales/callresult/{TOKEN}");
    let body = push_body(&[record("7007", "tls", 6, 92)]);
    let answer = tokio::task::spawn_blocking(move || {
        let tls = TlsConfig::builder()
            .root_certs(RootCerts::new_with_certs(&roots))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
        let mut r = agent.post(&url).send(body.as_str()).expect("HTTPS answer");
        (
            r.status().as_u16(),
            r.body_mut().read_to_string().expect("body"),
        )
    })
    .await
    .expect("join");
    assert_eq!(answer, (200, SUCCESS.to_owned()));
    // Counted (read from the store: the API, too, speaks HTTPS here).
    let task = realstat::events::ids::TaskKey {
        cc_id: 89,
        vdn: 92,
        task_id: 7007,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let day = app.store.calendar().day_of(now_ms());
    while app.store.stats(&task, day).total != 1 {
        assert!(
            Instant::now() < deadline,
            "the pushed call is never counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

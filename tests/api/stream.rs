//! The live stream over real sockets: the first events and every change equal the batch
//! query's rows; bounds answer 429 before a stream starts; a removed key, and the process
//! stopping, end open streams cleanly; an expired signature does not.

use std::time::Duration;

use realstat::api::batch::PATH as BATCH;
use realstat::api::stream::PATH as STREAM;
use realstat::auth::client::Request;
use realstat::events::{encode_call, CallState};
use serde_json::Value;

use crate::support::sse::{Event, Refused, Sse};
use crate::support::*;

const GUARD: Duration = Duration::from_secs(30);

fn produce_call(kafka: &MockKafka, task_id: u128, call: &str, state: CallState) {
    let e = encode_call(&task(task_id), call, state, now_ms() - 1_000);
    kafka.produce(&[(None, e.as_bytes())]);
}

/// Opens `STREAM?query` with this Authorization value (none: unsigned) on a blocking thread.
async fn open_with(api: &str, query: &str, auth: Option<String>) -> Result<Sse, Refused> {
    let (api, path) = (api.to_owned(), format!("{STREAM}?{query}"));
    tokio::task::spawn_blocking(move || Sse::open(&api, &path, auth.as_deref(), GUARD))
        .await
        .expect("join")
}

/// The Authorization value of a GET of `STREAM?query`, signed now by `ak`.
fn stream_auth(api: &str, query: &str, ak: &str, sk: &str) -> String {
    sign(ak, sk, &Request::get(api, STREAM, Some(query)))
}

/// Opens a stream signed by `ak`.
async fn open(api: &str, query: &str, ak: &str, sk: &str) -> Result<Sse, Refused> {
    open_with(api, query, Some(stream_auth(api, query, ak, sk))).await
}

async fn next(mut sse: Sse) -> (Sse, Option<Event>) {
    tokio::task::spawn_blocking(move || {
        let e = sse.next_event();
        (sse, e)
    })
    .await
    .expect("join")
}

/// The batch rows of tasks 1 and 2, by task id.
async fn batch_rows(api: &str) -> Vec<Value> {
    let r = signed_post_to(api, BATCH, AK, SK, r#"{"vdn":92,"taskIds":[1,2]}"#).await;
    let (code, rows) = result(&r);
    assert_eq!(code, "0100000");
    rows.as_array().expect("rows").clone()
}

fn data(e: &Event) -> Value {
    serde_json::from_str(&e.data).expect("data is JSON")
}

#[actix_web::test]
async fn current_rows_at_once_then_each_change_as_the_batch_reads_it() {
    let first_call = encode_call(&task(1), "a", CallState::Finished, now_ms() - 1_000);
    let app = TestApp::builder()
        .partitions(2)
        .events(&[first_call])
        .spawn()
        .await;

    let sse = open(&app.api, "vdn=92&taskId=1&taskId=0002", AK, SK)
        .await
        .expect("a stream");
    assert_eq!(sse.header("cache-control"), Some("no-cache"));
    assert!(sse.header("x-request-id").is_some());
    let (sse, first) = next(sse).await;
    let (sse, second) = next(sse).await;
    let (first, second) = (first.expect("event"), second.expect("event"));
    assert_eq!((first.id, second.id), (1, 2));
    assert_eq!(
        vec![data(&first), data(&second)],
        batch_rows(&app.api).await
    );
    assert_eq!(data(&first)["totalCount"], "1");

    produce_call(&app.kafka, 2, "b", CallState::Dialing);
    let (sse, change) = next(sse).await;
    let change = change.expect("an event for the change");
    assert_eq!(change.id, 3);
    assert_eq!(data(&change), batch_rows(&app.api).await[1]);
    assert_eq!(data(&change)["execCount"], "1");
    drop(sse);
    app.stop().await;
}

#[actix_web::test]
async fn bounds_answer_429_before_the_stream_and_places_come_back() {
    let app = TestApp::builder()
        .settings(|s| {
            s.streams.max_per_key = 1;
            s.streams.max_open = 2;
        })
        .spawn()
        .await;
    let first = open(&app.api, "vdn=92&taskId=7", AK, SK)
        .await
        .expect("open");
    let refused = open(&app.api, "vdn=92&taskId=1", AK, SK)
        .await
        .err()
        .expect("per key: refused");
    assert_eq!(refused.status, 429);
    assert!(refused.header("x-request-id").is_some());
    let body: Value = serde_json::from_str(&refused.body).expect("JSON");
    assert_eq!(body["resultCode"], "0100002");
    assert_eq!(body["resultDesc"], "Too many open streams");
    let other = open(&app.api, "vdn=92&taskId=1", SCOPED_AK, SCOPED_SK)
        .await
        .expect("another key");
    drop(first);
    // The first stream's place comes back once the server sees it closed: when the connection
    // was reset, or at its next write (here: a change of its task; else the heartbeat).
    let mut reopened = None;
    for i in 0..100 {
        produce_call(&app.kafka, 7, &format!("c{i}"), CallState::Queued);
        match open(&app.api, "vdn=92&taskId=1", AK, SK).await {
            Ok(s) => {
                reopened = Some(s);
                break;
            }
            Err(r) => assert_eq!(r.status, 429),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        reopened.is_some(),
        "the place of a closed stream is given back"
    );
    // Two open now: the total bound refuses a third, whatever the key.
    let total = open(&app.api, "vdn=92&taskId=2", SCOPED_AK, SCOPED_SK).await;
    assert_eq!(total.err().map(|r| r.status), Some(429));
    let m = app.metrics().await;
    assert_eq!(metric(&m, "realstat_streams_open"), Some(2.0));
    drop((other, reopened));
    app.stop().await;
}

#[actix_web::test]
async fn a_removed_key_ends_its_stream_an_expired_signature_does_not() {
    let app = TestApp::builder()
        .settings(|s| s.auth.allowed_skew = Duration::from_secs(1))
        .spawn()
        .await;
    let auth = stream_auth(&app.api, "vdn=92&taskId=1", SCOPED_AK, SCOPED_SK);
    let sse = open(&app.api, "vdn=92&taskId=1", SCOPED_AK, SCOPED_SK)
        .await
        .expect("open");
    let (sse, _) = next(sse).await;
    // Let the signatures made so far expire: a new request with one is refused...
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let stale = open_with(&app.api, "vdn=92&taskId=1", Some(auth)).await;
    assert_eq!(stale.err().map(|r| r.status), Some(401));
    // ...while the open stream still delivers.
    produce_call(&app.kafka, 1, "a", CallState::Queued);
    let (sse, change) = next(sse).await;
    assert_eq!(
        change.map(|e| data(&e)["waitCount"].clone()),
        Some("1".into())
    );

    // Rotate the scoped key out of the keys file; the stream ends at its next wake.
    app.write_keys("[[key]]\nak = \"globalaktest\"\nsk = \"testSecretKey123\"\nvdns = \"*\"\n");
    let ended = tokio::task::spawn_blocking({
        let brokers = app.kafka.brokers();
        move || {
            let mut sse = sse;
            for i in 0..600 {
                let e = encode_call(
                    &task(1),
                    &format!("w{i}"),
                    CallState::Queued,
                    now_ms() - 1_000,
                );
                produce(&brokers, TOPIC, &[(None, e.as_bytes())]);
                if sse.next_event().is_none() {
                    return sse.ended;
                }
            }
            false
        }
    })
    .await
    .expect("join");
    assert!(
        ended,
        "the stream ended with its last chunk after the key was removed"
    );
    assert_metrics(
        &app.metrics().await,
        &[(r#"realstat_streams_ended_total{reason="key_revoked"}"#, 1.0)],
    );
    app.stop().await;
}

#[actix_web::test]
async fn stopping_the_process_ends_open_streams_cleanly() {
    let app = spawn_app().await;
    let sse = open(&app.api, "vdn=92&taskId=1", AK, SK)
        .await
        .expect("open");
    let (sse, first) = next(sse).await;
    assert!(first.is_some());
    let reader = tokio::task::spawn_blocking(move || {
        let mut sse = sse;
        while sse.next_event().is_some() {}
        sse.ended
    });
    app.stop().await;
    assert!(reader.await.expect("join"), "the last chunk was sent");
}

#[actix_web::test]
async fn refusals_come_before_the_stream_as_json() {
    let app = spawn_app().await;

    let r = signed_post_to(&app.api, STREAM, AK, SK, "{}").await;
    assert_eq!((r.status, r.header("allow")), (405, Some("GET")));
    assert_eq!(result(&r).1, "Method not allowed: use GET");

    let unsigned = open_with(&app.api, "vdn=92&taskId=1", None).await;
    assert_eq!(unsigned.err().map(|r| r.status), Some(401));

    // The query string is signed: a signature for another query does not open this one.
    let auth = stream_auth(&app.api, "vdn=92&taskId=1", AK, SK);
    let other = open_with(&app.api, "vdn=92&taskId=2", Some(auth)).await;
    assert_eq!(other.err().map(|r| r.status), Some(401));

    for (query, code, want) in [
        ("vdn=92", "0100002", "taskId is required"),
        ("vdn=92&taskId=1&taskId=x", "0100002", "taskId[1] must be"),
        ("vdn=93&taskId=1", "0101003", "Insufficient permission"),
    ] {
        let (ak, sk) = if code == "0101003" {
            (SCOPED_AK, SCOPED_SK)
        } else {
            (AK, SK)
        };
        let refused = open(&app.api, query, ak, sk).await.err().expect("refused");
        assert_eq!(refused.status, 200, "{query}");
        let body: Value = serde_json::from_str(&refused.body).expect("JSON");
        assert_eq!(body["resultCode"], code, "{query}");
        assert!(
            body["resultDesc"]
                .as_str()
                .is_some_and(|d| d.contains(want)),
            "{query}: {body}"
        );
    }
    app.stop().await;
}

//! iSales pushing call results into `realstat serve` through the callback, against a real broker
//! (tansu): duplicates, retries, bad records, an unknown token, and a push while the broker is
//! killed with SIGKILL, refused and then acknowledged after the restart. Every task's
//! realstatistic is exact afterwards, by the independent oracle.

use std::time::{Duration, Instant};

use realstat::events::{encode_call_with_code, CallState};

use crate::broker::Broker;
use crate::oracle::Oracle;
use crate::process::{create_topic_on, unique_topic, Replica};
use crate::support::*;
use crate::{answers, expected};

const TOKEN: &str = "e2e-callback-token-0123456789";
const TOKENS: &str = r#"
[[token]]
value = "e2e-callback-token-0123456789"
cc_id = 89
vdns = [92]
"#;
const CAMPAIGNS: [&str; 3] = ["1122104910", "1122104911", "0042"];

/// One call: the vendor's record, and the event the oracle folds for it.
struct Call {
    record: String,
    event: Vec<u8>,
}

fn calls(n: usize) -> Vec<Call> {
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").expect("zone");
    let start = (now_ms() / 1000 - 600) * 1000;
    (0..n)
        .map(|i| {
            let campaign = CAMPAIGNS[i % 3];
            let ts = start + i as i64 * 1000;
            let when = jiff::Timestamp::from_millisecond(ts)
                .expect("time")
                .to_zoned(tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string();
            let (status, code) = if i % 3 == 0 { (5, "00601") } else { (6, "00000") };
            // Every seventh call has no callId: the subscriber and the time identify it.
            let call_id = if i % 7 == 0 { String::new() } else { format!("e2e-{i}") };
            let record = format!(
                r#"{{"campaignId":"{campaign}","sessionId":"sub-{i}","called":"1391234{i:04}","callTimeStr":"{when}","callStatus":{status},"failCode":"{code}","vdnId":92,"callId":"{call_id}","customField":"","recordPath":""}}"#
            );
            let task = realstat::events::ids::TaskKey {
                cc_id: 89,
                vdn: 92,
                task_id: campaign.parse().expect("digits"),
            };
            let (state, fail) = if status == 5 {
                (CallState::Failed, Some(code))
            } else {
                (CallState::Finished, None)
            };
            let event = encode_call_with_code(&task, &format!("oracle-{i}"), state, ts, fail);
            Call {
                record,
                event: event.into_bytes(),
            }
        })
        .collect()
}

fn body(calls: &[Call], extra: &[&str]) -> String {
    let records: Vec<&str> = calls
        .iter()
        .map(|c| c.record.as_str())
        .chain(extra.iter().copied())
        .collect();
    format!("[{}]", records.join(","))
}

async fn push(addr: &str, token: &str, body: &str) -> Response {
    let path = format!("/isales/callresult/{token}");
    request_to(addr, "POST", &path, &[], body).await
}

/// Pushes `body` as iSales does: again after every failed answer (here without its 10 minutes).
async fn push_until_acknowledged(addr: &str, body: &str, replica: &Replica) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = push(addr, TOKEN, body).await;
        if r.status == 200 {
            assert_eq!(r.text(), r#"{"retCode":"0","retMsg":"success"}"#);
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never acknowledged: {} {}; replica log:\n{}",
            r.status,
            r.text(),
            replica.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[actix_web::test]
#[ignore = "needs tansu: run scripts/test"]
async fn pushes_through_the_callback_are_exact_across_duplicates_bad_records_and_a_broker_kill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let brokers = format!("127.0.0.1:{port}");
    let broker = Broker::start(dir.path(), port);
    let topic = unique_topic("e2e-callback");
    create_topic_on(&brokers, &topic, 3).await;
    let tokens = dir.path().join("callback-tokens.toml");
    std::fs::write(&tokens, TOKENS).expect("tokens file");
    let callback = format!("127.0.0.1:{}", free_port());
    let tokens_path = tokens.display().to_string();
    let env = [
        ("REALSTAT_KAFKA_BROKERS", brokers.as_str()),
        ("REALSTAT_CALLBACK_LISTEN", callback.as_str()),
        ("REALSTAT_CALLBACK_TOKENS_FILE", tokens_path.as_str()),
        ("REALSTAT_CALLBACK_DEADLINE", "3s"),
    ];
    let replica = Replica::start_in(&topic, dir.path(), &env);
    replica.wait_ready(Duration::from_secs(60)).await;

    let calls = calls(60);
    let (first, rest) = calls.split_at(40);
    // Pushes of 10, each pushed twice (a lost answer), one with bad records among the good.
    let bad = [
        r#"{"campaignId":"1122104910","vdnId":93,"callStatus":6,"callTimeStr":"2026-01-01 00:00:00","callId":"x"}"#,
        r#"{"campaignId":"1122104910","vdnId":92,"callStatus":9,"callTimeStr":"2026-01-01 00:00:00","callId":"y"}"#,
        r#""not a record""#,
    ];
    for (i, batch) in first.chunks(10).enumerate() {
        let extra: &[&str] = if i == 1 { &bad } else { &[] };
        let b = body(batch, extra);
        push_until_acknowledged(&callback, &b, &replica).await;
        push_until_acknowledged(&callback, &b, &replica).await;
    }
    // A duplicate record inside one push, and a push in another order.
    let mixed = body(
        &[&first[3], &first[3], &first[12]].map(|c| Call {
            record: c.record.clone(),
            event: Vec::new(),
        }),
        &[],
    );
    push_until_acknowledged(&callback, &mixed, &replica).await;
    // A stranger with a wrong token: the 404 of no route.
    let r = push(&callback, "e2e-callback-token-WRONG00000", &body(rest, &[])).await;
    assert_eq!((r.status, r.text()), (404, String::new()));

    // The broker dies mid-traffic: the push is refused within the deadline, not acknowledged.
    broker.kill();
    let during = body(&rest[..10], &[]);
    let started = Instant::now();
    let r = push(&callback, TOKEN, &during).await;
    assert_ne!(
        r.status,
        200,
        "acknowledged with the broker dead: {}",
        r.text()
    );
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "answered in {:?}",
        started.elapsed()
    );
    let answer: serde_json::Value = serde_json::from_str(&r.text()).expect("JSON answer");
    assert_ne!(answer["retCode"], "0");

    // It comes back with its log; iSales pushes again and the rest follows.
    let _broker = Broker::start(dir.path(), port);
    push_until_acknowledged(&callback, &during, &replica).await;
    push_until_acknowledged(&callback, &body(&rest[10..], &[]), &replica).await;

    let oracle = Oracle::fold(calls.iter().map(|c| c.event.as_slice()));
    let want = expected(&oracle);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = answers(&replica).await;
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not exact:\n{got:#?}\nwant\n{want:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let m = get(&replica.admin, "/metrics").await.text();
    assert_eq!(
        metric(
            &m,
            r#"realstat_callback_pushes_total{outcome="unknown_token"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &m,
            r#"realstat_callback_invalid_records_total{reason="vdn_not_allowed"}"#
        ),
        Some(2.0)
    );
    assert!(
        metric(
            &m,
            r#"realstat_callback_pushes_total{outcome="not_stored"}"#
        ) >= Some(1.0)
    );
    assert!(!m.contains(TOKEN) && !m.contains("1391234"));
    let log = replica.log_text();
    assert!(
        !log.contains(TOKEN) && !log.contains("1391234"),
        "the log leaks"
    );
    assert!(replica.terminate().success(), "SIGTERM exits 0");
}

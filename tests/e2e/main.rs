//! End-to-end against a real Kafka-protocol broker: `realstat serve` runs as a process, events are
//! produced with the project's own producer, answers are compared with an independent oracle.
//!
//! Needs a broker: `scripts/test` starts tansu and sets `REALSTAT_E2E_BROKERS`. The tests are
//! `#[ignore]`d so a plain `cargo test` does not run them without one; run with `--ignored` and
//! no broker, they fail rather than pass silently.

#[path = "../support/mod.rs"]
mod support;

mod broker;
mod callback;
mod oracle;
mod process;
mod restart;

use std::collections::BTreeMap;
use std::time::Duration;

use realstat::dev::simulate::{SimulateOptions, Simulator};
use serde_json::Value;

use oracle::Oracle;
use process::{brokers, create_topic, unique_topic, Replica};
use support::*;

/// A deterministic day of traffic for three tasks, minutes long, with redeliveries.
fn simulated_log(seed: u64, minutes: i64) -> Vec<(String, Vec<u8>)> {
    let mut sim = Simulator::new(SimulateOptions {
        cc_id: 89,
        vdn: 92,
        tasks: vec!["1122104910".into(), "1122104911".into(), "0042".into()],
        calls_per_second: 5.0,
        answer_ratio: 0.55,
        planned_per_task: 900,
        duplicate_ratio: 0.1,
        max_calls: None,
        seed,
    });
    let end = now_ms() - 2_000;
    let mut t = end - minutes * 60_000;
    let mut out = Vec::new();
    let mut events = Vec::new();
    while t <= end {
        sim.step(t, &mut events);
        t += 250;
    }
    for e in events.drain(..) {
        out.push((e.key, e.payload));
    }
    out
}

/// Malformed messages a broken producer could send, interleaved with the valid ones.
fn malformed() -> Vec<Vec<u8>> {
    vec![
        b"{not json".to_vec(),
        Vec::new(),
        br#"{"type":"CALL","vdn":92,"taskId":"1122104910","callId":"x","state":"LOST","ts":1}"#
            .to_vec(),
        br#"{"v":9,"type":"TASK","vdn":92,"taskId":"1","plannedCount":1,"ts":1}"#.to_vec(),
        br#"{"type":"CALL","ccId":89,"vdn":92,"taskId":"1122104910","state":"QUEUED","ts":5}"#
            .to_vec(),
        br#"[1,2,3]"#.to_vec(),
    ]
}

fn produce_log(topic: &str, log: &[(String, Vec<u8>)], bad: &[Vec<u8>]) {
    let mut msgs: Vec<(Option<&str>, Option<i32>, &[u8])> = Vec::new();
    let every = (log.len() / bad.len().max(1)).max(1);
    let mut bad_iter = bad.iter();
    for (i, (k, v)) in log.iter().enumerate() {
        msgs.push((Some(k.as_str()), None, v.as_slice()));
        if i % every == 0 {
            if let Some(b) = bad_iter.next() {
                msgs.push((None, None, b.as_slice()));
            }
        }
    }
    for b in bad_iter {
        msgs.push((None, None, b.as_slice()));
    }
    realstat::dev::simulate::produce_raw(&brokers(), topic, &[], &msgs).expect("produced");
}

fn tasks_to_check() -> Vec<(u16, u16, &'static str)> {
    vec![
        (89, 92, "1122104910"),
        (89, 92, "1122104911"),
        (89, 92, "42"),
        (89, 92, "999"), // never seen: zeros
    ]
}

async fn answers(replica: &Replica) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (cc, vdn, task) in tasks_to_check() {
        let body = format!(r#"{{"ccId":{cc},"vdn":{vdn},"taskId":"{task}"}}"#);
        let r = signed_post(&replica.api, AK, SK, &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let (code, desc) = result(&r);
        assert_eq!(code, "0100000");
        out.insert(task.to_owned(), desc);
    }
    out
}

/// The batch query for every task to check, ids in the lenient forms clients send; rows keyed
/// by the canonical id the answer gives.
async fn batch_answers(replica: &Replica) -> BTreeMap<String, Value> {
    let body = r#"{"ccId":89,"vdn":92,"taskIds":["1122104910",1122104911,"0042","999"]}"#;
    let r = signed_post_to(&replica.api, realstat::api::batch::PATH, AK, SK, body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (code, rows) = result(&r);
    assert_eq!(code, "0100000", "{rows}");
    let rows = rows.as_array().expect("rows").clone();
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["taskId"].as_str()).collect();
    assert_eq!(
        ids,
        ["1122104910", "1122104911", "42", "999"],
        "request order"
    );
    rows.into_iter()
        .map(|mut row| {
            let id = row["taskId"].as_str().unwrap_or_default().to_owned();
            row.as_object_mut().map(|o| o.remove("taskId"));
            (id, row)
        })
        .collect()
}

/// The hourly breakdown of every task to check.
async fn breakdowns(replica: &Replica) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (cc, vdn, task) in tasks_to_check() {
        let body = format!(r#"{{"ccId":{cc},"vdn":{vdn},"taskId":"{task}","timeGrain":"60MIN"}}"#);
        let r = signed_post_to(&replica.api, realstat::api::breakdown::PATH, AK, SK, &body).await;
        let (code, desc) = result(&r);
        assert_eq!(code, "0100000", "{desc}");
        out.insert(task.to_owned(), desc);
    }
    out
}

fn expected_breakdowns(oracle: &Oracle) -> BTreeMap<String, Value> {
    tasks_to_check()
        .into_iter()
        .map(|(cc, vdn, task)| (task.to_owned(), oracle.breakdown(cc, vdn, task)))
        .collect()
}

fn expected(oracle: &Oracle) -> BTreeMap<String, Value> {
    tasks_to_check()
        .into_iter()
        .map(|(cc, vdn, task)| (task.to_owned(), oracle.realstatistic(cc, vdn, task)))
        .collect()
}

#[actix_web::test]
#[ignore = "needs a real broker: run scripts/test"]
async fn serve_answers_exactly_what_the_log_says_and_replicas_agree() {
    let topic = unique_topic("e2e-exact");
    create_topic(&topic, 3).await;
    let log = simulated_log(7, 10);
    let bad = malformed();
    produce_log(&topic, &log, &bad);
    let oracle = Oracle::fold(log.iter().map(|(_, v)| v.as_slice()));
    assert!(oracle.tasks() >= 3, "the simulator produced traffic");

    let a = Replica::start(&topic).await;
    a.wait_ready(Duration::from_secs(60)).await;
    // The first read after readiness is already exact, one task at a time and in one batch,
    // and so is the day's breakdown.
    assert_eq!(answers(&a).await, expected(&oracle));
    assert_eq!(batch_answers(&a).await, expected(&oracle));
    assert_eq!(breakdowns(&a).await, expected_breakdowns(&oracle));

    // Metrics agree with what was produced.
    let m = get(&a.admin, "/metrics").await.text();
    let consumed = metric(&m, "realstat_events_consumed_total").unwrap_or(0.0) as usize;
    assert_eq!(consumed, log.len() + bad.len());
    let rejected: f64 = m
        .lines()
        .filter(|l| l.starts_with("realstat_events_rejected_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(rejected as usize, bad.len());

    // Live traffic after readiness, then a second replica from scratch: both agree with the
    // oracle over the whole log.
    let more = simulated_log(8, 1);
    produce_log(&topic, &more, &[]);
    let all = Oracle::fold(log.iter().chain(more.iter()).map(|(_, v)| v.as_slice()));
    let total = log.len() + bad.len() + more.len();
    a.wait_consumed(total, Duration::from_secs(60)).await;
    assert_eq!(answers(&a).await, expected(&all));
    assert_eq!(batch_answers(&a).await, expected(&all));
    assert_eq!(breakdowns(&a).await, expected_breakdowns(&all));

    let b = Replica::start(&topic).await;
    b.wait_ready(Duration::from_secs(60)).await;
    assert_eq!(answers(&b).await, answers(&a).await);

    assert!(a.terminate().success(), "SIGTERM exits 0");
    assert!(b.terminate().success(), "SIGTERM exits 0");
}

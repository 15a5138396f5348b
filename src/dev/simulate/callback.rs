//! `realstat simulate --callback URL`: the simulator's finished calls pushed through the iSales
//! call-result callback (docs/callback.md) in the vendor's format, with the vendor's behaviour:
//! a push answered with anything but 200 is pushed again at once, then after `retry_after`, at
//! most 6 times in all; and, at `duplicate_ratio`, an acknowledged push is sent again (the answer
//! lost on the way back), so a receiver sees the retries and duplicates it must absorb.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::{json, Value};

use super::{SimEvent, SimulateOptions, Simulator};
use crate::shutdown::Shutdown;

/// The vendor's limit: "each call data record can be pushed for a maximum of six times".
pub const MAX_PUSHES: u8 = 6;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedReport {
    pub records: u64,
    pub pushes: u64,
    pub acknowledged: u64,
    pub refused: u64,
    pub duplicates: u64,
    /// Pushes refused six times: lost, as iSales would lose them.
    pub given_up: u64,
}

/// How to push.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    /// `http(s)://host:port/isales/callresult/<token>`.
    pub url: String,
    pub zone: TimeZone,
    pub retry_after: Duration,
    pub duplicate_ratio: f64,
}

/// The vendor's record of a finished call (`FINISHED` or `FAILED`), `None` for other events.
/// `called` is a made-up number: the simulator knows no customer.
pub fn vendor_record(event: &SimEvent, zone: &TimeZone) -> Option<Value> {
    let e: Value = serde_json::from_slice(&event.payload).ok()?;
    let status = match e["state"].as_str()? {
        "FINISHED" => 6,
        "FAILED" => 5,
        _ => return None,
    };
    let when = jiff::Timestamp::from_millisecond(e["ts"].as_i64()?)
        .ok()?
        .to_zoned(zone.clone())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string();
    let call_id = e["callId"].as_str()?;
    let digits: u64 = call_id.bytes().map(u64::from).sum();
    Some(json!({
        "campaignId": e["taskId"].as_str()?,
        "sessionId": format!("sim-{call_id}"),
        "called": format!("1380000{:04}", digits % 10_000),
        "callTimeStr": when,
        "callStatus": status,
        "failCode": e["failCode"].as_str().unwrap_or("00000"),
        "vdnId": e["vdn"].as_u64()?,
        "callId": call_id,
        "customField": "",
        "recordPath": "",
    }))
}

struct Pending {
    body: String,
    pushes: u8,
    due: Instant,
}

/// Runs the simulator against the wall clock, pushing each second's finished calls as one
/// push, until `stop` or the simulator's `max_calls` are done and every push is settled.
pub fn feed(opts: SimulateOptions, feed: FeedOptions, stop: &Shutdown) -> FeedReport {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut rng = SmallRng::seed_from_u64(opts.seed ^ 0x5eed);
    let mut sim = Simulator::new(SimulateOptions {
        duplicate_ratio: 0.0,
        ..opts
    });
    let mut report = FeedReport::default();
    let mut waiting: VecDeque<Pending> = VecDeque::new();
    let mut events = Vec::new();
    let start = Instant::now();
    let epoch_ms = jiff::Timestamp::now().as_millisecond();
    let finished =
        |sim: &Simulator, waiting: &VecDeque<Pending>| sim.is_done() && waiting.is_empty();
    while !stop.is_triggered() && !finished(&sim, &waiting) {
        let now_ms = epoch_ms + start.elapsed().as_millis() as i64;
        sim.step(now_ms, &mut events);
        let records: Vec<Value> = events
            .drain(..)
            .filter_map(|e| vendor_record(&e, &feed.zone))
            .collect();
        if !records.is_empty() {
            report.records += records.len() as u64;
            waiting.push_back(Pending {
                body: Value::Array(records).to_string(),
                pushes: 0,
                due: Instant::now(),
            });
        }
        let now = Instant::now();
        for _ in 0..waiting.len() {
            let Some(mut p) = waiting.pop_front() else {
                break;
            };
            if p.due > now {
                waiting.push_back(p);
                continue;
            }
            if push_with_immediate_retry(&agent, &feed.url, &mut p, &mut report) {
                if rng.random_bool(feed.duplicate_ratio.clamp(0.0, 1.0)) {
                    report.duplicates += 1;
                    push_once(&agent, &feed.url, &p.body, &mut report);
                }
            } else if p.pushes >= MAX_PUSHES {
                report.given_up += 1;
                tracing::warn!(
                    pushes = p.pushes,
                    "simulate: push given up, as iSales would"
                );
            } else {
                p.due = now + feed.retry_after;
                waiting.push_back(p);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    report
}

/// One push, and at once a second if the first fails (the vendor's "pushes the result again").
fn push_with_immediate_retry(
    agent: &ureq::Agent,
    url: &str,
    p: &mut Pending,
    report: &mut FeedReport,
) -> bool {
    for _ in 0..2 {
        if p.pushes >= MAX_PUSHES {
            return false;
        }
        p.pushes += 1;
        if push_once(agent, url, &p.body, report) {
            return true;
        }
    }
    false
}

fn push_once(agent: &ureq::Agent, url: &str, body: &str, report: &mut FeedReport) -> bool {
    report.pushes += 1;
    let ok = match agent.post(url).send(body) {
        Ok(r) if r.status() == 200 => true,
        Ok(r) => {
            tracing::info!(status = r.status().as_u16(), "simulate: push refused");
            false
        }
        Err(e) => {
            tracing::info!(error = %e, "simulate: push failed");
            false
        }
    };
    if ok {
        report.acknowledged += 1;
    } else {
        report.refused += 1;
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_calls_become_vendor_records_and_others_nothing() {
        let zone = TimeZone::get("Asia/Shanghai").expect("zone");
        let mut sim = Simulator::new(SimulateOptions {
            max_calls: Some(30),
            seed: 3,
            ..SimulateOptions::default()
        });
        let mut events = Vec::new();
        let mut t = 1_732_435_200_000;
        while !sim.is_done() {
            sim.step(t, &mut events);
            t += 1_000;
        }
        let records: Vec<Value> = events
            .iter()
            .filter_map(|e| vendor_record(e, &zone))
            .collect();
        assert_eq!(records.len() as u64, sim.calls_resolved());
        for r in &records {
            assert!(matches!(r["callStatus"].as_u64(), Some(5 | 6)), "{r}");
            assert_eq!(r["callTimeStr"].as_str().map(str::len), Some(19));
        }
    }
}

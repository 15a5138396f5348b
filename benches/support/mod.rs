//! Shared by `benches/core.rs` and the `examples/bench_*.rs` programs that `scripts/bench` runs:
//! realistic events, a large synthetic store, the request a client sends, and small helpers.
//!
//! Not a bench target of its own: cargo only discovers `benches/*.rs` and `benches/*/main.rs`.
#![allow(dead_code)] // each program uses its own subset

use std::time::Duration;

use realstat::auth::{c2, client};
use realstat::dev::simulate::{SimEvent, SimulateOptions, Simulator};
use realstat::events::ids::TaskKey;
use realstat::events::{CallKey, CallState, Event, EventKind};
use realstat::fold::{Calendar, FoldPolicy, Store};

pub const CC_ID: u16 = 89;
pub const VDN: u16 = 92;
pub const TIMEZONE: &str = "Asia/Shanghai";
pub const AK: &str = "benchak";
pub const SK: &str = "benchSecretKey-0123456789";
pub const KEYS_TOML: &str = r#"
[[key]]
ak = "benchak"
sk = "benchSecretKey-0123456789"
vdns = "*"
"#;

/// Task ids of the simulated call center: `1122100000`, `1122100001`, ...
pub fn task_id(i: usize) -> String {
    format!("{}", 1_122_100_000_u64 + i as u64)
}

pub fn task_key(i: usize) -> TaskKey {
    TaskKey {
        cc_id: CC_ID,
        vdn: VDN,
        task_id: 1_122_100_000_u128 + i as u128,
    }
}

/// Produces the simulator's events (one `TASK` event per task, then calls going
/// `QUEUED -> DIALING -> FAILED` or `... -> CONNECTED -> FINISHED`, with `failCode` and
/// `eventId`), streamed so that millions of them need not be held at once.
///
/// Each `CALL` event also carries the two phone numbers an iSales producer typically forwards
/// (`callerNo`, `calledNo`), fields realstat does not use and must skip: that brings the events
/// to about 200 bytes, and decoding pays for unknown fields as it would in production.
///
/// The simulated time runs from two hours before `end_ms` with a call rate chosen so that `n`
/// events fill it, so every `ts` is in the past and within the retention window.
pub struct EventStream {
    sim: Simulator,
    t: i64,
    step_ms: i64,
    buf: Vec<SimEvent>,
    pos: usize,
    left: usize,
}

impl EventStream {
    pub fn new(n: usize, tasks: usize, seed: u64, end_ms: i64) -> Self {
        const SPAN_MS: i64 = 2 * 3_600_000;
        // About 3.6 events per call (QUEUED, DIALING, then FAILED or CONNECTED + FINISHED).
        let calls_per_second = (n as f64 / 3.6 / (SPAN_MS as f64 / 1000.0)).max(1.0);
        let sim = Simulator::new(SimulateOptions {
            cc_id: CC_ID,
            vdn: VDN,
            tasks: (0..tasks.max(1)).map(task_id).collect(),
            calls_per_second,
            answer_ratio: 0.55,
            planned_per_task: 2_000,
            duplicate_ratio: 0.01,
            max_calls: None,
            seed,
        });
        EventStream {
            sim,
            t: end_ms - SPAN_MS,
            step_ms: 250,
            buf: Vec::new(),
            pos: 0,
            left: n,
        }
    }
}

impl Iterator for EventStream {
    type Item = SimEvent;

    fn next(&mut self) -> Option<SimEvent> {
        if self.left == 0 {
            return None;
        }
        while self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            self.sim.step(self.t, &mut self.buf);
            self.t += self.step_ms;
        }
        let mut ev = std::mem::replace(
            &mut self.buf[self.pos],
            SimEvent {
                key: String::new(),
                payload: Vec::new(),
            },
        );
        self.pos += 1;
        self.left -= 1;
        if ev.payload.ends_with(b"}") && find(&ev.payload, br#""type":"CALL""#).is_some() {
            let h = mix(self.left as u64);
            ev.payload.pop();
            ev.payload.extend_from_slice(
                format!(
                    r#","callerNo":"02566{:06}","calledNo":"1{:010}"}}"#,
                    h % 1_000_000,
                    (h >> 20) % 10_000_000_000
                )
                .as_bytes(),
            );
        }
        Some(ev)
    }
}

/// `n` realistic message values, for the in-memory benchmarks.
pub fn payloads(n: usize, tasks: usize) -> Vec<Vec<u8>> {
    EventStream::new(n, tasks, 7, now_ms())
        .map(|e| e.payload)
        .collect()
}

/// A store without the state limits: the benchmarks measure the fold at sizes beyond them.
pub fn new_store() -> Store {
    Store::new(
        Calendar::named(TIMEZONE).expect("known time zone"),
        FoldPolicy {
            max_tasks: usize::MAX,
            max_calls_per_task: usize::MAX,
            ..realstat::config::Settings::default().fold_policy()
        },
    )
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The call event of call `c` of task `t` in a synthetic day: a realistic mix of final states
/// (mostly ended, a few still waiting or under way), `ts` spread over the last hours.
pub fn synthetic_call(t: usize, c: usize, calls_per_task: usize, now: i64) -> Event {
    let h = mix(((t as u64) << 32) | c as u64);
    let state = match h % 100 {
        0..=3 => CallState::Queued,
        4..=7 => CallState::Dialing,
        8..=11 => CallState::Connected,
        12..=46 => CallState::Failed,
        _ => CallState::Finished,
    };
    // Spread over up to 3 h before `now`, later calls later.
    let span = 3 * 3_600_000_i64;
    let ts =
        now - span + (span * c as i64) / calls_per_task.max(1) as i64 + (h >> 40) as i64 % 1000;
    Event {
        task: task_key(t),
        ts: ts.min(now),
        // Real call keys are xxh3 hashes of the call id; a mixed integer is as uniform.
        kind: EventKind::Call {
            call: CallKey(h),
            state,
            fail_code: None,
        },
    }
}

pub fn synthetic_plan(t: usize, now: i64) -> Event {
    Event {
        task: task_key(t),
        ts: now - 3 * 3_600_000,
        kind: EventKind::Task { planned: 2_000 },
    }
}

/// A store holding `tasks * calls_per_task` calls, built round-robin over the tasks as a live
/// stream would (so every task's call map grows the way it does in production).
pub fn synthetic_store(tasks: usize, calls_per_task: usize) -> Store {
    let store = new_store();
    let now = now_ms();
    for t in 0..tasks {
        store.apply(&synthetic_plan(t, now), now);
    }
    for c in 0..calls_per_task {
        for t in 0..tasks {
            store.apply(&synthetic_call(t, c, calls_per_task, now), now);
        }
    }
    store
}

pub fn now_ms() -> i64 {
    realstat::clock::now_ms()
}

/// The realstatistic body for task `i`, as the vendor's clients send it.
pub fn request_body(i: usize) -> String {
    format!(
        r#"{{"ccId":"{CC_ID}","vdn":{VDN},"taskId":"{}"}}"#,
        task_id(i)
    )
}

/// The Content-Type a CC-CMS client sends and signs (with `content-length` and `host`).
pub const CONTENT_TYPE: &str = client::JSON_CONTENT_TYPE;

/// Authorization value for a POST of `body` to the realstatistic path, signed at `unix_seconds`.
pub fn authorization_at(host: &str, body: &str, unix_seconds: i64) -> String {
    authorization_for(host, realstat::api::PATH, body, unix_seconds)
}

/// Authorization value for a POST of `body` to `path`, signed at `unix_seconds`.
pub fn authorization_for(host: &str, path: &str, body: &str, unix_seconds: i64) -> String {
    let request = client::Request::post_json(host, path, body.as_bytes());
    client::authorization(
        AK,
        SK.as_bytes(),
        &c2::format_timestamp(unix_seconds),
        &request,
    )
}

/// The complete HTTP/1.1 keep-alive request for task `i`, signed now.
pub fn signed_request(host: &str, i: usize) -> Vec<u8> {
    signed_request_with_body(host, &request_body(i))
}

/// The complete HTTP/1.1 keep-alive request with this body, signed now.
pub fn signed_request_with_body(host: &str, body: &str) -> Vec<u8> {
    signed_post(host, realstat::api::PATH, body)
}

/// The complete HTTP/1.1 keep-alive POST of `body` to `path`, signed now.
pub fn signed_post(host: &str, path: &str, body: &str) -> Vec<u8> {
    let auth = authorization_for(host, path, body, now_ms() / 1000);
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nAuthorization: {auth}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A batch request body asking for `n` tasks from the `i`th on.
pub fn batch_body(i: usize, n: usize, tasks: usize) -> String {
    let ids: Vec<String> = (0..n)
        .map(|k| format!("\"{}\"", task_id((i + k) % tasks)))
        .collect();
    format!(
        r#"{{"ccId":"{CC_ID}","vdn":{VDN},"taskIds":[{}]}}"#,
        ids.join(",")
    )
}

/// A field of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`), 0 where there is none.
pub fn proc_status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

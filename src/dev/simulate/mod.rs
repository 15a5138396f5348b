//! Realistic iSales traffic, for demos, tests and benchmarks.
//!
//! [`Simulator`] is pure: it turns a seed and the clock values it is fed into the events an iSales
//! outbound module would publish (see `events.md`): one `TASK` event per task with its plan, then
//! calls arriving at a steady random rate, each going `QUEUED -> DIALING -> FAILED` or
//! `QUEUED -> DIALING -> CONNECTED -> FINISHED`, with realistic delays so that at any moment some
//! calls wait and some are being dialed or talked. Optionally some events are delivered twice.
//!
//! [`produce`] runs a simulator against the wall clock and writes its events to Kafka;
//! [`produce_raw`] writes given messages verbatim (tests put known or malformed events in a topic);
//! [`callback::feed`] pushes the finished calls through the iSales call-result callback instead.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::events::CallState;

pub mod callback;
mod produce;
pub use produce::{produce, produce_raw, SimulateError, SimulateReport};

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulateOptions {
    /// Call center id of every event.
    pub cc_id: u16,
    /// VDN of every event.
    pub vdn: u16,
    /// Task ids (digit strings); calls are spread uniformly over them.
    pub tasks: Vec<String>,
    /// Mean rate of new calls over all tasks (Poisson arrivals). `<= 0` or not finite: no calls.
    pub calls_per_second: f64,
    /// Share of dialed calls that connect (clamped to 0..=1).
    pub answer_ratio: f64,
    /// `plannedCount` of the `TASK` events.
    pub planned_per_task: u64,
    /// Share of events delivered a second time, 0..2 s later (clamped to 0..=1).
    pub duplicate_ratio: f64,
    /// Start no more than this many calls, and stop once all of them have ended.
    pub max_calls: Option<u64>,
    /// Seed of the random generator.
    pub seed: u64,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        SimulateOptions {
            cc_id: 1,
            vdn: 92,
            tasks: vec![
                "1122104910".to_owned(),
                "1122104911".to_owned(),
                "1122104912".to_owned(),
            ],
            calls_per_second: 20.0,
            answer_ratio: 0.6,
            planned_per_task: 2000,
            duplicate_ratio: 0.0,
            max_calls: None,
            seed: 1,
        }
    }
}

/// One event to produce: the message key and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEvent {
    /// `"{ccId}:{vdn}:{taskId}"`.
    pub key: String,
    /// One JSON object per `events.md`, schema v1.
    pub payload: Vec<u8>,
}

/// Ground truth of one task, as the simulator knows it (every call it started, whatever its day).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskCounts {
    pub task_id: String,
    pub planned: u64,
    /// Calls started.
    pub total: u64,
    pub queued: u64,
    pub dialing: u64,
    pub connected: u64,
    pub failed: u64,
    pub finished: u64,
}

/// Interval at which the `TASK` events are repeated (harmless, the plan is an absolute value; it
/// gives a run that crosses midnight a plan for the new day).
const PLAN_INTERVAL_MS: i64 = 10 * 60 * 1000;
/// Redeliveries happen up to this long after the original event.
const REDELIVERY_MAX_DELAY_MS: i64 = 2000;

/// Failure causes of unanswered calls (iSales `failCode`), relative weight, and how long the call
/// is dialed before it fails, in ms.
const FAIL_CAUSES: &[(&str, u32, i64, i64)] = &[
    ("00603", 30, 15_000, 30_000), // no answer, released after ringing
    ("00601", 20, 3_000, 12_000),  // called party hung up before answering
    ("00604", 15, 2_000, 8_000),   // call rejected
    ("00537", 12, 500, 2_000),     // busy
    ("00548", 8, 500, 3_000),      // phone switched off
    ("00538", 7, 300, 1_500),      // empty or wrong number
    ("00549", 5, 1_000, 4_000),    // out of the service area
    ("01040", 3, 30_000, 40_000),  // ringing timeout, released by the platform
];

#[derive(Debug, Clone, Copy)]
struct Call {
    task: usize,
    no: u64,
    /// `None`: the call will be answered.
    fail: Option<usize>,
}

#[derive(Debug)]
enum Action {
    Plan,
    Arrival,
    Transition(Call, CallState),
    Redeliver(SimEvent),
}

#[derive(Debug)]
struct Scheduled {
    at: i64,
    seq: u64,
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: `BinaryHeap` is a max-heap and the earliest item must come out first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Serialize)]
struct Wire<'a> {
    v: u8,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "ccId")]
    cc_id: u16,
    vdn: u16,
    #[serde(rename = "taskId")]
    task_id: &'a str,
    #[serde(rename = "callId", skip_serializing_if = "Option::is_none")]
    call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'static str>,
    #[serde(rename = "failCode", skip_serializing_if = "Option::is_none")]
    fail_code: Option<&'static str>,
    #[serde(rename = "plannedCount", skip_serializing_if = "Option::is_none")]
    planned_count: Option<u64>,
    ts: i64,
    #[serde(rename = "eventId")]
    event_id: &'a str,
}

/// Deterministic iSales traffic generator: same options and same clock values, same events.
///
/// Call ids are `c-{run}-{n:06}` and event ids `e-{run}-{n}`, where `run` is 8 hex digits derived
/// from the seed and the first clock value, so that two runs against one topic do not collide.
#[derive(Debug)]
pub struct Simulator {
    opts: SimulateOptions,
    answer_ratio: f64,
    duplicate_ratio: f64,
    /// Mean time between two arrivals, ms; `None`: no calls.
    arrival_mean_ms: Option<f64>,
    fail_weight_total: u32,
    rng: SmallRng,
    keys: Vec<String>,
    run: String,
    started: bool,
    now_ms: i64,
    next_arrival_ms: f64,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    event_seq: u64,
    per_task_calls: Vec<u64>,
    counts: Vec<[u64; 5]>,
    calls_started: u64,
    calls_resolved: u64,
    calls_answered: u64,
    live_calls: u64,
    pending_redeliveries: u64,
    events_emitted: u64,
    duplicates_emitted: u64,
}

fn sanitize_ratio(r: f64) -> f64 {
    if r.is_nan() {
        0.0
    } else {
        r.clamp(0.0, 1.0)
    }
}

fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Simulator {
    pub fn new(opts: SimulateOptions) -> Self {
        let keys = opts
            .tasks
            .iter()
            .map(|t| format!("{}:{}:{}", opts.cc_id, opts.vdn, t))
            .collect();
        let arrival_mean_ms = (opts.calls_per_second.is_finite() && opts.calls_per_second > 0.0)
            .then(|| 1000.0 / opts.calls_per_second);
        Simulator {
            answer_ratio: sanitize_ratio(opts.answer_ratio),
            duplicate_ratio: sanitize_ratio(opts.duplicate_ratio),
            arrival_mean_ms,
            fail_weight_total: FAIL_CAUSES.iter().map(|c| c.1).sum(),
            rng: SmallRng::seed_from_u64(opts.seed),
            keys,
            run: String::new(),
            started: false,
            now_ms: 0,
            next_arrival_ms: 0.0,
            queue: BinaryHeap::new(),
            seq: 0,
            event_seq: 0,
            per_task_calls: vec![0; opts.tasks.len()],
            counts: vec![[0; 5]; opts.tasks.len()],
            calls_started: 0,
            calls_resolved: 0,
            calls_answered: 0,
            live_calls: 0,
            pending_redeliveries: 0,
            events_emitted: 0,
            duplicates_emitted: 0,
            opts,
        }
    }

    pub fn options(&self) -> &SimulateOptions {
        &self.opts
    }

    /// Advances the simulation to `now_ms` (ms since the Unix epoch) and appends the events that
    /// happened, in time order, each with `ts` = the simulated time at which it happened. The
    /// first call starts the simulation (and emits the `TASK` events). A clock value earlier than
    /// the previous one changes nothing. The result does not depend on how the time is sliced.
    pub fn step(&mut self, now_ms: i64, out: &mut Vec<SimEvent>) {
        if !self.started {
            self.started = true;
            self.now_ms = now_ms;
            self.run = format!(
                "{:08x}",
                splitmix64(self.opts.seed ^ (now_ms as u64).rotate_left(23)) & 0xffff_ffff
            );
            self.schedule(now_ms, Action::Plan);
            self.next_arrival_ms = now_ms as f64;
            self.schedule_next_arrival();
        }
        if now_ms < self.now_ms {
            return;
        }
        self.now_ms = now_ms;
        while self.queue.peek().is_some_and(|s| s.at <= now_ms) {
            if let Some(item) = self.queue.pop() {
                self.handle(item.at, item.action, out);
            }
        }
    }

    /// When the next event is due (ms since the Unix epoch), so a driver can wake exactly then
    /// instead of emitting it late. `None` before the first step or when nothing is scheduled.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.queue.peek().map(|s| s.at)
    }

    /// True once `max_calls` calls were started and all of them have ended (and every
    /// redelivery has happened). Never true without `max_calls`.
    pub fn is_done(&self) -> bool {
        self.started
            && self.opts.max_calls.is_some_and(|m| self.calls_started >= m)
            && self.live_calls == 0
            && self.pending_redeliveries == 0
    }

    pub fn calls_started(&self) -> u64 {
        self.calls_started
    }

    /// Calls that reached `FAILED` or `FINISHED`.
    pub fn calls_resolved(&self) -> u64 {
        self.calls_resolved
    }

    /// Calls that reached `CONNECTED`.
    pub fn calls_answered(&self) -> u64 {
        self.calls_answered
    }

    /// Calls in `QUEUED`, `DIALING` or `CONNECTED`.
    pub fn active_calls(&self) -> u64 {
        self.live_calls
    }

    /// Events appended so far, redeliveries included.
    pub fn events_emitted(&self) -> u64 {
        self.events_emitted
    }

    /// Redeliveries appended so far.
    pub fn duplicates_emitted(&self) -> u64 {
        self.duplicates_emitted
    }

    /// Per task, the calls by current state (in options order).
    pub fn task_counts(&self) -> Vec<TaskCounts> {
        self.opts
            .tasks
            .iter()
            .zip(&self.counts)
            .zip(&self.per_task_calls)
            .map(|((task_id, c), total)| TaskCounts {
                task_id: task_id.clone(),
                planned: self.opts.planned_per_task,
                total: *total,
                queued: c[CallState::Queued as usize],
                dialing: c[CallState::Dialing as usize],
                connected: c[CallState::Connected as usize],
                failed: c[CallState::Failed as usize],
                finished: c[CallState::Finished as usize],
            })
            .collect()
    }

    fn schedule(&mut self, at: i64, action: Action) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            action,
        });
    }

    fn schedule_next_arrival(&mut self) {
        let Some(mean) = self.arrival_mean_ms else {
            return;
        };
        if self.opts.tasks.is_empty() {
            return;
        }
        // Exponential inter-arrival time; 1 - u lies in (0, 1], so the logarithm is finite.
        let u: f64 = self.rng.random();
        self.next_arrival_ms += -mean * (1.0 - u).ln();
        let at = self.next_arrival_ms.floor() as i64;
        self.schedule(at, Action::Arrival);
    }

    fn handle(&mut self, at: i64, action: Action, out: &mut Vec<SimEvent>) {
        match action {
            Action::Plan => {
                for task in 0..self.opts.tasks.len() {
                    let ev = self.task_event(task, at);
                    self.emit(at, ev, out);
                }
                self.schedule(at + PLAN_INTERVAL_MS, Action::Plan);
            }
            Action::Arrival => self.arrive(at, out),
            Action::Transition(call, state) => self.transition(at, call, state, out),
            Action::Redeliver(ev) => {
                self.pending_redeliveries -= 1;
                self.events_emitted += 1;
                self.duplicates_emitted += 1;
                out.push(ev);
            }
        }
    }

    fn arrive(&mut self, at: i64, out: &mut Vec<SimEvent>) {
        if self.opts.max_calls.is_some_and(|m| self.calls_started >= m) {
            return;
        }
        let task = self.rng.random_range(0..self.opts.tasks.len());
        self.per_task_calls[task] += 1;
        let no = self.per_task_calls[task];
        let answered = self.rng.random_bool(self.answer_ratio);
        let fail = if answered {
            None
        } else {
            let mut pick = self.rng.random_range(0..self.fail_weight_total);
            let mut idx = 0;
            for (i, cause) in FAIL_CAUSES.iter().enumerate() {
                idx = i;
                if pick < cause.1 {
                    break;
                }
                pick -= cause.1;
            }
            Some(idx)
        };
        self.calls_started += 1;
        self.live_calls += 1;
        let call = Call { task, no, fail };
        self.transition(at, call, CallState::Queued, out);
        if self.opts.max_calls.is_none_or(|m| self.calls_started < m) {
            self.schedule_next_arrival();
        }
    }

    fn transition(&mut self, at: i64, call: Call, state: CallState, out: &mut Vec<SimEvent>) {
        let counts = &mut self.counts[call.task];
        if state != CallState::Queued {
            // The previous state of the call, by the fixed lifecycle.
            let prev = match state {
                CallState::Dialing => CallState::Queued,
                CallState::Connected | CallState::Failed => CallState::Dialing,
                _ => CallState::Connected,
            };
            counts[prev as usize] -= 1;
        }
        counts[state as usize] += 1;

        let fail_code = match (state, call.fail) {
            (CallState::Failed, Some(i)) => Some(FAIL_CAUSES[i].0),
            _ => None,
        };
        let ev = self.call_event(call, state, fail_code, at);
        self.emit(at, ev, out);

        let next = match state {
            CallState::Queued => {
                // Most calls are picked by the dialer within a second; some wait for a free line.
                let wait = if self.rng.random_bool(0.85) {
                    self.rng.random_range(200..=1_000)
                } else {
                    self.rng.random_range(1_000..=5_000)
                };
                Some((wait, CallState::Dialing))
            }
            CallState::Dialing => match call.fail {
                None => Some((self.rng.random_range(2_000..=12_000), CallState::Connected)),
                Some(i) => {
                    let (_, _, lo, hi) = FAIL_CAUSES[i];
                    Some((self.rng.random_range(lo..=hi), CallState::Failed))
                }
            },
            CallState::Connected => {
                self.calls_answered += 1;
                let talk = if self.rng.random_bool(0.9) {
                    self.rng.random_range(3_000..=20_000)
                } else {
                    self.rng.random_range(20_000..=60_000)
                };
                Some((talk, CallState::Finished))
            }
            CallState::Failed | CallState::Finished => {
                self.calls_resolved += 1;
                self.live_calls -= 1;
                None
            }
        };
        if let Some((delay, state)) = next {
            self.schedule(at + delay, Action::Transition(call, state));
        }
    }

    fn next_event_id(&mut self) -> String {
        self.event_seq += 1;
        format!("e-{}-{}", self.run, self.event_seq)
    }

    fn task_event(&mut self, task: usize, at: i64) -> SimEvent {
        let event_id = self.next_event_id();
        let wire = Wire {
            v: 1,
            kind: "TASK",
            cc_id: self.opts.cc_id,
            vdn: self.opts.vdn,
            task_id: &self.opts.tasks[task],
            call_id: None,
            state: None,
            fail_code: None,
            planned_count: Some(self.opts.planned_per_task),
            ts: at,
            event_id: &event_id,
        };
        SimEvent {
            key: self.keys[task].clone(),
            payload: to_json(&wire),
        }
    }

    fn call_event(
        &mut self,
        call: Call,
        state: CallState,
        fail_code: Option<&'static str>,
        at: i64,
    ) -> SimEvent {
        let event_id = self.next_event_id();
        let call_id = format!("c-{}-{:06}", self.run, call.no);
        let wire = Wire {
            v: 1,
            kind: "CALL",
            cc_id: self.opts.cc_id,
            vdn: self.opts.vdn,
            task_id: &self.opts.tasks[call.task],
            call_id: Some(&call_id),
            state: Some(state.as_str()),
            fail_code,
            planned_count: None,
            ts: at,
            event_id: &event_id,
        };
        SimEvent {
            key: self.keys[call.task].clone(),
            payload: to_json(&wire),
        }
    }

    fn emit(&mut self, at: i64, ev: SimEvent, out: &mut Vec<SimEvent>) {
        if self.duplicate_ratio > 0.0 && self.rng.random_bool(self.duplicate_ratio) {
            let delay = self.rng.random_range(0..=REDELIVERY_MAX_DELAY_MS);
            self.pending_redeliveries += 1;
            self.schedule(at + delay, Action::Redeliver(ev.clone()));
        }
        self.events_emitted += 1;
        out.push(ev);
    }
}

fn to_json(wire: &Wire<'_>) -> Vec<u8> {
    // Serializing a struct of strings and integers cannot fail.
    serde_json::to_vec(wire).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap, HashSet};

    use serde_json::Value;

    const T0: i64 = 1_732_435_200_000;

    /// Runs a simulator from T0 for `secs` simulated seconds in 50 ms steps.
    pub(crate) fn run(opts: SimulateOptions, secs: i64) -> (Simulator, Vec<SimEvent>) {
        run_sliced(opts, secs, 50)
    }

    fn run_sliced(opts: SimulateOptions, secs: i64, slice_ms: i64) -> (Simulator, Vec<SimEvent>) {
        let mut sim = Simulator::new(opts);
        let mut out = Vec::new();
        let mut t = T0;
        while t <= T0 + secs * 1000 {
            sim.step(t, &mut out);
            t += slice_ms;
        }
        (sim, out)
    }

    fn parse(ev: &SimEvent) -> serde_json::Map<String, Value> {
        match serde_json::from_slice::<Value>(&ev.payload) {
            Ok(Value::Object(m)) => m,
            other => panic!("not a JSON object: {other:?}"),
        }
    }

    fn rank(state: &str) -> u8 {
        match state {
            "QUEUED" => 0,
            "DIALING" => 1,
            "FAILED" => 2,
            "CONNECTED" => 3,
            "FINISHED" => 4,
            other => panic!("unknown state {other}"),
        }
    }

    /// Checks one event against schema v1 of events.md and returns its parsed form.
    pub(crate) fn check_schema(
        ev: &SimEvent,
        opts: &SimulateOptions,
    ) -> serde_json::Map<String, Value> {
        assert!(ev.payload.len() <= 64 * 1024);
        let m = parse(ev);
        assert_eq!(m["v"], 1);
        assert_eq!(m["ccId"], opts.cc_id);
        assert_eq!(m["vdn"], opts.vdn);
        let task = m["taskId"].as_str().expect("taskId string");
        assert!(!task.is_empty() && task.len() <= 30);
        assert!(task.bytes().all(|b| b.is_ascii_digit()) && !task.starts_with('0'));
        assert_eq!(ev.key, format!("{}:{}:{}", opts.cc_id, opts.vdn, task));
        assert!(m["ts"].as_i64().expect("ts integer") > 0);
        let event_id = m["eventId"].as_str().expect("eventId string");
        assert!(!event_id.is_empty() && event_id.len() <= 64);
        match m["type"].as_str() {
            Some("TASK") => {
                assert_eq!(m["plannedCount"].as_u64(), Some(opts.planned_per_task));
                let mut keys: Vec<_> = m.keys().map(String::as_str).collect();
                keys.sort_unstable();
                assert_eq!(
                    keys,
                    [
                        "ccId",
                        "eventId",
                        "plannedCount",
                        "taskId",
                        "ts",
                        "type",
                        "v",
                        "vdn"
                    ]
                );
            }
            Some("CALL") => {
                let call_id = m["callId"].as_str().expect("callId string");
                assert!(!call_id.is_empty() && call_id.len() <= 64);
                assert!(call_id.bytes().all(|b| b.is_ascii_graphic()));
                let state = m["state"].as_str().expect("state string");
                rank(state);
                match m.get("failCode") {
                    Some(code) => {
                        assert_eq!(state, "FAILED");
                        let code = code.as_str().expect("failCode string");
                        assert!(FAIL_CAUSES.iter().any(|c| c.0 == code), "{code}");
                    }
                    None => assert_ne!(state, "FAILED", "FAILED without failCode"),
                }
                assert!(!m.contains_key("plannedCount"));
                for k in m.keys() {
                    assert!(
                        [
                            "v", "type", "ccId", "vdn", "taskId", "callId", "state", "failCode",
                            "ts", "eventId"
                        ]
                        .contains(&k.as_str()),
                        "unexpected field {k}"
                    );
                }
            }
            other => panic!("bad type {other:?}"),
        }
        m
    }

    #[test]
    fn events_match_the_schema() {
        let opts = SimulateOptions {
            duplicate_ratio: 0.1,
            ..SimulateOptions::default()
        };
        let (_, out) = run(opts.clone(), 120);
        assert!(out.len() > 1000, "{} events", out.len());
        for ev in &out {
            check_schema(ev, &opts);
        }
    }

    #[test]
    fn starts_with_one_task_event_per_task() {
        let opts = SimulateOptions::default();
        let mut sim = Simulator::new(opts.clone());
        let mut out = Vec::new();
        sim.step(T0, &mut out);
        assert_eq!(out.len(), opts.tasks.len());
        for (ev, task) in out.iter().zip(&opts.tasks) {
            let m = check_schema(ev, &opts);
            assert_eq!(m["type"], "TASK");
            assert_eq!(m["taskId"], task.as_str());
            assert_eq!(m["ts"], T0);
        }
    }

    #[test]
    fn call_states_follow_the_lifecycle() {
        let opts = SimulateOptions::default();
        let (sim, out) = run(opts.clone(), 300);
        let mut calls: HashMap<(String, String), Vec<(String, i64)>> = HashMap::new();
        let mut event_ids = HashSet::new();
        let mut last_ts = 0;
        for ev in &out {
            let m = check_schema(ev, &opts);
            assert!(event_ids.insert(m["eventId"].as_str().unwrap_or("").to_owned()));
            let ts = m["ts"].as_i64().unwrap_or(0);
            assert!(ts >= last_ts, "events out of time order");
            assert!((T0..=T0 + 300_000).contains(&ts));
            last_ts = ts;
            if m["type"] == "CALL" {
                let key = (
                    m["taskId"].as_str().unwrap_or("").to_owned(),
                    m["callId"].as_str().unwrap_or("").to_owned(),
                );
                let state = m["state"].as_str().unwrap_or("").to_owned();
                calls.entry(key).or_default().push((state, ts));
            }
        }
        assert_eq!(calls.len() as u64, sim.calls_started());
        let legal: [&[&str]; 5] = [
            &["QUEUED", "DIALING", "FAILED"],
            &["QUEUED", "DIALING", "CONNECTED", "FINISHED"],
            &["QUEUED", "DIALING", "CONNECTED"],
            &["QUEUED", "DIALING"],
            &["QUEUED"],
        ];
        let mut resolved = 0;
        for (call, events) in &calls {
            let states: Vec<&str> = events.iter().map(|(s, _)| s.as_str()).collect();
            assert!(legal.contains(&states.as_slice()), "{call:?}: {states:?}");
            assert!(events.windows(2).all(|w| w[0].1 <= w[1].1));
            if matches!(states.last(), Some(&"FAILED" | &"FINISHED")) {
                resolved += 1;
            }
        }
        assert_eq!(resolved, sim.calls_resolved());
        // Calls are spread over all tasks, and callIds are unique per task.
        let tasks: HashSet<_> = calls.keys().map(|(t, _)| t.clone()).collect();
        assert_eq!(tasks.len(), opts.tasks.len());
    }

    #[test]
    fn some_calls_are_visibly_waiting_and_executing() {
        let (sim, _) = run(SimulateOptions::default(), 120);
        let counts = sim.task_counts();
        let queued: u64 = counts.iter().map(|c| c.queued).sum();
        let exec: u64 = counts.iter().map(|c| c.dialing + c.connected).sum();
        assert!(queued > 0, "{counts:?}");
        assert!(exec > 20, "{counts:?}");
        for c in &counts {
            assert_eq!(
                c.total,
                c.queued + c.dialing + c.connected + c.failed + c.finished
            );
        }
    }

    #[test]
    fn answer_ratio_is_respected_roughly() {
        for ratio in [0.0, 0.3, 0.6, 1.0] {
            let opts = SimulateOptions {
                answer_ratio: ratio,
                calls_per_second: 50.0,
                max_calls: Some(3000),
                ..SimulateOptions::default()
            };
            let (sim, out) = run(opts.clone(), 200);
            assert!(sim.is_done());
            let mut terminal: BTreeMap<&str, u64> = BTreeMap::new();
            let parsed: Vec<_> = out.iter().map(parse).collect();
            for m in &parsed {
                if let Some(state @ ("FAILED" | "FINISHED")) =
                    m.get("state").and_then(Value::as_str)
                {
                    *terminal.entry(state).or_default() += 1;
                }
            }
            let finished = terminal.get("FINISHED").copied().unwrap_or(0);
            let failed = terminal.get("FAILED").copied().unwrap_or(0);
            assert_eq!(finished + failed, 3000);
            let share = finished as f64 / 3000.0;
            assert!((share - ratio).abs() < 0.05, "ratio {ratio}: {share}");
        }
    }

    #[test]
    fn deterministic_for_a_seed_and_independent_of_slicing() {
        let opts = SimulateOptions {
            duplicate_ratio: 0.05,
            ..SimulateOptions::default()
        };
        let (_, a) = run_sliced(opts.clone(), 60, 50);
        let (_, b) = run_sliced(opts.clone(), 60, 50);
        let (_, c) = run_sliced(opts.clone(), 60, 1000);
        assert_eq!(a, b);
        assert_eq!(a, c);
        let (_, d) = run_sliced(
            SimulateOptions {
                seed: 2,
                ..opts.clone()
            },
            60,
            50,
        );
        assert_ne!(a, d);
    }

    #[test]
    fn max_calls_is_respected() {
        let opts = SimulateOptions {
            max_calls: Some(250),
            calls_per_second: 100.0,
            ..SimulateOptions::default()
        };
        let mut sim = Simulator::new(opts.clone());
        let mut out = Vec::new();
        let mut t = T0;
        while !sim.is_done() {
            sim.step(t, &mut out);
            t += 50;
            assert!(t < T0 + 600_000, "never done");
        }
        assert_eq!(sim.calls_started(), 250);
        assert_eq!(sim.calls_resolved(), 250);
        assert_eq!(sim.active_calls(), 0);
        let n = out.len();
        sim.step(t + 60_000, &mut out);
        let calls: HashSet<(String, String)> = out
            .iter()
            .map(parse)
            .filter(|m| m["type"] == "CALL")
            .map(|m| {
                (
                    m["taskId"].as_str().unwrap_or("").to_owned(),
                    m["callId"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        assert_eq!(calls.len(), 250);
        // Later steps emit no new calls (only the periodic TASK events may follow).
        assert!(out[n..].iter().all(|ev| parse(ev)["type"] == "TASK"));
    }

    #[test]
    fn duplicates_are_exact_redeliveries() {
        let opts = SimulateOptions {
            duplicate_ratio: 0.2,
            max_calls: Some(500),
            calls_per_second: 50.0,
            ..SimulateOptions::default()
        };
        let (sim, out) = run(opts, 200);
        assert!(sim.is_done());
        let mut by_id: HashMap<String, Vec<&SimEvent>> = HashMap::new();
        for ev in &out {
            let id = parse(ev)["eventId"].as_str().unwrap_or("").to_owned();
            by_id.entry(id).or_default().push(ev);
        }
        let dups = by_id.values().filter(|v| v.len() == 2).count() as u64;
        assert!(by_id
            .values()
            .all(|v| v.len() <= 2 && v.iter().all(|e| *e == v[0])));
        assert_eq!(dups, sim.duplicates_emitted());
        let share = dups as f64 / by_id.len() as f64;
        assert!((share - 0.2).abs() < 0.03, "{share}");
        assert_eq!(out.len() as u64, sim.events_emitted());
    }

    #[test]
    fn degenerate_options_do_not_panic() {
        for opts in [
            SimulateOptions {
                tasks: vec![],
                ..SimulateOptions::default()
            },
            SimulateOptions {
                calls_per_second: 0.0,
                answer_ratio: f64::NAN,
                duplicate_ratio: 7.0,
                ..SimulateOptions::default()
            },
            SimulateOptions {
                calls_per_second: f64::INFINITY,
                answer_ratio: -1.0,
                max_calls: Some(0),
                ..SimulateOptions::default()
            },
        ] {
            let (sim, _) = run(opts, 5);
            assert_eq!(sim.calls_started(), 0);
        }
    }
}

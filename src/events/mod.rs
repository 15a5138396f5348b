//! iSales call events (schema version 1 of `events.md`): decoding and validation.
//!
//! Decoding never panics and never fails silently: every message either becomes an [`Event`] or
//! a [`Rejection`] naming the rule it broke, so the consumer can count it and move on.

pub mod ids;
mod scan;
mod tenants;

pub use tenants::TenantFilter;

use serde::Deserialize;

use ids::{IdToken, StrToken, TaskKey, CC_ID_MAX, VDN_MAX};

/// Events larger than this are rejected before they are parsed.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// The state of one call. The declaration order is the fold order of events.md:
/// `QUEUED < DIALING < FAILED < CONNECTED < FINISHED`; a call only ever moves up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum CallState {
    Queued = 0,
    Dialing = 1,
    Failed = 2,
    Connected = 3,
    Finished = 4,
}

impl CallState {
    pub const ALL: [CallState; 5] = [
        CallState::Queued,
        CallState::Dialing,
        CallState::Failed,
        CallState::Connected,
        CallState::Finished,
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "QUEUED" => CallState::Queued,
            "DIALING" => CallState::Dialing,
            "FAILED" => CallState::Failed,
            "CONNECTED" => CallState::Connected,
            "FINISHED" => CallState::Finished,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Queued => "QUEUED",
            CallState::Dialing => "DIALING",
            CallState::Failed => "FAILED",
            CallState::Connected => "CONNECTED",
            CallState::Finished => "FINISHED",
        }
    }

    pub fn from_index(i: u8) -> Option<Self> {
        Self::ALL.get(usize::from(i)).copied()
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A call id as the fold keeps it: a 64-bit hash of the producer's `callId` text.
///
/// Keeping the hash instead of the text makes a tracked call a few fixed-size words and decoding
/// allocation-free. xxh3 is stable across versions and platforms, so snapshots and replicas agree.
/// Two distinct call ids of one task colliding is a 1-in-2^64 event per pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

impl CallKey {
    pub fn of(call_id: &str) -> Self {
        CallKey(xxhash_rust::xxh3::xxh3_64(call_id.as_bytes()))
    }
}

/// A failure cause as an event reports it (`failCode`, at most 16 characters), kept inline so an
/// [`Event`] stays `Copy` and decoding stays allocation-free. Never empty: an empty `failCode`
/// is no code.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FailCode {
    len: u8,
    bytes: [u8; FailCode::MAX_BYTES],
}

impl FailCode {
    pub const MAX_CHARS: usize = 16;
    /// 16 characters of UTF-8 take at most 64 bytes.
    pub const MAX_BYTES: usize = 4 * Self::MAX_CHARS;

    /// The code, when `text` is 1 to 16 characters.
    pub fn new(text: &str) -> Option<Self> {
        if text.is_empty() || text.chars().count() > Self::MAX_CHARS {
            return None;
        }
        let mut bytes = [0u8; Self::MAX_BYTES];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(FailCode {
            len: text.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Built from a `&str` cut at its end, so always UTF-8.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Debug for FailCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FailCode({:?})", self.as_str())
    }
}

/// A valid event, reduced to what the fold needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub task: TaskKey,
    /// Event time at iSales, milliseconds since the Unix epoch, > 0.
    pub ts: i64,
    pub kind: EventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Call {
        call: CallKey,
        state: CallState,
        /// The failure cause, when the event gave a non-empty one. The fold keeps it for FAILED
        /// events only.
        fail_code: Option<FailCode>,
    },
    /// The task's plan for the day of the event's `ts` (absolute, not a delta).
    Task { planned: u64 },
}

/// Why an event was rejected: by the decoder (a rule of the schema broken) or by the fold (a
/// valid event it will not apply). The label is a Prometheus label value, so the set is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    #[error("event larger than 64 KiB")]
    TooLarge,
    #[error("not a JSON object")]
    NotJson,
    #[error("unsupported schema version (v)")]
    BadVersion,
    #[error("type missing or not CALL/TASK")]
    BadType,
    #[error("ccId not an integer 1..65535")]
    BadCcId,
    #[error("vdn missing or not an integer 1..5000")]
    BadVdn,
    #[error("taskId missing or not 1..30 decimal digits")]
    BadTaskId,
    #[error("ts missing or not a positive integer of milliseconds")]
    BadTs,
    #[error("eventId not a string of at most 64 characters")]
    BadEventId,
    #[error("callId missing or not 1..64 printable ASCII characters")]
    BadCallId,
    #[error("state missing or not QUEUED/DIALING/CONNECTED/FAILED/FINISHED")]
    BadState,
    #[error("failCode not a string of at most 16 characters")]
    BadFailCode,
    #[error("plannedCount missing or not an integer >= 0")]
    BadPlannedCount,
    // Valid events that the fold refuses (see `fold::Applied`).
    #[error("the call's day is older than the retention window")]
    TooOld,
    #[error("ts too far ahead of the wall clock")]
    TsInFuture,
    #[error("the task would exceed the limit of tasks kept (limits.max_tasks)")]
    TaskLimit,
    #[error("the call would exceed the limit of calls kept per task (limits.max_calls_per_task)")]
    CallLimit,
}

impl Rejection {
    pub const ALL: [Rejection; 17] = [
        Rejection::TooLarge,
        Rejection::NotJson,
        Rejection::BadVersion,
        Rejection::BadType,
        Rejection::BadCcId,
        Rejection::BadVdn,
        Rejection::BadTaskId,
        Rejection::BadTs,
        Rejection::BadEventId,
        Rejection::BadCallId,
        Rejection::BadState,
        Rejection::BadFailCode,
        Rejection::BadPlannedCount,
        Rejection::TooOld,
        Rejection::TsInFuture,
        Rejection::TaskLimit,
        Rejection::CallLimit,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Rejection::TooLarge => "too_large",
            Rejection::NotJson => "not_json",
            Rejection::BadVersion => "bad_version",
            Rejection::BadType => "bad_type",
            Rejection::BadCcId => "bad_cc_id",
            Rejection::BadVdn => "bad_vdn",
            Rejection::BadTaskId => "bad_task_id",
            Rejection::BadTs => "bad_ts",
            Rejection::BadEventId => "bad_event_id",
            Rejection::BadCallId => "bad_call_id",
            Rejection::BadState => "bad_state",
            Rejection::BadFailCode => "bad_fail_code",
            Rejection::BadPlannedCount => "bad_planned_count",
            Rejection::TooOld => "too_old",
            Rejection::TsInFuture => "ts_in_future",
            Rejection::TaskLimit => "task_limit",
            Rejection::CallLimit => "call_limit",
        }
    }
}

/// The wire form. Every field is optional and lenient here so that validation, not serde, decides
/// and can name the rule; unknown fields are ignored.
#[derive(Deserialize, Default)]
struct WireEvent<'a> {
    /// Which known fields the fast reader has seen (serde keeps its own account).
    #[serde(skip)]
    seen: [bool; 11],
    v: Option<IdToken>,
    #[serde(rename = "type", borrow)]
    kind: Option<StrToken<'a>>,
    #[serde(rename = "ccId")]
    cc_id: Option<IdToken>,
    vdn: Option<IdToken>,
    #[serde(rename = "taskId")]
    task_id: Option<IdToken>,
    ts: Option<IdToken>,
    #[serde(rename = "eventId", borrow)]
    event_id: Option<StrToken<'a>>,
    #[serde(rename = "callId", borrow)]
    call_id: Option<StrToken<'a>>,
    #[serde(borrow)]
    state: Option<StrToken<'a>>,
    #[serde(rename = "failCode", borrow)]
    fail_code: Option<StrToken<'a>>,
    #[serde(rename = "plannedCount")]
    planned_count: Option<IdToken>,
}

/// Turns message values into events. Holds the configured default call center, used when an
/// event has no `ccId`.
#[derive(Debug, Clone, Copy)]
pub struct Decoder {
    default_cc_id: u16,
}

impl Decoder {
    pub fn new(default_cc_id: u16) -> Self {
        Decoder { default_cc_id }
    }

    pub fn decode(&self, bytes: &[u8]) -> Result<Event, Rejection> {
        let text = json_object_text(bytes)?;
        let wire = match scan::flat(text) {
            Some(w) => w,
            None => serde_json::from_str(text).map_err(|_| Rejection::NotJson)?,
        };
        self.validate(wire)
    }

    /// [`Decoder::decode`] with serde alone: the reference the fast reader is tested against.
    #[cfg(test)]
    fn decode_with_serde(&self, bytes: &[u8]) -> Result<Event, Rejection> {
        let text = json_object_text(bytes)?;
        let wire: WireEvent<'_> = serde_json::from_str(text).map_err(|_| Rejection::NotJson)?;
        self.validate(wire)
    }

    fn validate(&self, w: WireEvent<'_>) -> Result<Event, Rejection> {
        match w.v {
            None => {}
            Some(v) if v.in_range(1) == Some(1) => {}
            Some(_) => return Err(Rejection::BadVersion),
        }
        let is_call = match w.kind.as_ref().and_then(StrToken::as_str) {
            Some("CALL") => true,
            Some("TASK") => false,
            _ => return Err(Rejection::BadType),
        };
        let cc_id = match w.cc_id {
            None | Some(IdToken::Null) => self.default_cc_id,
            Some(t) => t.in_range(CC_ID_MAX).ok_or(Rejection::BadCcId)? as u16,
        };
        let vdn = w
            .vdn
            .and_then(|t| t.in_range(VDN_MAX))
            .ok_or(Rejection::BadVdn)? as u16;
        let task_id = w
            .task_id
            .and_then(IdToken::task_id)
            .ok_or(Rejection::BadTaskId)?;
        let ts =
            w.ts.and_then(IdToken::non_negative_i64)
                .filter(|&ts| ts > 0)
                .ok_or(Rejection::BadTs)?;
        if !optional_text_ok(w.event_id.as_ref(), 64) {
            return Err(Rejection::BadEventId);
        }

        let kind = if is_call {
            let call_id = w
                .call_id
                .as_ref()
                .and_then(StrToken::as_str)
                .filter(|s| valid_call_id(s))
                .ok_or(Rejection::BadCallId)?;
            let state = w
                .state
                .as_ref()
                .and_then(StrToken::as_str)
                .and_then(CallState::parse)
                .ok_or(Rejection::BadState)?;
            if !optional_text_ok(w.fail_code.as_ref(), FailCode::MAX_CHARS) {
                return Err(Rejection::BadFailCode);
            }
            EventKind::Call {
                call: CallKey::of(call_id),
                state,
                fail_code: w
                    .fail_code
                    .as_ref()
                    .and_then(StrToken::as_str)
                    .and_then(FailCode::new),
            }
        } else {
            let planned = w
                .planned_count
                .and_then(IdToken::non_negative_i64)
                .ok_or(Rejection::BadPlannedCount)? as u64;
            EventKind::Task { planned }
        };

        Ok(Event {
            task: TaskKey {
                cc_id,
                vdn,
                task_id,
            },
            ts,
            kind,
        })
    }
}

/// The checks before any JSON is read: the size, an object (serde would also read the struct
/// from an array, by position: `[v, type, ccId, ...]`), and UTF-8 throughout (RFC 8259), including
/// fields that are skipped unread.
fn json_object_text(bytes: &[u8]) -> Result<&str, Rejection> {
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(Rejection::TooLarge);
    }
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(Rejection::NotJson);
    }
    std::str::from_utf8(bytes).map_err(|_| Rejection::NotJson)
}

/// 1..=64 printable ASCII characters (space through tilde).
fn valid_call_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// An informational text field: absent, null, or a string of at most `max` characters.
fn optional_text_ok(token: Option<&StrToken<'_>>, max: usize) -> bool {
    match token {
        None | Some(StrToken::Null) => true,
        Some(StrToken::Str(s)) => s.chars().count() <= max,
        Some(StrToken::NotString) => false,
    }
}

/// Renders an event back to its JSON wire form. Used by tests, the simulator and benchmarks to
/// produce exactly what the decoder reads; the call id has to be given since only its hash is kept.
pub fn encode_call(task: &TaskKey, call_id: &str, state: CallState, ts: i64) -> String {
    encode_call_with_code(task, call_id, state, ts, None)
}

/// [`encode_call`] with a `failCode`.
pub fn encode_call_with_code(
    task: &TaskKey,
    call_id: &str,
    state: CallState,
    ts: i64,
    fail_code: Option<&str>,
) -> String {
    let code = fail_code
        .map(|c| format!(r#","failCode":{}"#, json_string(c)))
        .unwrap_or_default();
    format!(
        r#"{{"v":1,"type":"CALL","ccId":{},"vdn":{},"taskId":"{}","callId":{},"state":"{}"{code},"ts":{}}}"#,
        task.cc_id,
        task.vdn,
        task.task_id,
        json_string(call_id),
        state.as_str(),
        ts
    )
}

/// See [`encode_call`].
pub fn encode_task(task: &TaskKey, planned: u64, ts: i64) -> String {
    format!(
        r#"{{"v":1,"type":"TASK","ccId":{},"vdn":{},"taskId":"{}","plannedCount":{},"ts":{}}}"#,
        task.cc_id, task.vdn, task.task_id, planned, ts
    )
}

/// `s` as a JSON string literal, escaped by serde_json (the encoders here and the callback's).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}

/// Appends `s` to `out` as a JSON string literal, escaped by serde_json.
pub fn push_json_string(out: &mut String, s: &str) {
    // Serializing a str cannot fail (no map keys, no custom Serialize); the empty string keeps
    // this total all the same.
    match serde_json::to_string(s) {
        Ok(text) => out.push_str(&text),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"v":1,"type":"CALL","ccId":89,"vdn":92,"taskId":"1122104910","callId":"c-000017","state":"FAILED","failCode":"00601","ts":1732435200123}"#;

    fn decode(s: &str) -> Result<Event, Rejection> {
        Decoder::new(1).decode(s.as_bytes())
    }

    #[test]
    fn decodes_the_spec_example() {
        let e = decode(EXAMPLE).expect("the example of events.md is valid");
        assert_eq!(
            e.task,
            TaskKey {
                cc_id: 89,
                vdn: 92,
                task_id: 1_122_104_910
            }
        );
        assert_eq!(e.ts, 1_732_435_200_123);
        assert_eq!(
            e.kind,
            EventKind::Call {
                call: CallKey::of("c-000017"),
                state: CallState::Failed,
                fail_code: FailCode::new("00601"),
            }
        );
    }

    #[test]
    fn only_a_json_object_is_an_event() {
        // serde reads a struct from an array by position: the events.md example as an array
        // of its values, and a TASK event likewise, would otherwise be accepted.
        let by_position = [
            r#"[1,"CALL",89,92,"1122104910",1732435200123,null,"c-000017","FAILED","00601",null]"#,
            r#" [1,"TASK",89,92,"1122104910",1732435200123,null,null,null,null,8]"#,
        ];
        for text in by_position {
            assert_eq!(decode(text), Err(Rejection::NotJson), "{text}");
        }
        for text in ["", " ", "null", "1", r#""x""#, "[]", "true", "\n[{}]"] {
            assert_eq!(decode(text), Err(Rejection::NotJson), "{text:?}");
        }
        // Blanks before the object are JSON whitespace.
        assert!(decode(&format!(" \t\r\n{EXAMPLE}")).is_ok());
    }

    #[test]
    fn defaults_and_leniency() {
        let e = decode(r#"{"type":"TASK","vdn":"7","taskId":"007","ts":5,"plannedCount":8}"#)
            .expect("valid");
        assert_eq!(e.task.cc_id, 1, "absent ccId takes the configured default");
        assert_eq!(e.task.task_id, 7, "taskId is canonical");
        assert_eq!(e.kind, EventKind::Task { planned: 8 });
        let e = Decoder::new(42)
            .decode(br#"{"type":"TASK","ccId":null,"vdn":7,"taskId":7,"ts":5,"plannedCount":0,"extra":[1,{"x":2}]}"#)
            .expect("valid; null ccId is the default, unknown fields ignored");
        assert_eq!(e.task.cc_id, 42);
    }

    #[test]
    fn each_rule_has_its_reason() {
        let call = |patch: &str| {
            let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).expect("json");
            let p: serde_json::Value = serde_json::from_str(patch).expect("json");
            for (k, val) in p.as_object().expect("object") {
                if val.is_string() && val.as_str() == Some("<absent>") {
                    v.as_object_mut().expect("object").remove(k);
                } else {
                    v[k] = val.clone();
                }
            }
            decode(&v.to_string())
        };
        use Rejection::*;
        let cases: &[(&str, Rejection)] = &[
            (r#"{"v":2}"#, BadVersion),
            (r#"{"v":"x"}"#, BadVersion),
            (r#"{"type":"<absent>"}"#, BadType),
            (r#"{"type":"call"}"#, BadType),
            (r#"{"type":1}"#, BadType),
            (r#"{"ccId":0}"#, BadCcId),
            (r#"{"ccId":65536}"#, BadCcId),
            (r#"{"ccId":"8 9"}"#, BadCcId),
            (r#"{"vdn":"<absent>"}"#, BadVdn),
            (r#"{"vdn":5001}"#, BadVdn),
            (r#"{"vdn":null}"#, BadVdn),
            (r#"{"vdn":9.5}"#, BadVdn),
            (r#"{"taskId":"<absent>"}"#, BadTaskId),
            (r#"{"taskId":""}"#, BadTaskId),
            (r#"{"taskId":"12a"}"#, BadTaskId),
            (r#"{"taskId":"1234567890123456789012345678901"}"#, BadTaskId),
            (r#"{"ts":"<absent>"}"#, BadTs),
            (r#"{"ts":0}"#, BadTs),
            (r#"{"ts":-5}"#, BadTs),
            (r#"{"ts":1.5}"#, BadTs),
            (r#"{"eventId":7}"#, BadEventId),
            (
                r#"{"eventId":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
                BadEventId,
            ),
            (r#"{"callId":"<absent>"}"#, BadCallId),
            (r#"{"callId":""}"#, BadCallId),
            (r#"{"callId":"tab\there"}"#, BadCallId),
            (r#"{"callId":"é"}"#, BadCallId),
            (r#"{"state":"<absent>"}"#, BadState),
            (r#"{"state":"ANSWERED"}"#, BadState),
            (r#"{"failCode":"12345678901234567"}"#, BadFailCode),
        ];
        for (patch, want) in cases {
            assert_eq!(call(patch), Err(*want), "{patch}");
        }
        assert_eq!(
            decode(r#"{"type":"TASK","vdn":7,"taskId":7,"ts":5}"#),
            Err(BadPlannedCount)
        );
        assert_eq!(
            decode(r#"{"type":"TASK","vdn":7,"taskId":7,"ts":5,"plannedCount":-1}"#),
            Err(BadPlannedCount)
        );
    }

    #[test]
    fn malformed_bytes_are_rejected_not_panicked_on() {
        for bad in [
            &b""[..],
            b"nul",
            b"[1,2]",
            b"\"x\"",
            b"{",
            b"\xff\xfe",
            b"{\"type\":\"CALL\"}}",
        ] {
            assert!(Decoder::new(1).decode(bad).is_err(), "{bad:?}");
        }
        let huge = format!(r#"{{"pad":"{}"}}"#, "x".repeat(MAX_EVENT_BYTES));
        assert_eq!(decode(&huge), Err(Rejection::TooLarge));
        // Not UTF-8, even inside a field the decoder would skip.
        assert_eq!(
            Decoder::new(1).decode(
                b"{\"type\":\"TASK\",\"vdn\":7,\"taskId\":7,\"ts\":5,\"plannedCount\":1,\"x\":\"\xff\"}"
            ),
            Err(Rejection::NotJson)
        );
    }

    #[test]
    fn fail_codes_are_kept_and_an_empty_one_is_none() {
        let code = |json: &str| match decode(json).map(|e| e.kind) {
            Ok(EventKind::Call { fail_code, .. }) => fail_code.map(|c| c.as_str().to_owned()),
            other => panic!("{json}: {other:?}"),
        };
        let with = |c: &str| EXAMPLE.replace(r#""failCode":"00601""#, c);
        assert_eq!(code(EXAMPLE).as_deref(), Some("00601"));
        assert_eq!(code(&with(r#""failCode":"""#)), None);
        assert_eq!(code(&with(r#""failCode":null"#)), None);
        assert_eq!(code(&with(r#""x":1"#)), None);
        let sixteen = "碼".repeat(16);
        assert_eq!(
            code(&with(&format!(r#""failCode":"{sixteen}""#))).as_deref(),
            Some(sixteen.as_str())
        );
        assert_eq!(FailCode::new(&"碼".repeat(17)), None);
    }

    #[test]
    fn duplicate_fields_are_not_json() {
        assert_eq!(
            decode(r#"{"type":"TASK","vdn":7,"vdn":8,"taskId":7,"ts":5,"plannedCount":1}"#),
            Err(Rejection::NotJson)
        );
    }

    #[test]
    fn encoders_round_trip() {
        let task = TaskKey {
            cc_id: 3,
            vdn: 4,
            task_id: 5,
        };
        let e = decode(&encode_call(
            &task,
            "a \"quoted\" id",
            CallState::Dialing,
            9,
        ))
        .expect("ok");
        assert_eq!(
            e.kind,
            EventKind::Call {
                call: CallKey::of("a \"quoted\" id"),
                state: CallState::Dialing,
                fail_code: None,
            }
        );
        let e = decode(&encode_call_with_code(
            &task,
            "c",
            CallState::Failed,
            9,
            Some("碼-\"01\""),
        ))
        .expect("ok");
        assert_eq!(
            e.kind,
            EventKind::Call {
                call: CallKey::of("c"),
                state: CallState::Failed,
                fail_code: FailCode::new("碼-\"01\""),
            }
        );
        let e = decode(&encode_task(&task, 8, 9)).expect("ok");
        assert_eq!(e.kind, EventKind::Task { planned: 8 });
    }
}

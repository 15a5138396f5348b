//! One call-result record of the vendor becomes one `CALL` event of realstat's own schema
//! (docs/events.md), or is refused with a reason.
//!
//! The mapping is a pure function of the record, the token's grant and the tenant's time zone,
//! so a retried or duplicated push produces byte-identical events (same key, same value, same
//! `eventId`), and the fold's idempotence absorbs them.
//!
//! `called` (the customer's number), `recordPath`, `customField` and `sessionId` are never copied
//! anywhere: the event has no field for them, and a refused record is passed on with only the
//! fields named in [`DEAD_LETTER_FIELDS`].

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::tokens::TokenGrant;
use crate::events::ids::{TASK_ID_MAX_DIGITS, VDN_MAX};
use crate::fold::TimeZones;
pub use crate::metrics::InvalidRecord as Invalid;

/// The fields of a refused record that may travel to the dead-letter topic: none of them is
/// personal data.
pub const DEAD_LETTER_FIELDS: [&str; 6] = [
    "campaignId",
    "vdnId",
    "callId",
    "callTimeStr",
    "callStatus",
    "failCode",
];

/// A Kafka message to write: the event, or the redacted copy of a refused record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub key: Option<String>,
    pub payload: Vec<u8>,
}

/// A refused record: why, and what may go to the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub reason: Invalid,
    pub copy: Message,
}

/// The event of `record`, or why there is none.
pub fn map_record(
    record: &Value,
    grant: &TokenGrant,
    zones: &TimeZones,
) -> Result<Message, Refused> {
    let Some(fields) = record.as_object() else {
        return Err(refused(Invalid::NotObject, &Map::new()));
    };
    event_of(fields, grant, zones).map_err(|reason| refused(reason, fields))
}

fn refused(reason: Invalid, fields: &Map<String, Value>) -> Refused {
    let kept: Map<String, Value> = DEAD_LETTER_FIELDS
        .iter()
        .filter_map(|&name| Some((name.to_owned(), fields.get(name)?.clone())))
        .collect();
    Refused {
        reason,
        copy: Message {
            key: None,
            payload: Value::Object(kept).to_string().into_bytes(),
        },
    }
}

fn event_of(
    fields: &Map<String, Value>,
    grant: &TokenGrant,
    zones: &TimeZones,
) -> Result<Message, Invalid> {
    let field = |name: &str| fields.get(name).filter(|v| !v.is_null());
    let task = text(field("campaignId"))
        .flatten()
        .filter(|t| (1..=TASK_ID_MAX_DIGITS).contains(&t.len()) && all_digits(t))
        .ok_or(Invalid::BadCampaignId)?;
    let vdn = integer(field("vdnId"))
        .filter(|v| (1..=VDN_MAX as u64).contains(v))
        .and_then(|v| u16::try_from(v).ok())
        .ok_or(Invalid::BadVdn)?;
    if !grant.vdns.contains(vdn) {
        return Err(Invalid::VdnNotAllowed);
    }
    let state = match integer(field("callStatus")) {
        Some(5) => "FAILED",
        Some(6) => "FINISHED",
        _ => return Err(Invalid::BadCallStatus),
    };
    let time_text = text(field("callTimeStr"))
        .flatten()
        .ok_or(Invalid::BadCallTime)?;
    let ts = local_millis(&time_text, zones.of(grant.cc_id, vdn).time_zone())
        .ok_or(Invalid::BadCallTime)?;
    let fail_code = match state {
        "FAILED" => text(field("failCode"))
            .ok_or(Invalid::BadFailCode)?
            .filter(|c| !c.is_empty()),
        _ => None,
    };
    if fail_code.as_ref().is_some_and(|c| c.chars().count() > 16) {
        return Err(Invalid::BadFailCode);
    }
    let call_id = call_identity(field("callId"), field("sessionId"), &time_text)?;
    Ok(encode(
        grant.cc_id,
        vdn,
        &task,
        &call_id,
        state,
        fail_code.as_deref(),
        ts,
    ))
}

/// `callId`, or, when it is empty, an id derived from `sessionId` and the call time (hashed:
/// some deployments put the customer's number in `sessionId`).
fn call_identity(
    call_id: Option<&Value>,
    session_id: Option<&Value>,
    time_text: &str,
) -> Result<String, Invalid> {
    match text(call_id).ok_or(Invalid::BadCallId)? {
        Some(id) if !id.is_empty() => {
            if id.len() <= 64 && id.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
                Ok(id)
            } else {
                Err(Invalid::BadCallId)
            }
        }
        _ => {
            let session = text(session_id)
                .flatten()
                .filter(|s| !s.is_empty() && s.chars().count() <= 32)
                .ok_or(Invalid::BadCallId)?;
            Ok(format!(
                "s-{}",
                hex32(&[session.as_bytes(), time_text.as_bytes()])
            ))
        }
    }
}

fn encode(
    cc_id: u16,
    vdn: u16,
    task: &str,
    call_id: &str,
    state: &str,
    fail_code: Option<&str>,
    ts: i64,
) -> Message {
    let (cc, v, t) = (cc_id.to_string(), vdn.to_string(), ts.to_string());
    let id_parts = [
        cc.as_bytes(),
        v.as_bytes(),
        task.as_bytes(),
        call_id.as_bytes(),
        state.as_bytes(),
        fail_code.unwrap_or("").as_bytes(),
        t.as_bytes(),
    ];
    let mut event = serde_json::json!({
        "v": 1,
        "type": "CALL",
        "ccId": cc_id,
        "vdn": vdn,
        "taskId": task,
        "callId": call_id,
        "state": state,
        "ts": ts,
        "eventId": format!("cb-{}", hex32(&id_parts)),
    });
    if let (Some(code), Some(obj)) = (fail_code, event.as_object_mut()) {
        obj.insert("failCode".to_owned(), Value::String(code.to_owned()));
    }
    Message {
        key: Some(format!("{cc_id}:{vdn}:{task}")),
        payload: event.to_string().into_bytes(),
    }
}

/// The first 128 bits of the SHA-256 of the parts (each followed by a NUL), in hex.
fn hex32(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0]);
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A string, or a number as its decimal text; `None` inside for absent (or null). `None`
/// outside: another JSON type.
fn text(v: Option<&Value>) -> Option<Option<String>> {
    match v {
        None => Some(None),
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(Value::Number(n)) => Some(Some(n.to_string())),
        Some(_) => None,
    }
}

/// A non-negative integer as a JSON number or a string of 1 to 18 ASCII digits.
fn integer(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if s.len() <= 18 && all_digits(s) => s.parse().ok(),
        _ => None,
    }
}

/// `yyyy-MM-dd HH:mm:ss` read as wall-clock time in `tz`, in milliseconds since the epoch. A
/// time that occurs twice (clocks set back) is the earlier; one that never occurs (clocks set
/// forward) is moved forward by the gap. Before 1970: refused (the schema's `ts` is at least 1).
pub fn local_millis(text: &str, tz: &TimeZone) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b' '
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i16> {
        let s = text.get(from..to)?;
        all_digits(s).then(|| s.parse().ok()).flatten()
    };
    let small = |from: usize| num(from, from + 2).and_then(|n| i8::try_from(n).ok());
    let dt = DateTime::new(
        num(0, 4)?,
        small(5)?,
        small(8)?,
        small(11)?,
        small(14)?,
        small(17)?,
        0,
    )
    .ok()?;
    let ms = tz
        .to_ambiguous_timestamp(dt)
        .compatible()
        .ok()?
        .as_millisecond();
    (ms >= 1).then_some(ms)
}

#[cfg(test)]
mod tests;

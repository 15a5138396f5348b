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

use std::fmt;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Number;
use sha2::{Digest, Sha256};

use super::tokens::TokenGrant;
use crate::events::ids::{TaskKey, TASK_ID_MAX_DIGITS, VDN_MAX};
use crate::events::push_json_string;
use crate::fold::TimeZones;
pub use crate::metrics::InvalidRecord as Invalid;

/// The fields of a refused record that may travel to the dead-letter topic: none of them is
/// personal data. (The first six the mapping reads; `sessionId` may hold a phone number.)
pub const DEAD_LETTER_FIELDS: &[&str] = READ_FIELDS.split_at(6).0;

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

/// The fields the mapping reads: the ones a dead-letter copy may keep, then `sessionId`.
const READ_FIELDS: [&str; 7] = [
    "campaignId",
    "vdnId",
    "callId",
    "callTimeStr",
    "callStatus",
    "failCode",
    "sessionId",
];

/// A field the mapping reads: its position in [`READ_FIELDS`].
#[derive(Debug, Clone, Copy)]
enum Field {
    CampaignId,
    VdnId,
    CallId,
    CallTimeStr,
    CallStatus,
    FailCode,
    SessionId,
}

/// A record's fields the mapping reads, as their raw JSON text (a later duplicate key replaces an
/// earlier one). Every other field, the customer's number among them, is skipped unread: no
/// copy of it is ever made.
struct Fields<'a>([Option<&'a RawValue>; READ_FIELDS.len()]);

impl<'a> Fields<'a> {
    /// A field as the mapping reads it: absent and `null` alike are `None`.
    fn get(&self, field: Field) -> Option<Scalar> {
        self.0[field as usize]
            .filter(|r| r.get() != "null")
            .map(Scalar::of)
    }
}

impl<'de> serde::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Fields([None; READ_FIELDS.len()]);
        while let Some(FieldIndex(index)) = map.next_key()? {
            match index {
                Some(i) => fields.0[i] = Some(map.next_value()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

/// A key's position in [`READ_FIELDS`], if the mapping reads it.
struct FieldIndex(Option<usize>);

impl<'de> serde::Deserialize<'de> for FieldIndex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Key;
        impl Visitor<'_> for Key {
            type Value = FieldIndex;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<FieldIndex, E> {
                Ok(FieldIndex(READ_FIELDS.iter().position(|&n| n == name)))
            }
        }
        d.deserialize_str(Key)
    }
}

/// A field's value, as far as the mapping cares.
enum Scalar {
    Text(String),
    Number(Number),
    /// An object, an array or a boolean.
    Other,
}

impl Scalar {
    fn of(raw: &RawValue) -> Scalar {
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str(text).map_or(Scalar::Other, Scalar::Text),
            Some(b'-' | b'0'..=b'9') => {
                serde_json::from_str(text).map_or(Scalar::Other, Scalar::Number)
            }
            _ => Scalar::Other,
        }
    }
}

/// The event of `record` (one element of a push, as its raw JSON text), or why there is none.
pub fn map_record(
    record: &RawValue,
    grant: &TokenGrant,
    zones: &TimeZones,
) -> Result<Message, Refused> {
    let text = record.get().trim_start();
    let fields = match text.starts_with('{') {
        true => serde_json::from_str::<Fields<'_>>(text).ok(),
        false => None,
    };
    let Some(fields) = fields else {
        return Err(refused(Invalid::NotObject, None));
    };
    event_of(&fields, grant, zones).map_err(|reason| refused(reason, Some(&fields)))
}

/// The refusal, with a copy of the record's [`DEAD_LETTER_FIELDS`] as they were sent (keys in
/// sorted order); a number no double can hold (`1e400`) is kept as its text in a string, so that
/// every copy parses wherever it is read.
fn refused(reason: Invalid, fields: Option<&Fields<'_>>) -> Refused {
    // The dead-letter fields are the first of the read ones, `null` included.
    let mut kept: Vec<(&str, &RawValue)> = DEAD_LETTER_FIELDS
        .iter()
        .enumerate()
        .filter_map(|(i, &name)| Some((name, fields?.0[i]?)))
        .collect();
    kept.sort_unstable_by_key(|&(name, _)| name);
    let mut copy = String::from("{");
    for (i, (name, raw)) in kept.iter().enumerate() {
        if i > 0 {
            copy.push(',');
        }
        copy.push('"');
        copy.push_str(name);
        copy.push_str("\":");
        match serde_json::from_str::<serde_json::Value>(raw.get()) {
            Ok(_) => copy.push_str(raw.get()),
            Err(_) => push_json_string(&mut copy, raw.get()),
        }
    }
    copy.push('}');
    Refused {
        reason,
        copy: Message {
            key: None,
            payload: copy.into_bytes(),
        },
    }
}

fn event_of(
    fields: &Fields<'_>,
    grant: &TokenGrant,
    zones: &TimeZones,
) -> Result<Message, Invalid> {
    let field = |f: Field| fields.get(f);
    let task = text(field(Field::CampaignId))
        .flatten()
        .filter(|t| (1..=TASK_ID_MAX_DIGITS).contains(&t.len()) && all_digits(t))
        .ok_or(Invalid::BadCampaignId)?;
    let vdn = integer(field(Field::VdnId))
        .filter(|v| (1..=VDN_MAX as u64).contains(v))
        .and_then(|v| u16::try_from(v).ok())
        .ok_or(Invalid::BadVdn)?;
    if !grant.vdns.contains(vdn) {
        return Err(Invalid::VdnNotAllowed);
    }
    let state = match integer(field(Field::CallStatus)) {
        Some(5) => "FAILED",
        Some(6) => "FINISHED",
        _ => return Err(Invalid::BadCallStatus),
    };
    let time_text = text(field(Field::CallTimeStr))
        .flatten()
        .ok_or(Invalid::BadCallTime)?;
    let ts = local_millis(&time_text, zones.of(grant.cc_id, vdn).time_zone())
        .ok_or(Invalid::BadCallTime)?;
    let fail_code = match state {
        "FAILED" => text(field(Field::FailCode))
            .ok_or(Invalid::BadFailCode)?
            .filter(|c| !c.is_empty()),
        _ => None,
    };
    if fail_code.as_ref().is_some_and(|c| c.chars().count() > 16) {
        return Err(Invalid::BadFailCode);
    }
    let call_id = call_identity(field(Field::CallId), field(Field::SessionId), &time_text)?;
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
    call_id: Option<Scalar>,
    session_id: Option<Scalar>,
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
    // Written out directly rather than through a `serde_json::Value` (a map of allocated keys
    // per record, the most of a push's cost): fixed keys in the order `json!` gave them, the
    // strings escaped by serde_json. The event decoder's tests read it back.
    let mut out = String::with_capacity(192 + task.len() + call_id.len());
    out.push_str(r#"{"callId":"#);
    push_json_string(&mut out, call_id);
    out.push_str(r#","ccId":"#);
    out.push_str(&cc);
    out.push_str(r#","eventId":"cb-"#);
    out.push_str(&hex32(&id_parts));
    out.push('"');
    if let Some(code) = fail_code {
        out.push_str(r#","failCode":"#);
        push_json_string(&mut out, code);
    }
    out.push_str(r#","state":""#);
    out.push_str(state);
    out.push_str(r#"","taskId":"#);
    push_json_string(&mut out, task);
    out.push_str(r#","ts":"#);
    out.push_str(&t);
    out.push_str(r#","type":"CALL","v":1,"vdn":"#);
    out.push_str(&v);
    out.push('}');
    Message {
        key: Some(message_key(cc_id, vdn, task)),
        payload: out.into_bytes(),
    }
}

/// The Kafka key of the task's events, `{ccId}:{vdn}:{taskId}` with the task id's value (as
/// [`TaskKey`] writes it), so that a campaign id sent as `0012` lands in the partition of task 12
/// like every other producer's events of that task.
fn message_key(cc_id: u16, vdn: u16, task_digits: &str) -> String {
    match task_digits.parse::<u128>() {
        Ok(task_id) => TaskKey {
            cc_id,
            vdn,
            task_id,
        }
        .to_string(),
        // Unreachable: the caller checked 1 to 30 digits, and 10^30 fits a u128.
        Err(_) => format!("{cc_id}:{vdn}:{task_digits}"),
    }
}

/// The first 128 bits of the SHA-256 of the parts (each followed by a NUL), in hex.
fn hex32(parts: &[&[u8]]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
        h.update([0]);
    }
    let digest = h.finalize();
    let mut out = String::with_capacity(32);
    for &b in &digest[..16] {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A string, or a number as its decimal text; `None` inside for absent (or null). `None`
/// outside: another JSON type.
fn text(v: Option<Scalar>) -> Option<Option<String>> {
    match v {
        None => Some(None),
        Some(Scalar::Text(s)) => Some(Some(s)),
        Some(Scalar::Number(n)) => Some(Some(n.to_string())),
        Some(Scalar::Other) => None,
    }
}

/// A non-negative integer as a JSON number or a string of 1 to 18 ASCII digits.
fn integer(v: Option<Scalar>) -> Option<u64> {
    match v? {
        Scalar::Number(n) => n.as_u64(),
        Scalar::Text(s) if s.len() <= 18 && all_digits(&s) => s.parse().ok(),
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

//! The snapshot file format: compact, versioned, checksummed.
//!
//! ```text
//! "RSTSNAP\0"  magic, 8 bytes
//! u16 LE       format version (2; version 1 is still read)
//! u64 LE       body length
//! body
//! u32 LE       CRC-32 of everything above
//! ```
//!
//! The body holds only what cannot be derived: per task its plans and its calls (key hash, first
//! and last `ts`, state, expired, failure cause), plus the watermark, the positions and the topic
//! name. Day buckets and counters are rebuilt on load. Integers are LEB128 varints; timestamps
//! are stored relative to the watermark (zig-zag), so a call takes about 17 bytes.
//!
//! Version 2 adds failure causes: after the positions, the table of the causes the calls refer
//! to (a count, then each text); a call with a cause sets bit 6 of its state byte and is followed
//! by the cause's index in that table (varint). A call without one costs nothing more. Version 1
//! files have no table and no bit 6, and are read as calls without causes.
//!
//! Version 3 adds closed days (fold::history) after the tasks: a fixed u64 count of tasks with
//! history, then per task its key and its closed days (day number, counts by state, plan,
//! 24 hourly buckets, causes with their texts inline). Versions 1 and 2 have none.

use crate::events::ids::TaskKey;
use crate::events::{CallKey, CallState};
use std::collections::HashMap;

use crate::clock::EpochMs;
use crate::fold::{ClosedDay, FailCodeId, FailCodes, HourCounts, Plan, RestoredCall, Store};
use crate::log_position::{Offset, Partition};
use crate::progress::Positions;

const MAGIC: &[u8; 8] = b"RSTSNAP\0";
pub(super) const VERSION: u16 = 3;
/// Versions [`read_header`] accepts.
const READABLE: [u16; 3] = [1, 2, 3];
/// The first version with closed days.
const HISTORY_SINCE: u16 = 3;
const HAS_FAIL_CODE: u8 = 0x40;
const HEADER_LEN: usize = 8 + 2 + 8;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("not a realstat snapshot (bad magic)")]
    Magic,
    #[error("unsupported snapshot version {0}")]
    Version(u16),
    #[error("truncated snapshot")]
    Truncated,
    #[error("checksum mismatch (torn or corrupt file)")]
    Checksum,
    #[error("malformed snapshot body: {0}")]
    Body(&'static str),
}

/// What a snapshot says besides the tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub created_ms: EpochMs,
    pub topic: String,
    pub watermark: EpochMs,
    pub calls_expired_total: u64,
    pub positions: Positions,
    /// The failure causes the calls refer to, by index (empty in version 1).
    pub fail_codes: Vec<String>,
    /// The format version read.
    pub version: u16,
}

/// Encodes the store. `positions` must be read *before* calling this: the state then covers at
/// least every event below them (it may hold later ones too, which replay as no-ops because the
/// fold is idempotent).
pub fn encode(store: &Store, positions: &Positions, topic: &str, created_ms: EpochMs) -> Vec<u8> {
    let watermark = store.watermark();
    let mut body = Vec::with_capacity(256);
    put_i64(&mut body, created_ms);
    put_bytes(&mut body, topic.as_bytes());
    put_i64(&mut body, watermark);
    put_varint(&mut body, store.calls_expired_total());
    put_varint(&mut body, positions.len() as u64);
    for (&Partition(p), &Offset(o)) in positions {
        put_zigzag(&mut body, i64::from(p));
        put_zigzag(&mut body, o);
    }
    let (tasks, codes) = encode_tasks(store, watermark);
    // The table of causes is complete only after the walk, and precedes the tasks.
    put_varint(&mut body, codes.len() as u64);
    for text in &codes {
        put_bytes(&mut body, text.as_bytes());
    }
    body.reserve(tasks.len());
    body.extend_from_slice(&tasks);
    encode_history(store, watermark, &mut body);

    let mut out = Vec::with_capacity(HEADER_LEN + body.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The tasks part of the body, and the failure causes it refers to (by index).
fn encode_tasks(store: &Store, watermark: EpochMs) -> (Vec<u8>, Vec<String>) {
    let mut body = Vec::with_capacity(64 + store.calls_tracked() as usize * 18);
    // Snapshot index of each interned cause met, in the order met.
    let mut index: HashMap<FailCodeId, u64> = HashMap::new();
    let mut ids: Vec<FailCodeId> = Vec::new();
    // The task count is not known until the walk ends (tasks come and go meanwhile): reserve a
    // fixed-width slot and fill it in afterwards.
    body.extend_from_slice(&[0u8; 8]);
    let mut tasks: u64 = 0;
    store.for_each_task(|key, task| {
        tasks += 1;
        body.extend_from_slice(&key.cc_id.to_le_bytes());
        body.extend_from_slice(&key.vdn.to_le_bytes());
        body.extend_from_slice(&key.task_id.to_le_bytes());
        let plans: Vec<Plan> = task.days.iter().filter_map(|d| d.plan).collect();
        put_varint(&mut body, plans.len() as u64);
        for plan in plans {
            put_zigzag(&mut body, plan.ts.wrapping_sub(watermark));
            put_varint(&mut body, plan.planned);
        }
        put_varint(&mut body, task.calls.len() as u64);
        for (k, c) in &task.calls {
            body.extend_from_slice(&k.0.to_le_bytes());
            put_zigzag(&mut body, c.first_ts.wrapping_sub(watermark));
            put_varint(&mut body, c.last_ts.wrapping_sub(c.first_ts) as u64);
            let has_code = c.fail_code != FailCodes::NONE;
            body.push(
                c.state as u8
                    | (u8::from(c.expired) << 7)
                    | if has_code { HAS_FAIL_CODE } else { 0 },
            );
            if has_code {
                let next = ids.len() as u64;
                let i = *index.entry(c.fail_code).or_insert_with(|| {
                    ids.push(c.fail_code);
                    next
                });
                put_varint(&mut body, i);
            }
        }
    });
    body[..8].copy_from_slice(&tasks.to_le_bytes());
    let codes = store.fail_codes();
    let texts = ids
        .into_iter()
        .map(|id| codes.text(id).unwrap_or_default())
        .collect();
    (body, texts)
}

/// Checks the frame and reads the header, without touching the store.
pub fn read_header(bytes: &[u8]) -> Result<(Header, Reader<'_>), DecodeError> {
    if bytes.len() < HEADER_LEN + 4 {
        return Err(if bytes.starts_with(MAGIC) || bytes.len() < 8 {
            DecodeError::Truncated
        } else {
            DecodeError::Magic
        });
    }
    if &bytes[..8] != MAGIC {
        return Err(DecodeError::Magic);
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if !READABLE.contains(&version) {
        return Err(DecodeError::Version(version));
    }
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&bytes[10..18]);
    let body_len =
        usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|_| DecodeError::Truncated)?;
    let end = HEADER_LEN
        .checked_add(body_len)
        .ok_or(DecodeError::Truncated)?;
    if bytes.len() != end + 4 {
        return Err(DecodeError::Truncated);
    }
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[end..end + 4]);
    if crc32fast::hash(&bytes[..end]) != u32::from_le_bytes(crc) {
        return Err(DecodeError::Checksum);
    }
    let mut r = Reader {
        buf: &bytes[HEADER_LEN..end],
    };
    let created_ms = r.i64()?;
    let topic_len = r.varint()? as usize;
    let topic =
        String::from_utf8(r.take(topic_len)?.to_vec()).map_err(|_| DecodeError::Body("topic"))?;
    let watermark = r.i64()?;
    let calls_expired_total = r.varint()?;
    let n = r.varint()?;
    let mut positions = Positions::new();
    for _ in 0..n {
        let p = i32::try_from(r.zigzag()?).map_err(|_| DecodeError::Body("partition"))?;
        positions.insert(Partition(p), Offset(r.zigzag()?));
    }
    let mut fail_codes = Vec::new();
    if version >= 2 {
        let n = r.varint()?;
        if n > r.remaining() as u64 {
            return Err(DecodeError::Body("fail code count"));
        }
        for _ in 0..n {
            let len = r.varint()? as usize;
            let text =
                std::str::from_utf8(r.take(len)?).map_err(|_| DecodeError::Body("fail code"))?;
            fail_codes.push(text.to_owned());
        }
    }
    Ok((
        Header {
            created_ms,
            topic,
            watermark,
            calls_expired_total,
            positions,
            fail_codes,
            version,
        },
        r,
    ))
}

/// Decodes the tasks into `store` (which should be empty). The frame was checked by
/// [`read_header`], so an error here means a bug or a forged file: the store is then partially
/// filled and must be discarded.
pub fn restore_into(header: &Header, mut r: Reader<'_>, store: &Store) -> Result<(), DecodeError> {
    let tasks = r.u64()?;
    let wm = header.watermark;
    let codes: Vec<FailCodeId> = header
        .fail_codes
        .iter()
        .map(|t| store.fail_codes().intern(t))
        .collect();
    let mut plans = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..tasks {
        let cc_id = r.u16()?;
        let vdn = r.u16()?;
        let task_id = r.u128()?;
        plans.clear();
        for _ in 0..r.varint()? {
            let ts = wm.wrapping_add(r.zigzag()?);
            plans.push(Plan {
                ts,
                planned: r.varint()?,
            });
        }
        calls.clear();
        let n = r.varint()?;
        if n > r.remaining() as u64 {
            return Err(DecodeError::Body("call count"));
        }
        for _ in 0..n {
            let key = CallKey(r.u64()?);
            let first_ts = wm.wrapping_add(r.zigzag()?);
            let last_ts = first_ts.wrapping_add(r.varint()? as i64);
            let b = r.u8()?;
            let state = CallState::from_index(b & 0x3f).ok_or(DecodeError::Body("state"))?;
            let fail_code = if b & HAS_FAIL_CODE != 0 {
                let i = usize::try_from(r.varint()?).map_err(|_| DecodeError::Body("fail code"))?;
                *codes.get(i).ok_or(DecodeError::Body("fail code index"))?
            } else {
                FailCodes::NONE
            };
            calls.push((
                key,
                RestoredCall {
                    first_ts,
                    last_ts,
                    state,
                    expired: b & 0x80 != 0,
                    fail_code,
                },
            ));
        }
        store.restore_task(
            TaskKey {
                cc_id,
                vdn,
                task_id,
            },
            plans.drain(..),
            calls.drain(..),
        );
    }
    if header.version >= HISTORY_SINCE {
        restore_history(&mut r, wm, store)?;
    }
    if r.remaining() != 0 {
        return Err(DecodeError::Body("trailing bytes"));
    }
    store.restore_clock(header.watermark, header.calls_expired_total);
    Ok(())
}

/// The closed days of every task that has some (version 3).
fn encode_history(store: &Store, watermark: EpochMs, body: &mut Vec<u8>) {
    let slot = body.len();
    body.extend_from_slice(&[0u8; 8]);
    let mut tasks: u64 = 0;
    let codes = store.fail_codes();
    store.for_each_task(|key, task| {
        if task.history.is_empty() {
            return;
        }
        tasks += 1;
        body.extend_from_slice(&key.cc_id.to_le_bytes());
        body.extend_from_slice(&key.vdn.to_le_bytes());
        body.extend_from_slice(&key.task_id.to_le_bytes());
        put_varint(body, task.history.len() as u64);
        for day in &task.history {
            put_zigzag(body, i64::from(day.day));
            for n in day.by_state {
                put_varint(body, u64::from(n));
            }
            match day.plan {
                None => body.push(0),
                Some(plan) => {
                    body.push(1);
                    put_zigzag(body, plan.ts.wrapping_sub(watermark));
                    put_varint(body, plan.planned);
                }
            }
            for h in &day.hours {
                put_varint(body, u64::from(h.total));
                put_varint(body, u64::from(h.succ));
                put_varint(body, u64::from(h.fail));
            }
            put_varint(body, day.causes.len() as u64);
            for &(id, n) in &day.causes {
                put_bytes(body, codes.text(id).unwrap_or_default().as_bytes());
                put_varint(body, u64::from(n));
            }
        }
    });
    body[slot..slot + 8].copy_from_slice(&tasks.to_le_bytes());
}

/// Reads the closed days written by [`encode_history`] into `store`.
fn restore_history(
    r: &mut Reader<'_>,
    watermark: EpochMs,
    store: &Store,
) -> Result<(), DecodeError> {
    let tasks = r.u64()?;
    let u32_of = |v: u64| u32::try_from(v).map_err(|_| DecodeError::Body("closed-day count"));
    for _ in 0..tasks {
        let key = TaskKey {
            cc_id: r.u16()?,
            vdn: r.u16()?,
            task_id: r.u128()?,
        };
        let n = r.varint()?;
        if n > r.remaining() as u64 {
            return Err(DecodeError::Body("closed-day count"));
        }
        let mut history = Vec::new();
        for _ in 0..n {
            let day = i32::try_from(r.zigzag()?).map_err(|_| DecodeError::Body("day"))?;
            let mut by_state = [0u32; 5];
            for s in &mut by_state {
                *s = u32_of(r.varint()?)?;
            }
            let plan = match r.u8()? {
                0 => None,
                1 => Some(Plan {
                    ts: watermark.wrapping_add(r.zigzag()?),
                    planned: r.varint()?,
                }),
                _ => return Err(DecodeError::Body("plan flag")),
            };
            let mut hours = [HourCounts::default(); 24];
            for h in &mut hours {
                h.total = u32_of(r.varint()?)?;
                h.succ = u32_of(r.varint()?)?;
                h.fail = u32_of(r.varint()?)?;
            }
            let mut closed = ClosedDay {
                day,
                by_state,
                plan,
                hours,
                causes: Vec::new(),
            };
            for _ in 0..r.varint()? {
                let len = usize::try_from(r.varint()?).map_err(|_| DecodeError::Body("cause"))?;
                let text =
                    std::str::from_utf8(r.take(len)?).map_err(|_| DecodeError::Body("cause"))?;
                // A failed call without a cause is written as "".
                let id = if text.is_empty() {
                    FailCodes::NONE
                } else {
                    store.fail_codes().intern(text)
                };
                closed.add_cause(id, u32_of(r.varint()?)?);
            }
            history.push(closed);
        }
        store.restore_history(key, history);
    }
    Ok(())
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A bounds-checked cursor over the body.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Body("unexpected end"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn u128(&mut self) -> Result<u128, DecodeError> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Body("varint too long"))
    }

    fn zigzag(&mut self) -> Result<i64, DecodeError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
}

/// Closed days through a snapshot: a 20-day log answers the failure statistics exactly when
/// folded live, after a restart from a snapshot taken midway, and on a fresh replica.
#[cfg(test)]
mod history_tests {
    use super::*;
    use crate::events::{Event, EventKind, FailCode};
    use crate::fold::{fail_days, Calendar, Day, FailDay, FoldPolicy, TimeZones};
    use std::collections::BTreeMap;

    const HOUR: i64 = 3_600_000;
    /// 2026-11-01T00:00:00Z.
    const START: i64 = 1_793_491_200_000;
    const TASK: TaskKey = TaskKey {
        cc_id: 89,
        vdn: 92,
        task_id: 7,
    };
    const CAUSES: [&str; 3] = ["00601", "00603", "00302"];

    fn new_store() -> Store {
        let zones = TimeZones::new(
            Calendar::named("Asia/Shanghai").expect("zone"),
            [(
                "89".parse().expect("scope"),
                Calendar::named("Europe/Berlin").expect("zone"),
            )],
        );
        Store::with_zones(
            zones,
            FoldPolicy {
                retention_days: 2,
                stale_after_ms: 24 * HOUR,
                max_future_ms: 0,
                max_tasks: 100,
                max_calls_per_task: 100_000,
                history_days: 35,
            },
        )
    }

    /// 20 days, a call every 37 minutes: every 3rd fails with a cause that rotates, every 7th
    /// fails without one, the rest finish; each FAILED event is delivered twice.
    fn log() -> Vec<Event> {
        let mut events = Vec::new();
        for i in 0..(20 * 24 * 60 / 37) {
            let ts = START + i * 37 * 60_000;
            let (state, code) = match i {
                i if i % 7 == 0 => (CallState::Failed, None),
                i if i % 3 == 0 => (
                    CallState::Failed,
                    FailCode::new(CAUSES[(i as usize / 3) % 3]),
                ),
                _ => (CallState::Finished, None),
            };
            let e = Event {
                task: TASK,
                ts,
                kind: EventKind::Call {
                    call: CallKey::of(&format!("c{i}")),
                    state,
                    fail_code: code,
                },
            };
            if state == CallState::Failed {
                events.push(e);
            }
            events.push(e);
        }
        events
    }

    /// The answer computed from the log alone: the Berlin day of each failed call, by cause.
    fn expected(log: &[Event]) -> Vec<FailDay> {
        let berlin = Calendar::named("Europe/Berlin").expect("zone");
        let mut by_day: BTreeMap<Day, BTreeMap<String, u64>> = BTreeMap::new();
        let mut seen = std::collections::HashSet::new();
        for e in log {
            if let EventKind::Call {
                call,
                state: CallState::Failed,
                fail_code,
            } = &e.kind
            {
                if seen.insert(*call) {
                    let text = fail_code
                        .as_ref()
                        .map(|c| c.as_str().to_owned())
                        .unwrap_or_default();
                    *by_day
                        .entry(berlin.day_of(e.ts))
                        .or_default()
                        .entry(text)
                        .or_default() += 1;
                }
            }
        }
        by_day
            .into_iter()
            .map(|(day, causes)| FailDay {
                day,
                causes: causes.into_iter().collect(),
            })
            .collect()
    }

    fn fold(store: &Store, events: &[Event]) {
        for (i, e) in events.iter().enumerate() {
            store.apply(e, i64::MAX / 2);
            if i % 50 == 0 {
                store.maintain();
            }
        }
        store.maintain();
    }

    fn restart(from: &Store) -> Store {
        let bytes = encode(from, &Positions::new(), "t", 0);
        let (header, reader) = read_header(&bytes).expect("header");
        assert_eq!(header.version, 3);
        let store = new_store();
        restore_into(&header, reader, &store).expect("restore");
        store
    }

    #[test]
    fn twenty_days_answer_exactly_live_after_a_restart_and_on_a_fresh_replica() {
        let log = log();
        let want = expected(&log);
        assert_eq!(want.len(), 21, "20 days of UTC cover 21 Berlin dates");
        let berlin = Calendar::named("Europe/Berlin").expect("zone");
        let (first, last) = (berlin.day_of(START), berlin.day_of(START + 20 * 24 * HOUR));
        let answer = |s: &Store| fail_days(s, &TASK, first, last);

        let live = new_store();
        fold(&live, &log);
        assert!(
            live.task(&TASK).expect("task").history.len() >= 18,
            "days closed"
        );
        assert_eq!(answer(&live), want);

        // Restart from a snapshot taken midway, then the rest of the log (and a redelivery).
        let half = log.len() / 2;
        let before = new_store();
        fold(&before, &log[..half]);
        let restarted = restart(&before);
        fold(&restarted, &log[half - 100..]);
        assert_eq!(answer(&restarted), want);
        // And a restart of the finished state.
        assert_eq!(answer(&restart(&live)), want);

        // A fresh replica folds the whole log with no maintenance until the end.
        let fresh = new_store();
        for e in &log {
            fresh.apply(e, i64::MAX / 2);
        }
        fresh.maintain();
        assert_eq!(answer(&fresh), want);
        assert_eq!(
            fresh.task(&TASK).expect("task").history,
            live.task(&TASK).expect("task").history
        );
    }

    /// A changed zone re-buckets restored calls: the snapshot keeps instants, not days.
    #[test]
    fn a_changed_zone_rebuckets_restored_calls() {
        let shanghai = Store::new(
            Calendar::named("Asia/Shanghai").expect("zone"),
            new_store().policy(),
        );
        // 2026-11-20T20:00Z: the 21st in Shanghai (04:00), the 20th in Berlin (21:00).
        let ts = 1_795_204_800_000;
        let e = Event {
            task: TASK,
            ts,
            kind: EventKind::Call {
                call: CallKey::of("x"),
                state: CallState::Failed,
                fail_code: FailCode::new("00601"),
            },
        };
        shanghai.apply(&e, i64::MAX / 2);
        let sh_day = Calendar::named("Asia/Shanghai").expect("zone").day_of(ts);
        assert_eq!(Calendar::date_text(sh_day), "2026-11-21");
        let berlin = restart(&shanghai);
        let de_day = Calendar::named("Europe/Berlin").expect("zone").day_of(ts);
        assert_eq!(Calendar::date_text(de_day), "2026-11-20");
        assert_eq!(
            (
                berlin.stats(&TASK, de_day).fail,
                berlin.stats(&TASK, sh_day).fail
            ),
            (1, 0)
        );
        assert_eq!(fail_days(&berlin, &TASK, de_day, sh_day)[0].day, de_day);
    }

    #[test]
    fn older_versions_still_restore() {
        let live = new_store();
        fold(&live, &log()[..40]);
        let mut bytes = encode(&live, &Positions::new(), "t", 0);
        // A version 2 file is the same body without the history section (here: 8 zero bytes,
        // no task has closed days yet).
        assert!(live.task(&TASK).expect("task").history.is_empty());
        bytes.truncate(bytes.len() - 4);
        bytes.truncate(bytes.len() - 8);
        bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
        let body_len = (bytes.len() - HEADER_LEN) as u64;
        bytes[10..18].copy_from_slice(&body_len.to_le_bytes());
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let (header, reader) = read_header(&bytes).expect("v2 header");
        assert_eq!(header.version, 2);
        let store = new_store();
        restore_into(&header, reader, &store).expect("v2 restore");
        assert_eq!(
            store.task(&TASK).expect("task").calls.len(),
            live.task(&TASK).expect("task").calls.len()
        );
    }

    /// The numbers of operations.md ("Memory per task-day"): run with `--nocapture`.
    #[test]
    fn bytes_per_closed_task_day() {
        let live = new_store();
        fold(&live, &log());
        let task = live.task(&TASK).expect("task");
        let days = task.history.len();
        let memory: usize = task
            .history
            .iter()
            .map(crate::fold::history::bytes_of)
            .sum();
        let with = encode(&live, &Positions::new(), "t", 0).len();
        let history_bytes = history_section_len(&live);
        println!(
            "closed days: {days}; memory {} B per task-day (record {} B); snapshot {} B per task-day; whole snapshot {with} B",
            memory / days,
            std::mem::size_of::<ClosedDay>(),
            history_bytes / days,
        );
        assert!(memory / days <= 512, "a closed task-day stays compact");
    }

    fn history_section_len(store: &Store) -> usize {
        let mut body = Vec::new();
        encode_history(store, store.watermark(), &mut body);
        body.len() - 8
    }
}

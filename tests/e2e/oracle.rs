//! An independent, deliberately plain reading of events.md: parse each event as generic JSON,
//! keep per call the greatest state and the earliest ts, then count. It shares no code with the
//! service's fold, so the two can disagree.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

#[derive(Default)]
struct CallSeen {
    rank: u8,
    first_ts: i64,
    /// The greatest `failCode` of its FAILED events ("" when none had one).
    fail_code: String,
}

#[derive(Default)]
pub struct Oracle {
    /// (cc, vdn, canonical task) -> callId -> what we saw.
    calls: BTreeMap<(u64, u64, String), HashMap<String, CallSeen>>,
    /// (cc, vdn, canonical task, date) -> (ts, planned) of the winning TASK event.
    plans: BTreeMap<(u64, u64, String, String), (i64, u64)>,
}

fn rank(state: &str) -> Option<u8> {
    ["QUEUED", "DIALING", "FAILED", "CONNECTED", "FINISHED"]
        .iter()
        .position(|s| *s == state)
        .map(|p| p as u8)
}

fn num(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.trim_start_matches('0').parse().ok().or(Some(0))
        }
        _ => None,
    }
}

fn canonical_task(v: &Value) -> Option<String> {
    let s = match v {
        Value::Number(n) => n.as_u64()?.to_string(),
        Value::String(s)
            if !s.is_empty() && s.len() <= 30 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.clone()
        }
        _ => return None,
    };
    let t = s.trim_start_matches('0');
    Some(if t.is_empty() { "0".into() } else { t.into() })
}

/// Local date in Asia/Shanghai (UTC+8, no DST since 1991) of a ms timestamp.
fn date(ts_ms: i64) -> String {
    let days = (ts_ms + 8 * 3_600_000).div_euclid(86_400_000);
    let d = jiff::civil::date(1970, 1, 1)
        .checked_add(jiff::Span::new().days(days))
        .expect("date in range");
    d.to_string()
}

fn today() -> String {
    date(crate::support::now_ms())
}

fn pct(n: u64, d: u64) -> String {
    if d == 0 {
        return "0%".into();
    }
    let h = (2 * n as u128 * 10_000 + d as u128) / (2 * d as u128);
    let (w, f) = (h / 100, h % 100);
    if f == 0 {
        format!("{w}%")
    } else if f % 10 == 0 {
        format!("{w}.{}%", f / 10)
    } else {
        format!("{w}.{f:02}%")
    }
}

impl Oracle {
    /// Folds raw message values; anything that is not a valid event is skipped.
    pub fn fold<'a>(values: impl Iterator<Item = &'a [u8]>) -> Oracle {
        let mut o = Oracle::default();
        for v in values {
            let Ok(e) = serde_json::from_slice::<Value>(v) else {
                continue;
            };
            let cc = e.get("ccId").and_then(num).unwrap_or(1);
            let (Some(vdn), Some(task), Some(ts)) = (
                e.get("vdn").and_then(num),
                e.get("taskId").and_then(canonical_task),
                e.get("ts").and_then(Value::as_i64),
            ) else {
                continue;
            };
            match e.get("type").and_then(Value::as_str) {
                Some("CALL") => {
                    let (Some(id), Some(r)) = (
                        e.get("callId").and_then(Value::as_str),
                        e.get("state").and_then(Value::as_str).and_then(rank),
                    ) else {
                        continue;
                    };
                    let c = o
                        .calls
                        .entry((cc, vdn, task))
                        .or_default()
                        .entry(id.to_owned())
                        .or_insert(CallSeen {
                            rank: r,
                            first_ts: ts,
                            fail_code: String::new(),
                        });
                    c.rank = c.rank.max(r);
                    c.first_ts = c.first_ts.min(ts);
                    if r == 2 {
                        let code = e.get("failCode").and_then(Value::as_str).unwrap_or("");
                        if code > c.fail_code.as_str() {
                            c.fail_code = code.to_owned();
                        }
                    }
                }
                Some("TASK") => {
                    let Some(planned) = e.get("plannedCount").and_then(Value::as_u64) else {
                        continue;
                    };
                    let slot = o
                        .plans
                        .entry((cc, vdn, task, date(ts)))
                        .or_insert((ts, planned));
                    if (ts, planned) > *slot {
                        *slot = (ts, planned);
                    }
                }
                _ => {}
            }
        }
        o
    }

    pub fn tasks(&self) -> usize {
        self.calls.len()
    }

    /// The expected `resultDesc` for a task today.
    pub fn realstatistic(&self, cc: u16, vdn: u16, task: &str) -> Value {
        let key = (u64::from(cc), u64::from(vdn), task.to_owned());
        let today = today();
        let (mut total, mut succ, mut fail, mut fin, mut wait, mut exec) = (0, 0, 0, 0, 0, 0);
        if let Some(calls) = self.calls.get(&key) {
            for c in calls.values() {
                match c.rank {
                    0 => wait += 1,
                    1 | 3 => exec += 1,
                    _ => {}
                }
                if date(c.first_ts) != today {
                    continue;
                }
                total += 1;
                match c.rank {
                    2 => fail += 1,
                    3 => succ += 1,
                    4 => {
                        succ += 1;
                        fin += 1
                    }
                    _ => {}
                }
            }
        }
        let planned = self
            .plans
            .get(&(key.0, key.1, key.2, today))
            .map_or(0, |p| p.1);
        let comp = fail + fin;
        json!({
            "totalCount": total.to_string(),
            "succCount": succ.to_string(),
            "failCount": fail.to_string(),
            "succRate": pct(succ, total),
            "compCount": comp.to_string(),
            "compRate": pct(comp, planned.max(total)),
            "waitCount": wait.to_string(),
            "execCount": exec.to_string(),
        })
    }
}

impl Oracle {
    /// The expected breakdown `resultDesc` of a task today, hourly: calls by the local hour of
    /// their earliest event, and failed calls by cause (most first, then by code).
    pub fn breakdown(&self, cc: u16, vdn: u16, task: &str) -> Value {
        let key = (u64::from(cc), u64::from(vdn), task.to_owned());
        let today = today();
        let mut hours = [(0u64, 0u64, 0u64); 24];
        let mut causes: BTreeMap<String, u64> = BTreeMap::new();
        for c in self.calls.get(&key).into_iter().flat_map(|m| m.values()) {
            if date(c.first_ts) != today {
                continue;
            }
            let hour = ((c.first_ts + 8 * 3_600_000).rem_euclid(86_400_000) / 3_600_000) as usize;
            hours[hour].0 += 1;
            match c.rank {
                2 => {
                    hours[hour].2 += 1;
                    *causes.entry(c.fail_code.clone()).or_default() += 1;
                }
                3 | 4 => hours[hour].1 += 1,
                _ => {}
            }
        }
        let mut causes: Vec<(String, u64)> = causes.into_iter().collect();
        causes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        json!({
            "taskId": task,
            "day": today,
            "timeGrain": "60MIN",
            "buckets": hours.iter().enumerate().map(|(h, (t, s, f))| json!({
                "start": format!("{h:02}:00"),
                "totalCount": t.to_string(),
                "succCount": s.to_string(),
                "failCount": f.to_string(),
            })).collect::<Vec<_>>(),
            "failCodes": causes.iter().map(|(code, n)| json!({
                "failCode": code,
                "count": n.to_string(),
            })).collect::<Vec<_>>(),
        })
    }
}

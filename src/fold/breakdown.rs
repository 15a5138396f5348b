//! The shape of a task's day: its calls bucketed by the local time of their first event, and
//! its failed calls counted by failure cause (events.md, "The day's breakdown").
//!
//! Computed at query time from the calls the fold keeps (each has its earliest `ts`, its state
//! and its failure cause), so it follows the fold's rules exactly: duplicates and disorder
//! change nothing, and a call moves to an earlier bucket (or day) when an earlier event of it
//! arrives. The cost is one pass over the task's calls under its shard's read lock.

use std::collections::HashMap;

use super::calendar::Day;
use super::fail_codes::{FailCodeId, FailCodes};
use super::history::ClosedDay;
use super::store::Store;
use crate::events::ids::TaskKey;
use crate::events::CallState;

/// The width of a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeGrain {
    Min15,
    Min30,
    Min60,
}

impl TimeGrain {
    pub const ALL: [TimeGrain; 3] = [TimeGrain::Min15, TimeGrain::Min30, TimeGrain::Min60];

    /// `"15MIN"`, `"30MIN"` or `"60MIN"`, exactly.
    pub fn parse(text: &str) -> Option<Self> {
        TimeGrain::ALL.into_iter().find(|g| g.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TimeGrain::Min15 => "15MIN",
            TimeGrain::Min30 => "30MIN",
            TimeGrain::Min60 => "60MIN",
        }
    }

    pub fn minutes(self) -> u16 {
        match self {
            TimeGrain::Min15 => 15,
            TimeGrain::Min30 => 30,
            TimeGrain::Min60 => 60,
        }
    }
}

/// One bucket: the calls of the day whose first event fell in `[start, start + grain)`, local
/// wall-clock time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Minutes after local midnight.
    pub start: u16,
    pub total: u64,
    /// CONNECTED or FINISHED.
    pub succ: u64,
    /// FAILED.
    pub fail: u64,
}

/// A task's day: every bucket of the day (empty ones included), and the failed calls by cause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Breakdown {
    pub buckets: Vec<Bucket>,
    /// `(failCode, calls)`, most calls first, then by code; `""` counts the failed calls that
    /// carried no code.
    pub fail_codes: Vec<(String, u64)>,
    /// A closed day of the history: only its hourly buckets are kept, so the buckets are
    /// `60MIN` whatever grain was asked.
    pub closed: bool,
}

/// The breakdown of `task` for local day `day`.
pub fn breakdown(store: &Store, task: &TaskKey, day: Day, grain: TimeGrain) -> Breakdown {
    let width = grain.minutes();
    let mut buckets: Vec<Bucket> = (0..24 * 60 / width)
        .map(|i| Bucket {
            start: i * width,
            ..Bucket::default()
        })
        .collect();
    let calendar = store.calendar_of(task);
    let mut by_code: HashMap<FailCodeId, u64> = HashMap::new();
    let mut closed = None;
    store.with_task(task, |state| {
        let Some(state) = state else { return };
        if state.day(day).is_none() {
            closed = state.closed_day(day).cloned();
            if closed.is_some() {
                return;
            }
        }
        for call in state.calls.values().filter(|c| c.day == day) {
            let i = usize::from(calendar.minute_of_day(call.first_ts) / width);
            let Some(b) = buckets.get_mut(i) else {
                continue;
            };
            b.total += 1;
            match call.state {
                CallState::Connected | CallState::Finished => b.succ += 1,
                CallState::Failed => {
                    b.fail += 1;
                    *by_code.entry(call.fail_code).or_default() += 1;
                }
                CallState::Queued | CallState::Dialing => {}
            }
        }
    });
    let closed_flag = closed.is_some();
    if let Some(closed) = closed {
        buckets = closed_buckets(&closed);
        by_code = closed
            .causes
            .iter()
            .map(|&(id, n)| (id, u64::from(n)))
            .collect();
    }
    // Texts are looked up after the shard lock is released.
    let codes = store.fail_codes();
    let mut fail_codes: Vec<(String, u64)> = by_code
        .into_iter()
        .map(|(id, n)| (text_of(codes, id), n))
        .collect();
    fail_codes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Breakdown {
        buckets,
        fail_codes,
        closed: closed_flag,
    }
}

/// The hourly buckets of a closed day.
fn closed_buckets(day: &ClosedDay) -> Vec<Bucket> {
    (0u16..)
        .zip(day.hours.iter())
        .map(|(hour, h)| Bucket {
            start: hour * 60,
            total: u64::from(h.total),
            succ: u64::from(h.succ),
            fail: u64::from(h.fail),
        })
        .collect()
}

fn text_of(codes: &FailCodes, id: FailCodeId) -> String {
    codes.text(id).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use proptest::prelude::*;

    use super::*;
    use crate::events::{CallKey, Event, EventKind};
    use crate::fold::testing::*;

    const MIN: i64 = 60_000;

    fn bucket_at(b: &Breakdown, start: u16) -> Bucket {
        b.buckets
            .iter()
            .copied()
            .find(|x| x.start == start)
            .expect("bucket")
    }

    #[test]
    fn calls_are_bucketed_by_their_first_event_and_move_when_an_earlier_one_arrives() {
        use CallState::*;
        let s = store();
        let d = day0(&s);
        // T0 is 08:00 local time.
        s.apply(&call(TASK, "a", Finished, T0 + 20 * MIN), FAR_FUTURE);
        s.apply(&failed(TASK, "b", "00601", T0 + 35 * MIN), FAR_FUTURE);
        s.apply(&call(TASK, "c", Dialing, T0 + 59 * MIN), FAR_FUTURE);
        let b = breakdown(&s, &TASK, d, TimeGrain::Min15);
        assert_eq!(b.buckets.len(), 96);
        assert_eq!(
            bucket_at(&b, 8 * 60 + 15),
            Bucket {
                start: 8 * 60 + 15,
                total: 1,
                succ: 1,
                fail: 0
            }
        );
        assert_eq!(bucket_at(&b, 8 * 60 + 30).fail, 1);
        assert_eq!(bucket_at(&b, 8 * 60 + 45).total, 1);
        assert_eq!(b.fail_codes, vec![("00601".to_owned(), 1)]);
        let hourly = breakdown(&s, &TASK, d, TimeGrain::Min60);
        assert_eq!(hourly.buckets.len(), 24);
        assert_eq!(
            bucket_at(&hourly, 8 * 60),
            Bucket {
                start: 480,
                total: 3,
                succ: 1,
                fail: 1
            }
        );

        // An earlier QUEUED of "a" moves it to the 07:30 bucket; one of "c" from the day before
        // moves it to that day.
        s.apply(&call(TASK, "a", Queued, T0 - 25 * MIN), FAR_FUTURE);
        s.apply(&call(TASK, "c", Queued, T0 - 9 * 60 * MIN), FAR_FUTURE);
        let b = breakdown(&s, &TASK, d, TimeGrain::Min30);
        assert_eq!(bucket_at(&b, 7 * 60 + 30).succ, 1);
        assert_eq!(bucket_at(&b, 8 * 60).total, 0);
        assert_eq!(bucket_at(&b, 8 * 60 + 30).total, 1);
        let before = breakdown(&s, &TASK, d - 1, TimeGrain::Min60);
        assert_eq!(bucket_at(&before, 23 * 60).total, 1);
    }

    #[test]
    fn fail_codes_join_to_the_greatest_and_leave_when_the_call_is_answered() {
        let s = store();
        let d = day0(&s);
        s.apply(&failed(TASK, "a", "00302", T0), FAR_FUTURE);
        s.apply(&failed(TASK, "a", "00601", T0 + 1), FAR_FUTURE);
        s.apply(&failed(TASK, "a", "00302", T0 + 2), FAR_FUTURE);
        s.apply(&failed(TASK, "b", "00302", T0), FAR_FUTURE);
        s.apply(&call(TASK, "c", CallState::Failed, T0), FAR_FUTURE);
        // A cause on an event that is not FAILED is not kept.
        let mut queued = call(TASK, "d", CallState::Queued, T0);
        if let EventKind::Call { fail_code, .. } = &mut queued.kind {
            *fail_code = crate::events::FailCode::new("09999");
        }
        s.apply(&queued, FAR_FUTURE);
        let b = breakdown(&s, &TASK, d, TimeGrain::Min60);
        assert_eq!(
            b.fail_codes,
            vec![
                ("".to_owned(), 1),
                ("00302".to_owned(), 1),
                ("00601".to_owned(), 1)
            ]
        );
        // "a" answered after all: CONNECTED ranks above FAILED, its cause no longer counts.
        s.apply(&call(TASK, "a", CallState::Connected, T0 + 3), FAR_FUTURE);
        let b = breakdown(&s, &TASK, d, TimeGrain::Min60);
        assert_eq!(
            b.fail_codes,
            vec![("".to_owned(), 1), ("00302".to_owned(), 1)]
        );
        assert_eq!(
            breakdown(&s, &TaskKey { task_id: 1, ..TASK }, d, TimeGrain::Min60).fail_codes,
            vec![]
        );
    }

    /// The breakdown computed from the events alone, the plain way: per call the greatest state,
    /// the earliest ts and the greatest cause of its FAILED events; then count. Asia/Shanghai is
    /// UTC+8 without daylight saving time.
    fn naive(log: &[Event], task: &TaskKey, day: Day, grain: TimeGrain) -> Breakdown {
        let mut calls: HashMap<CallKey, (CallState, i64, String)> = HashMap::new();
        for e in log.iter().filter(|e| e.task == *task) {
            let EventKind::Call {
                call,
                state,
                fail_code,
            } = e.kind
            else {
                continue;
            };
            let code = match fail_code {
                Some(c) if state == CallState::Failed => c.as_str().to_owned(),
                _ => String::new(),
            };
            let c = calls.entry(call).or_insert((state, e.ts, code.clone()));
            c.0 = c.0.max(state);
            c.1 = c.1.min(e.ts);
            c.2 = c.2.clone().max(code);
        }
        let width = i64::from(grain.minutes());
        let mut buckets: Vec<Bucket> = (0..1440 / width)
            .map(|i| Bucket {
                start: (i * width) as u16,
                ..Bucket::default()
            })
            .collect();
        let mut codes: BTreeMap<String, u64> = BTreeMap::new();
        for (state, first, code) in calls.values() {
            let local = first + 8 * HOUR;
            if local.div_euclid(24 * HOUR) != i64::from(day) {
                continue;
            }
            let b = &mut buckets[(local.rem_euclid(24 * HOUR) / MIN / width) as usize];
            b.total += 1;
            match state {
                CallState::Connected | CallState::Finished => b.succ += 1,
                CallState::Failed => {
                    b.fail += 1;
                    *codes.entry(code.clone()).or_default() += 1;
                }
                _ => {}
            }
        }
        let mut fail_codes: Vec<(String, u64)> = codes.into_iter().collect();
        fail_codes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Breakdown {
            buckets,
            fail_codes,
            closed: false,
        }
    }

    proptest! {
        #[test]
        fn any_order_and_duplicates_give_the_naive_breakdown(
            log in arb_log(),
            seed in any::<u64>(),
            dup_mask in any::<u64>(),
            maintain_every in 0usize..7,
        ) {
            let shuffled = shuffled_with_duplicates(&log, seed, dup_mask);
            let folded = fold(&log, 0);
            let expected = all_breakdowns(&folded);
            prop_assert_eq!(all_breakdowns(&fold(&shuffled, maintain_every)), expected.clone());
            for (task, day, b) in &expected {
                let grain = match b.buckets.len() {
                    96 => TimeGrain::Min15,
                    48 => TimeGrain::Min30,
                    _ => TimeGrain::Min60,
                };
                prop_assert_eq!(b, &naive(&log, task, *day, grain));
                // The buckets add up to the day's served numbers.
                let st = folded.stats(task, *day);
                let sum = |f: fn(&Bucket) -> u64| b.buckets.iter().map(f).sum::<u64>();
                prop_assert_eq!(
                    (sum(|x| x.total), sum(|x| x.succ), sum(|x| x.fail)),
                    (st.total, st.succ, st.fail)
                );
                prop_assert_eq!(b.fail_codes.iter().map(|c| c.1).sum::<u64>(), st.fail);
            }
        }
    }
}

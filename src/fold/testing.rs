//! Event builders and generators shared by the domain-core tests (fold, snapshot).

use proptest::prelude::*;

use super::{breakdown, Breakdown, Calendar, Day, FoldPolicy, Store, TaskStats, TimeGrain};
use crate::events::ids::TaskKey;
use crate::events::{CallKey, CallState, Event, EventKind, FailCode};

/// 2024-11-24T08:00:00+08:00: a morning in Shanghai.
pub const T0: i64 = 1_732_406_400_000;
pub const HOUR: i64 = 3_600_000;
/// A wall clock far ahead, so no test event counts as "from the future".
pub const FAR_FUTURE: i64 = i64::MAX / 2;
/// The numbers of the vendor's example: planned 8, four calls ended, two answered, two failed.
pub const VENDOR_EXAMPLE: TaskStats = TaskStats {
    total: 4,
    succ: 2,
    fail: 2,
    comp: 4,
    wait: 0,
    exec: 0,
    planned: 8,
};

/// The task of the vendor's example.
pub const TASK: TaskKey = TaskKey {
    cc_id: 89,
    vdn: 92,
    task_id: 1_122_104_910,
};

/// The policy of the domain tests: two days kept, calls stale after 20 hours (so generated logs
/// spanning two days exercise expiry), bounds far above any test's volume.
pub fn policy() -> FoldPolicy {
    FoldPolicy {
        retention_days: 2,
        stale_after_ms: 20 * HOUR,
        max_future_ms: 15 * 60_000,
        max_tasks: 50_000,
        max_calls_per_task: 1_000_000,
        history_days: 0,
    }
}

/// A store in Asia/Shanghai with [`policy`].
pub fn store() -> Store {
    Store::new(Calendar::named("Asia/Shanghai").expect("zone"), policy())
}

pub fn call(task: TaskKey, id: &str, state: CallState, ts: i64) -> Event {
    Event {
        task,
        ts,
        kind: EventKind::Call {
            call: CallKey::of(id),
            state,
            fail_code: None,
        },
    }
}

/// A FAILED event with a failure cause.
pub fn failed(task: TaskKey, id: &str, code: &str, ts: i64) -> Event {
    Event {
        task,
        ts,
        kind: EventKind::Call {
            call: CallKey::of(id),
            state: CallState::Failed,
            fail_code: FailCode::new(code),
        },
    }
}

pub fn plan(task: TaskKey, planned: u64, ts: i64) -> Event {
    Event {
        task,
        ts,
        kind: EventKind::Task { planned },
    }
}

pub fn day0(s: &Store) -> Day {
    s.calendar().day_of(T0)
}

/// A generated log: a few tasks, calls with random state sequences and times spread over two
/// local days (inside the retention window), plans, and duplicates.
pub fn arb_log() -> impl Strategy<Value = Vec<Event>> {
    let task = (0u128..3, 90u16..92).prop_map(|(task_id, vdn)| TaskKey {
        cc_id: 1,
        vdn,
        task_id,
    });
    let state = prop::sample::select(CallState::ALL.to_vec());
    // A cause on about half of the events; the fold keeps it for FAILED ones only.
    let code = prop::sample::select(vec!["", "", "", "00601", "00302", "0603"]);
    let call_event = (task.clone(), 0u8..12, state, 0i64..40 * HOUR, code).prop_map(
        |(task, id, state, dt, code)| {
            let mut e = call(task, &format!("c{id}"), state, T0 - 8 * HOUR + dt);
            if let EventKind::Call { fail_code, .. } = &mut e.kind {
                *fail_code = FailCode::new(code);
            }
            e
        },
    );
    let plan_event = (task, 0u64..20, 0i64..40 * HOUR)
        .prop_map(|(task, n, dt)| plan(task, n, T0 - 8 * HOUR + (dt / HOUR) * HOUR));
    prop::collection::vec(prop_oneof![4 => call_event, 1 => plan_event], 0..80)
}

pub fn fold(events: &[Event], maintain_every: usize) -> Store {
    let s = store();
    for (i, e) in events.iter().enumerate() {
        s.apply(e, FAR_FUTURE);
        if maintain_every > 0 && i % maintain_every == 0 {
            s.maintain();
        }
    }
    s.maintain();
    s
}

pub fn all_stats(s: &Store) -> Vec<(TaskKey, Day, TaskStats)> {
    let d = day0(s);
    let mut keys = s.task_keys();
    keys.sort();
    keys.into_iter()
        .flat_map(|k| (d - 1..=d + 1).map(move |day| (k, day)))
        .map(|(k, day)| (k, day, s.stats(&k, day)))
        .collect()
}

/// The breakdown of every task for the days around [`T0`], at every grain.
pub fn all_breakdowns(s: &Store) -> Vec<(TaskKey, Day, Breakdown)> {
    let d = day0(s);
    let mut keys = s.task_keys();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        for day in d - 1..=d + 1 {
            for grain in TimeGrain::ALL {
                out.push((k, day, breakdown::breakdown(s, &k, day, grain)));
            }
        }
    }
    out
}

/// `log` with the events `dup_mask` selects repeated, shuffled deterministically from `seed`:
/// a permutation with duplicates, as a redelivering, reordering log would give.
pub fn shuffled_with_duplicates(log: &[Event], seed: u64, dup_mask: u64) -> Vec<Event> {
    let mut shuffled: Vec<Event> = log.to_vec();
    for (i, e) in log.iter().enumerate() {
        if dup_mask >> (i % 64) & 1 == 1 {
            shuffled.push(*e);
        }
    }
    let mut x = seed | 1;
    for i in (1..shuffled.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        shuffled.swap(i, (x % (i as u64 + 1)) as usize);
    }
    shuffled
}

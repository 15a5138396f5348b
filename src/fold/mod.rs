//! The domain core's fold: events in, per-task statistics out. No I/O.

pub mod breakdown;
pub mod calendar;
pub mod fail_codes;
pub mod failstats;
pub mod history;
pub mod stats;
pub mod store;
pub mod zones;

pub use breakdown::{Breakdown, Bucket, TimeGrain};
pub use calendar::{Calendar, Day};
pub use fail_codes::{FailCodeId, FailCodes};
pub use failstats::{fail_days, FailDay};
pub use history::{ClosedDay, HourCounts};
pub use stats::{Percent, TaskStats};
pub use store::{Applied, FoldPolicy, Maintenance, Plan, RestoredCall, Store};
pub use zones::{TenantScope, TimeZones};

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::ids::TaskKey;
    use crate::events::{CallState, Event};
    use proptest::prelude::*;

    use crate::fold::testing::*;

    /// Applies `e` with a wall clock far ahead (no event counts as from the future).
    fn applied(s: &Store, e: Event) -> Applied {
        s.apply(&e, FAR_FUTURE)
    }

    #[test]
    fn the_vendor_example() {
        use CallState::*;
        let s = store();
        let events = [
            plan(TASK, 8, T0),
            call(TASK, "a", Queued, T0 + 1),
            call(TASK, "a", Dialing, T0 + 2),
            call(TASK, "a", Connected, T0 + 3),
            call(TASK, "a", Finished, T0 + 4),
            call(TASK, "b", Queued, T0 + 1),
            call(TASK, "b", Connected, T0 + 5),
            call(TASK, "b", Finished, T0 + 9),
            call(TASK, "c", Dialing, T0 + 1),
            call(TASK, "c", Failed, T0 + 6),
            call(TASK, "d", Failed, T0 + 7),
        ];
        for e in &events {
            s.apply(e, FAR_FUTURE);
        }
        let st = s.stats(&TASK, day0(&s));
        assert_eq!(st, VENDOR_EXAMPLE);
        assert_eq!(st.succ_rate().to_string(), "50%");
        assert_eq!(st.comp_rate().to_string(), "50%");
    }

    #[test]
    fn states_only_move_up_and_duplicates_change_nothing() {
        use CallState::*;
        let s = store();
        assert_eq!(
            applied(&s, call(TASK, "x", Connected, T0)),
            Applied::Changed
        );
        assert_eq!(
            applied(&s, call(TASK, "x", Connected, T0)),
            Applied::Unchanged
        );
        assert_eq!(applied(&s, call(TASK, "x", Failed, T0)), Applied::Unchanged);
        assert_eq!(applied(&s, call(TASK, "x", Queued, T0)), Applied::Unchanged);
        let st = s.stats(&TASK, day0(&s));
        assert_eq!(
            (st.total, st.succ, st.fail, st.exec, st.wait),
            (1, 1, 0, 1, 0)
        );
        // Answered and failed: counts as answered, whatever the arrival order.
        s.apply(&call(TASK, "y", Failed, T0), FAR_FUTURE);
        s.apply(&call(TASK, "y", Connected, T0), FAR_FUTURE);
        let st = s.stats(&TASK, day0(&s));
        assert_eq!((st.total, st.succ, st.fail, st.comp), (2, 2, 0, 0));
    }

    #[test]
    fn an_earlier_event_moves_the_call_to_its_day() {
        use CallState::*;
        let s = store();
        let d = day0(&s);
        s.apply(&call(TASK, "x", Finished, T0 + 24 * HOUR), FAR_FUTURE);
        assert_eq!(s.stats(&TASK, d + 1).total, 1);
        s.apply(&call(TASK, "x", Queued, T0), FAR_FUTURE);
        assert_eq!(s.stats(&TASK, d + 1).total, 0);
        let st = s.stats(&TASK, d);
        assert_eq!((st.total, st.succ, st.comp), (1, 1, 1));
    }

    #[test]
    fn plan_is_the_latest_of_the_day_and_ties_take_the_greater() {
        let s = store();
        let d = day0(&s);
        s.apply(&plan(TASK, 10, T0 + 5), FAR_FUTURE);
        s.apply(&plan(TASK, 30, T0 + 1), FAR_FUTURE);
        assert_eq!(s.stats(&TASK, d).planned, 10);
        s.apply(&plan(TASK, 7, T0 + 5), FAR_FUTURE);
        assert_eq!(s.stats(&TASK, d).planned, 10);
        s.apply(&plan(TASK, 12, T0 + 5), FAR_FUTURE);
        assert_eq!(s.stats(&TASK, d).planned, 12);
        s.apply(&plan(TASK, 3, T0 + 24 * HOUR), FAR_FUTURE);
        assert_eq!(
            s.stats(&TASK, d).planned,
            12,
            "another day's plan is its own"
        );
        assert_eq!(s.stats(&TASK, d + 1).planned, 3);
    }

    #[test]
    fn stale_calls_leave_wait_and_exec_but_keep_day_counts() {
        use CallState::*;
        let s = store();
        let d = day0(&s);
        s.apply(&call(TASK, "q", Queued, T0), FAR_FUTURE);
        s.apply(&call(TASK, "c", Connected, T0), FAR_FUTURE);
        let other = TaskKey { task_id: 7, ..TASK };
        // 24 h later in event time, on another task: the watermark moves.
        s.apply(&call(other, "z", Queued, T0 + 24 * HOUR + 1), FAR_FUTURE);
        let m = s.maintain();
        assert_eq!(m.calls_expired, 2);
        let st = s.stats(&TASK, d);
        assert_eq!((st.total, st.wait, st.exec, st.succ), (2, 0, 0, 1));
        assert_eq!(s.calls_expired_total(), 2);
        // A fresh event brings the call back.
        s.apply(&call(TASK, "c", Finished, T0 + 24 * HOUR), FAR_FUTURE);
        s.apply(&call(TASK, "q", Dialing, T0 + 24 * HOUR), FAR_FUTURE);
        let st = s.stats(&TASK, d);
        assert_eq!(
            (st.total, st.wait, st.exec, st.succ, st.comp),
            (2, 0, 1, 1, 1)
        );
    }

    #[test]
    fn retention_drops_old_days_and_ignores_events_older_than_it() {
        use CallState::*;
        let s = store();
        let d = day0(&s);
        s.apply(&call(TASK, "old", Queued, T0), FAR_FUTURE);
        s.apply(&plan(TASK, 5, T0), FAR_FUTURE);
        s.apply(&call(TASK, "new", Queued, T0 + 48 * HOUR), FAR_FUTURE);
        let m = s.maintain();
        assert_eq!(m.calls_dropped, 1);
        assert_eq!(s.calls_tracked(), 1);
        assert_eq!(
            s.stats(&TASK, d),
            TaskStats {
                wait: 1,
                ..TaskStats::default()
            }
        );
        assert_eq!(
            applied(&s, call(TASK, "older", Failed, T0)),
            Applied::TooOld
        );
        assert_eq!(s.apply(&plan(TASK, 9, T0), FAR_FUTURE), Applied::TooOld);
        assert_eq!(s.stats(&TASK, d + 2).total, 1);
    }

    /// Found by the fuzzer: a call whose day left the window, then an event for it and its
    /// redelivery. The redelivery must change nothing.
    #[test]
    fn redelivery_for_a_call_out_of_the_window_changes_nothing() {
        use CallState::*;
        let s = store();
        let d = day0(&s);
        s.apply(&call(TASK, "c", Queued, T0 - 30 * HOUR), FAR_FUTURE);
        s.apply(&call(TASK, "x", Queued, T0 + 24 * HOUR), FAR_FUTURE);
        let late = call(TASK, "c", Finished, T0 + 24 * HOUR);
        let first = s.apply(&late, FAR_FUTURE);
        let before = all_stats(&s);
        let again = s.apply(&late, FAR_FUTURE);
        assert_eq!((first, again), (Applied::TooOld, Applied::TooOld));
        assert_eq!(all_stats(&s), before);
        s.maintain();
        assert_eq!(s.calls_tracked(), 1, "the old call is dropped");
        assert_eq!(s.stats(&TASK, d + 1).total, 1);
    }

    #[test]
    fn events_from_the_future_are_refused() {
        let s = store();
        let e = call(TASK, "x", CallState::Queued, T0 + HOUR);
        assert_eq!(s.apply(&e, T0), Applied::FromTheFuture);
        assert_eq!(
            s.watermark(),
            0,
            "a refused event does not move the watermark"
        );
        assert_eq!(s.apply(&e, T0 + HOUR - 1), Applied::Changed);
    }

    #[test]
    fn limits_refuse_new_tasks_and_calls_but_never_evict() {
        use CallState::*;
        let s = Store::new(
            Calendar::named("Asia/Shanghai").expect("zone"),
            FoldPolicy {
                max_tasks: 2,
                max_calls_per_task: 2,
                ..testing::policy()
            },
        );
        let other = TaskKey { vdn: 93, ..TASK };
        let third = TaskKey { vdn: 94, ..TASK };
        assert_eq!(applied(&s, call(TASK, "a", Queued, T0)), Applied::Changed);
        assert_eq!(s.apply(&plan(other, 5, T0), FAR_FUTURE), Applied::Changed);
        // A third task, whether by a call or a plan, is refused; the two stay as they were.
        assert_eq!(
            applied(&s, call(third, "a", Queued, T0)),
            Applied::TaskLimit
        );
        assert_eq!(s.apply(&plan(third, 5, T0), FAR_FUTURE), Applied::TaskLimit);
        assert_eq!(s.tasks_tracked(), 2);
        assert_eq!(s.stats(&third, day0(&s)), TaskStats::default());
        // Calls: the third new call of a task is refused, its existing calls go on folding.
        assert_eq!(applied(&s, call(TASK, "b", Queued, T0)), Applied::Changed);
        assert_eq!(applied(&s, call(TASK, "c", Queued, T0)), Applied::CallLimit);
        assert_eq!(
            applied(&s, call(TASK, "a", Finished, T0 + 1)),
            Applied::Changed
        );
        let st = s.stats(&TASK, day0(&s));
        assert_eq!((st.total, st.comp, st.wait), (2, 1, 1));
        assert_eq!(
            Applied::TaskLimit.rejection().map(|r| r.label()),
            Some("task_limit")
        );
        assert_eq!(
            Applied::CallLimit.rejection().map(|r| r.label()),
            Some("call_limit")
        );
        // Once old tasks leave the retention window, new tasks fit again.
        let later = T0 + 3 * 24 * HOUR;
        // Refused (the task is full), but its time still moves the store's clock.
        s.apply(&call(TASK, "z", Queued, later), FAR_FUTURE);
        s.maintain();
        assert_eq!(s.tasks_tracked(), 0, "both tasks' days left the window");
        assert_eq!(
            applied(&s, call(third, "a", Queued, later)),
            Applied::Changed
        );
        assert_eq!(s.tasks_tracked(), 1);
    }

    #[test]
    fn tasks_are_independent_and_unknown_tasks_are_zero() {
        let s = store();
        s.apply(&call(TASK, "x", CallState::Failed, T0), FAR_FUTURE);
        let other = TaskKey { vdn: 93, ..TASK };
        assert_eq!(s.stats(&other, day0(&s)), TaskStats::default());
        assert_eq!(s.stats(&TASK, day0(&s)).fail, 1);
    }

    /// The per-call memory claim of BENCHMARKS.md: the failure cause lives in the record's
    /// padding, so a call still takes 24 bytes.
    #[test]
    fn a_call_record_stays_24_bytes() {
        assert_eq!(std::mem::size_of::<store::Call>(), 24);
    }

    // ---- properties ----------------------------------------------------------------------------

    proptest! {
        #[test]
        fn any_order_and_any_duplicates_give_the_same_statistics(
            log in arb_log(),
            seed in any::<u64>(),
            dup_mask in any::<u64>(),
            maintain_every in 0usize..7,
        ) {
            let expected = all_stats(&fold(&log, 0));
            // A permutation with duplicates: shuffle deterministically from the seed and repeat
            // the events the mask selects.
            let shuffled = shuffled_with_duplicates(&log, seed, dup_mask);
            prop_assert_eq!(all_stats(&fold(&shuffled, maintain_every)), expected);
        }

        #[test]
        fn the_invariants_of_events_md_hold(log in arb_log()) {
            let s = fold(&log, 3);
            for key in s.task_keys() {
                let task = s.task(&key).expect("listed task exists");
                let mut waiting = 0;
                let mut executing = 0;
                for c in task.calls.values() {
                    if c.expired { continue; }
                    match c.state {
                        CallState::Queued => waiting += 1,
                        CallState::Dialing | CallState::Connected => executing += 1,
                        _ => {}
                    }
                }
                prop_assert_eq!(task.waiting, waiting);
                prop_assert_eq!(task.executing, executing);
                for d in &task.days {
                    let st = s.stats(&key, d.day);
                    let calls_of_day: Vec<_> = task.calls.values().filter(|c| c.day == d.day).collect();
                    let not_ended = calls_of_day.iter()
                        .filter(|c| matches!(c.state, CallState::Queued | CallState::Dialing))
                        .count() as u64;
                    let finished = calls_of_day.iter().filter(|c| c.state == CallState::Finished).count() as u64;
                    prop_assert_eq!(st.total, calls_of_day.len() as u64);
                    // totalCount = succCount + failCount + calls of that day still waiting or
                    // dialing (a CONNECTED call is already in succCount).
                    prop_assert_eq!(st.total, st.succ + st.fail + not_ended);
                    prop_assert_eq!(st.comp, st.fail + finished);
                }
            }
        }
    }
}

//! Closed days: when a day leaves the per-call retention window its calls are dropped, but its
//! counters stay as one compact record (the day's counts by state, its plan, its calls by local
//! hour, its failed calls by cause) for `history_days`.
//!
//! A day closes by *event* time (the watermark), like everything the fold keeps: once the
//! watermark has moved past a day's window no event can change that day any more (it is
//! `TooOld`), so the record a replica closes is the same whenever its maintenance runs, and the
//! same as the one a replica replaying the log later closes.

use super::calendar::{Calendar, Day};
use super::fail_codes::FailCodeId;
use super::store::{Call, DayCounts, Plan};
use crate::events::CallState;

/// The calls of one local hour of a closed day, by the local time of their first event (as the
/// live breakdown buckets them: on the day the clocks go back, both 01:00 hours share a bucket).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourCounts {
    pub total: u32,
    /// CONNECTED or FINISHED.
    pub succ: u32,
    pub fail: u32,
}

/// What is kept of a day once its calls are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedDay {
    pub day: Day,
    /// Calls of the day by final state, indexed by `CallState::index`.
    pub by_state: [u32; 5],
    pub plan: Option<Plan>,
    /// Local hours 0..24.
    pub hours: [HourCounts; 24],
    /// Failed calls by cause, ascending by id; the id of "no cause" counts those without one.
    pub causes: Vec<(FailCodeId, u32)>,
}

impl ClosedDay {
    /// An empty record of `day` with the counters of its [`DayCounts`].
    pub(crate) fn open(counts: &DayCounts) -> Self {
        ClosedDay {
            day: counts.day,
            by_state: counts.by_state,
            plan: counts.plan,
            hours: [HourCounts::default(); 24],
            causes: Vec::new(),
        }
    }

    /// Adds one call of the day to the hours and causes (the counts by state already hold it).
    pub(crate) fn add_call(&mut self, call: &Call, calendar: &Calendar) {
        let hour = usize::from(calendar.minute_of_day(call.first_ts) / 60);
        let Some(h) = self.hours.get_mut(hour) else {
            return;
        };
        h.total += 1;
        match call.state {
            CallState::Connected | CallState::Finished => h.succ += 1,
            CallState::Failed => {
                h.fail += 1;
                self.add_cause(call.fail_code, 1);
            }
            CallState::Queued | CallState::Dialing => {}
        }
    }

    /// Counts `n` more failed calls of cause `id`, keeping the causes ascending by id.
    pub fn add_cause(&mut self, id: FailCodeId, n: u32) {
        match self.causes.binary_search_by_key(&id, |c| c.0) {
            Ok(i) => self.causes[i].1 += n,
            Err(i) => self.causes.insert(i, (id, n)),
        }
    }

    /// Calls of the day that failed.
    pub fn failed(&self) -> u32 {
        self.by_state[CallState::Failed.index()]
    }
}

/// Heap and inline bytes one closed day takes in a task's history: the record itself plus its
/// causes (the history is a `Vec`, so the record is inline in its buffer).
pub fn bytes_of(day: &ClosedDay) -> usize {
    std::mem::size_of::<ClosedDay>()
        + day.causes.capacity() * std::mem::size_of::<(FailCodeId, u32)>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::testing::*;
    use crate::fold::{breakdown, fail_days, FoldPolicy, Store, TimeGrain};

    fn history_store(history_days: u16) -> Store {
        Store::new(
            Calendar::named("Asia/Shanghai").expect("zone"),
            FoldPolicy {
                history_days,
                ..policy()
            },
        )
    }

    fn closed_days(s: &Store) -> Vec<Day> {
        let task = s.task(&TASK).expect("task");
        task.history.iter().map(|h| h.day).collect()
    }

    #[test]
    fn a_closed_day_answers_as_it_did_and_leaves_after_history_days() {
        let s = history_store(5);
        let d = day0(&s);
        s.apply(&plan(TASK, 9, T0), FAR_FUTURE);
        s.apply(
            &call(TASK, "a", CallState::Finished, T0 + 20 * 60_000),
            FAR_FUTURE,
        );
        s.apply(&failed(TASK, "b", "00601", T0 + 3 * HOUR), FAR_FUTURE);
        s.apply(&failed(TASK, "c", "00603", T0 + 3 * HOUR), FAR_FUTURE);
        s.apply(
            &call(TASK, "d", CallState::Failed, T0 + 4 * HOUR),
            FAR_FUTURE,
        );
        let stats = s.stats(&TASK, d);
        let shape = breakdown::breakdown(&s, &TASK, d, TimeGrain::Min60);
        let fails = fail_days(&s, &TASK, d, d);
        // Two days later (event time) the day leaves the retention window and closes.
        s.apply(
            &call(TASK, "z", CallState::Queued, T0 + 48 * HOUR),
            FAR_FUTURE,
        );
        s.maintain();
        let task = s.task(&TASK).expect("task");
        assert_eq!(task.history.len(), 1);
        assert!(task.day(d).is_none() && task.calls.len() == 1);
        // Its counts stay; waiting/executing are the task's live ones (now "z").
        assert_eq!(
            s.stats(&TASK, d),
            crate::fold::TaskStats { wait: 1, ..stats }
        );
        let closed = breakdown::breakdown(&s, &TASK, d, TimeGrain::Min15);
        assert!(closed.closed);
        assert_eq!(
            (closed.buckets, closed.fail_codes),
            (shape.buckets, shape.fail_codes)
        );
        assert_eq!(fail_days(&s, &TASK, d, d), fails);
        assert_eq!(
            fails[0].causes,
            [
                ("".to_owned(), 1),
                ("00601".to_owned(), 1),
                ("00603".to_owned(), 1)
            ]
        );
        // Five days kept, today included: on day0 + 5 day0 is gone.
        s.apply(
            &call(TASK, "z", CallState::Finished, T0 + 4 * 24 * HOUR),
            FAR_FUTURE,
        );
        s.maintain();
        let days = closed_days(&s);
        assert_eq!(
            days,
            [d, d + 2],
            "day0 and the day of \"z\" (no calls on day0 + 1)"
        );
        s.apply(&plan(TASK, 1, T0 + 5 * 24 * HOUR), FAR_FUTURE);
        s.maintain();
        let days = closed_days(&s);
        assert_eq!(days, [d + 2]);
    }

    /// A closed day as replicas compare it: causes by text (ids are per store).
    type Comparable = (Day, [u32; 5], [HourCounts; 24], Vec<(String, u32)>);

    fn history_of(s: &Store) -> Vec<Comparable> {
        let Some(task) = s.task(&TASK) else {
            return Vec::new();
        };
        let codes = s.fail_codes();
        task.history
            .iter()
            .map(|d| {
                let mut causes: Vec<(String, u32)> = d
                    .causes
                    .iter()
                    .map(|&(id, n)| (codes.text(id).unwrap_or_default(), n))
                    .collect();
                causes.sort();
                (d.day, d.by_state, d.hours, causes)
            })
            .collect()
    }

    proptest::proptest! {
        /// Days close by event time: one log, maintenance after every event, every few events or
        /// only at the end, closes the same days. Calls last under 3 hours (a call spanning
        /// more than the retention window is the fold's one documented limit).
        #[test]
        fn closed_days_do_not_depend_on_when_maintenance_runs(
            calls in proptest::collection::vec(
                (0u8..30, 0i64..6 * 24, 0usize..5, 0usize..4, 0i64..3 * 60),
                1..60,
            ),
            maintain_every in 1usize..9,
        ) {
            let states = CallState::ALL;
            let causes = ["", "00601", "00603", "00302"];
            let mut log = Vec::new();
            for (id, hour, state, cause, minutes) in calls {
                let ts = T0 + hour * HOUR;
                log.push(call(TASK, &format!("c{id}-{hour}"), CallState::Queued, ts));
                let mut last = failed(TASK, &format!("c{id}-{hour}"), causes[cause], ts + minutes * 60_000);
                if states[state] != CallState::Failed {
                    last = call(TASK, &format!("c{id}-{hour}"), states[state], ts + minutes * 60_000);
                }
                log.push(last);
            }
            let run = |every: usize| {
                let s = history_store(35);
                for (i, e) in log.iter().enumerate() {
                    s.apply(e, FAR_FUTURE);
                    if every > 0 && i % every == 0 {
                        s.maintain();
                    }
                }
                s.maintain();
                history_of(&s)
            };
            let at_the_end = run(0);
            proptest::prop_assert_eq!(run(1), at_the_end.clone());
            proptest::prop_assert_eq!(run(maintain_every), at_the_end);
        }
    }
}

//! Failed calls by cause per day over a range of days: the vendor's "outbound call exception
//! statistics" (api.md, "Failure statistics"). Days in the retention window are counted from
//! their calls, closed days from their records, so the answer is the same before and after a
//! day closes.

use std::collections::BTreeMap;

use super::calendar::Day;
use super::fail_codes::FailCodeId;
use super::store::Store;
use crate::events::ids::TaskKey;
use crate::events::CallState;

/// One day with failed calls: its causes by text (`""` for failed calls without a cause),
/// ascending by text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailDay {
    pub day: Day,
    pub causes: Vec<(String, u64)>,
}

/// The days of `first..=last` on which `task` had failed calls, ascending.
pub fn fail_days(store: &Store, task: &TaskKey, first: Day, last: Day) -> Vec<FailDay> {
    let mut by_day: BTreeMap<Day, BTreeMap<FailCodeId, u64>> = BTreeMap::new();
    store.with_task(task, |state| {
        let Some(state) = state else { return };
        let in_range = |d: Day| (first..=last).contains(&d);
        for closed in state.history.iter().filter(|d| in_range(d.day)) {
            let causes = by_day.entry(closed.day).or_default();
            for &(id, n) in &closed.causes {
                *causes.entry(id).or_default() += u64::from(n);
            }
        }
        let live = state
            .calls
            .values()
            .filter(|c| c.state == CallState::Failed);
        for call in live.filter(|c| in_range(c.day) && state.closed_day(c.day).is_none()) {
            *by_day
                .entry(call.day)
                .or_default()
                .entry(call.fail_code)
                .or_default() += 1;
        }
    });
    // Texts are looked up after the shard lock is released.
    let codes = store.fail_codes();
    by_day
        .into_iter()
        .filter(|(_, causes)| !causes.is_empty())
        .map(|(day, causes)| {
            let mut causes: Vec<(String, u64)> = causes
                .into_iter()
                .map(|(id, n)| (codes.text(id).unwrap_or_default(), n))
                .collect();
            causes.sort();
            FailDay { day, causes }
        })
        .collect()
}

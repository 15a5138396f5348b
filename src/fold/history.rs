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
                match self.causes.binary_search_by_key(&call.fail_code, |c| c.0) {
                    Ok(i) => self.causes[i].1 += 1,
                    Err(i) => self.causes.insert(i, (call.fail_code, 1)),
                }
            }
            CallState::Queued | CallState::Dialing => {}
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

//! Reads of the store for the wallboard routes: several tasks in one pass, change numbers for
//! streams, one task's state for a breakdown. Kept apart from the fold itself.

use super::{Store, TaskState};
use crate::events::ids::TaskKey;
use crate::events::CallState;
use crate::fold::{Day, FailCodes, TaskStats};

impl Store {
    /// The numbers of several tasks for one day, in the order asked, read in one pass.
    pub fn stats_of(&self, tasks: &[TaskKey], day: Day) -> Vec<TaskStats> {
        tasks.iter().map(|t| self.stats(t, day)).collect()
    }

    /// The change number of each task (0 for a task not in memory), in the order asked, read in
    /// one pass: a stream compares them with the last it saw.
    pub fn versions_of(&self, tasks: &[TaskKey], out: &mut Vec<u64>) {
        out.clear();
        out.extend(
            tasks
                .iter()
                .map(|t| self.tasks.get(t).map_or(0, |s| s.version)),
        );
    }

    /// Runs `read` on one task's state under its shard's read lock (`None`: not in memory).
    pub fn with_task<R>(&self, task: &TaskKey, read: impl FnOnce(Option<&TaskState>) -> R) -> R {
        match self.tasks.get(task) {
            Some(t) => read(Some(&t)),
            None => read(None),
        }
    }

    /// The failure causes seen, interned (calls keep their ids).
    pub fn fail_codes(&self) -> &FailCodes {
        &self.fail_codes
    }
}

impl TaskState {
    /// The served numbers for `day`.
    pub fn stats(&self, day: Day) -> TaskStats {
        use CallState::*;
        let count = |by_state: &[u32; 5], states: &[CallState]| -> u64 {
            states.iter().map(|s| u64::from(by_state[s.index()])).sum()
        };
        // A day in the window, else a closed day of the history.
        let counts = match self.day(day) {
            Some(d) => Some((&d.by_state, d.plan)),
            None => self.closed_day(day).map(|d| (&d.by_state, d.plan)),
        };
        let (total, succ, fail, comp, planned) = match counts {
            Some((by_state, plan)) => (
                count(by_state, &CallState::ALL),
                count(by_state, &[Connected, Finished]),
                count(by_state, &[Failed]),
                count(by_state, &[Failed, Finished]),
                plan.map_or(0, |p| p.planned),
            ),
            None => (0, 0, 0, 0, 0),
        };
        TaskStats {
            total,
            succ,
            fail,
            comp,
            wait: u64::from(self.waiting),
            exec: u64::from(self.executing),
            planned,
        }
    }
}

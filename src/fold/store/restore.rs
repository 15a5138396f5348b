//! Putting a snapshot back into the store: only what cannot be derived is in a snapshot, and
//! everything else is derived here again.

use std::sync::atomic::Ordering;

use super::*;

impl Store {
    /// Puts back a task from a snapshot: its calls and its plans. Everything else (day counters,
    /// waiting/executing, the days themselves) is derived here from those, so a snapshot cannot
    /// hold counters that disagree with its calls.
    pub fn restore_task(
        &self,
        key: TaskKey,
        plans: impl IntoIterator<Item = Plan>,
        calls: impl IntoIterator<Item = (CallKey, RestoredCall)>,
    ) {
        let calendar = self.zones.of_task(&key);
        let mut task = TaskState::default();
        for plan in plans {
            let day = calendar.day_of(plan.ts);
            task.day_mut(day).plan = Some(plan);
        }
        let mut n = 0;
        for (k, c) in calls {
            let call = Call {
                first_ts: c.first_ts,
                last_ts: c.last_ts,
                day: calendar.day_of(c.first_ts),
                state: c.state,
                expired: c.expired,
                fail_code: c.fail_code,
            };
            if task.calls.insert(k, call).is_none() {
                task.add(&call);
                n += 1;
            }
        }
        self.calls_tracked.fetch_add(n, Ordering::Relaxed);
        if self.tasks.insert(key, task).is_none() {
            self.task_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Puts back a task's closed days from a snapshot, after its calls and plans (a task with
    /// only history is created here). Closed days are kept as they were closed, in the zone of
    /// that time: with no calls left they cannot be re-bucketed.
    pub fn restore_history(&self, key: TaskKey, history: Vec<ClosedDay>) {
        if history.is_empty() {
            return;
        }
        let mut task = self.tasks.entry(key).or_insert_with(|| {
            self.task_count.fetch_add(1, Ordering::Relaxed);
            TaskState::default()
        });
        task.keep_history(history, Day::MIN);
    }

    /// Restores the event-time clock and the expiry count saved with a snapshot.
    pub fn restore_clock(&self, watermark: i64, calls_expired_total: u64) {
        self.watermark.fetch_max(watermark, Ordering::AcqRel);
        self.calls_expired_total
            .fetch_add(calls_expired_total, Ordering::Relaxed);
    }
}

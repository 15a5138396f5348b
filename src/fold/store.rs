//! The fold: per-task state built from call events, shared between the one writer (the consumer)
//! and many readers (request handlers).
//!
//! Design notes
//! - A call's state only moves up (`CallState` order) and its day comes from the *earliest* `ts`
//!   seen, so applying an event is a join in a semilattice: order and duplicates do not matter.
//! - Counters are kept incrementally (per day and state, plus the task's live waiting/executing
//!   calls) so a query reads a handful of integers and never scans calls.
//! - Time that decides what is kept (retention, stale calls) is *event* time, the greatest `ts`
//!   seen (the watermark), so a replica replaying the log later folds to the same state as one
//!   that read it live. Only "which day is today" is wall-clock time, looked up per query.
//! - Stale calls are taken out of waiting/executing by [`Store::maintain`], which the consumer
//!   runs between batches; [`Store::apply`] also re-checks the one call it touches.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use dashmap::DashMap;

mod call_map;
mod reads;
mod restore;

use super::calendar::{Calendar, Day};
use super::fail_codes::{FailCodeId, FailCodes};
use super::history::ClosedDay;
use super::stats::TaskStats;
use super::zones::TimeZones;
use crate::events::ids::TaskKey;
use crate::events::{CallKey, CallState, Event, EventKind};

/// What the fold keeps and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldPolicy {
    /// Days of calls kept, today included (2: today and yesterday).
    pub retention_days: u16,
    /// A QUEUED/DIALING/CONNECTED call whose latest event is older than this (in event time)
    /// leaves waitCount/execCount.
    pub stale_after_ms: i64,
    /// Events stamped further than this ahead of the wall clock are refused: one bad producer
    /// clock would otherwise drag the watermark forward and expire every live call.
    pub max_future_ms: i64,
    /// Tasks kept at most: an event that would start one more is refused (`TaskLimit`), so a
    /// faulty producer inventing task ids cannot exhaust memory. Existing tasks are never evicted.
    pub max_tasks: usize,
    /// Calls kept per task at most: a new call beyond it is refused (`CallLimit`); the task's
    /// existing calls go on folding.
    pub max_calls_per_task: usize,
    /// Days answerable at all, today included: a day that leaves `retention_days` is kept as a
    /// [`ClosedDay`] until it is this old. At most `retention_days`: no history.
    pub history_days: u16,
}

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The state changed.
    Changed,
    /// Nothing to change: a duplicate, or a state not above the call's current one.
    Unchanged,
    /// The event's day is older than the retention window: ignored.
    TooOld,
    /// The event's `ts` is too far ahead of the wall clock: refused.
    FromTheFuture,
    /// The event would start a task beyond `FoldPolicy::max_tasks`: refused.
    TaskLimit,
    /// The event would start a call beyond `FoldPolicy::max_calls_per_task`: refused.
    CallLimit,
}

impl Applied {
    /// Why the event was not applied, for the events that were refused.
    pub fn rejection(self) -> Option<crate::events::Rejection> {
        use crate::events::Rejection;
        match self {
            Applied::Changed | Applied::Unchanged => None,
            Applied::TooOld => Some(Rejection::TooOld),
            Applied::FromTheFuture => Some(Rejection::TsInFuture),
            Applied::TaskLimit => Some(Rejection::TaskLimit),
            Applied::CallLimit => Some(Rejection::CallLimit),
        }
    }
}

/// One tracked call. Small and `Copy`: this is the per-call memory cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub first_ts: i64,
    pub last_ts: i64,
    /// Local day of `first_ts`, kept to avoid a time-zone lookup on every event of the call.
    pub day: Day,
    pub state: CallState,
    /// Taken out of waiting/executing because no event came for too long.
    pub expired: bool,
    /// The failure cause of its FAILED events (their join, see [`FailCodes::join`]). Fits in
    /// the struct's padding: no extra memory per call.
    pub fail_code: FailCodeId,
}

/// A call as a snapshot keeps it: what cannot be derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoredCall {
    pub first_ts: i64,
    pub last_ts: i64,
    pub state: CallState,
    pub expired: bool,
    /// Interned in the restoring store's [`Store::fail_codes`].
    pub fail_code: FailCodeId,
}

/// Whether a call counts in waitCount or execCount right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    Waiting,
    Executing,
}

impl Call {
    fn activity(&self) -> Option<Activity> {
        if self.expired {
            return None;
        }
        match self.state {
            CallState::Queued => Some(Activity::Waiting),
            CallState::Dialing | CallState::Connected => Some(Activity::Executing),
            CallState::Failed | CallState::Finished => None,
        }
    }
}

/// Counters of one task for one local day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounts {
    pub day: Day,
    /// Calls of this day by current state, indexed by `CallState::index`.
    pub by_state: [u32; 5],
    pub plan: Option<Plan>,
}

/// The plan of a day: the TASK event with the greatest `ts`, on equal `ts` the greater value.
/// Ordering the pair lexicographically is exactly that rule, so keeping the max folds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Plan {
    pub ts: i64,
    pub planned: u64,
}

impl DayCounts {
    fn new(day: Day) -> Self {
        DayCounts {
            day,
            ..DayCounts::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.plan.is_none() && self.by_state.iter().all(|&n| n == 0)
    }
}

pub use call_map::{CallKeyHasher, CallMap};

/// Everything known about one task.
#[derive(Debug, Clone)]
pub struct TaskState {
    pub calls: CallMap,
    /// Ascending by day; a handful at most (the retention window).
    pub days: Vec<DayCounts>,
    pub waiting: u32,
    pub executing: u32,
    /// Bumped (to the store's next change number) whenever anything served for the task may
    /// have changed: streams compare it instead of the numbers.
    pub version: u64,
    /// Closed days, ascending: older than the retention window, within `history_days`.
    pub history: Vec<ClosedDay>,
    /// A lower bound of `last_ts` over the calls counted in waiting/executing (`i64::MAX` when
    /// none), so a maintenance pass can skip tasks with nothing to expire without a scan.
    oldest_active: i64,
}

impl Default for TaskState {
    fn default() -> Self {
        TaskState {
            calls: CallMap::default(),
            days: Vec::new(),
            waiting: 0,
            executing: 0,
            version: 0,
            history: Vec::new(),
            oldest_active: i64::MAX,
        }
    }
}

impl TaskState {
    fn day_mut(&mut self, day: Day) -> &mut DayCounts {
        let i = match self.days.binary_search_by_key(&day, |d| d.day) {
            Ok(i) => i,
            Err(i) => {
                self.days.insert(i, DayCounts::new(day));
                i
            }
        };
        &mut self.days[i]
    }

    pub fn day(&self, day: Day) -> Option<&DayCounts> {
        self.days
            .binary_search_by_key(&day, |d| d.day)
            .ok()
            .map(|i| &self.days[i])
    }

    fn add(&mut self, call: &Call) {
        let bucket = self.day_mut(call.day);
        bucket.by_state[call.state.index()] += 1;
        match call.activity() {
            Some(Activity::Waiting) => self.waiting += 1,
            Some(Activity::Executing) => self.executing += 1,
            None => return,
        }
        self.oldest_active = self.oldest_active.min(call.last_ts);
    }

    fn remove(&mut self, call: &Call) {
        if let Ok(i) = self.days.binary_search_by_key(&call.day, |d| d.day) {
            let n = &mut self.days[i].by_state[call.state.index()];
            *n = n.saturating_sub(1);
        }
        self.remove_activity(call);
    }

    fn remove_activity(&mut self, call: &Call) {
        match call.activity() {
            Some(Activity::Waiting) => self.waiting = self.waiting.saturating_sub(1),
            Some(Activity::Executing) => self.executing = self.executing.saturating_sub(1),
            None => {}
        }
    }

    /// Closes what fell out of the retention window into history, drops history past its
    /// window and expires stale calls. Returns the number of calls dropped and expired.
    fn sweep(&mut self, w: &Sweep) -> (u64, u64) {
        let (watermark, min_day, stale_after_ms) = (w.watermark, w.min_day, w.stale_after_ms);
        let (mut dropped, mut expired) = (0, 0);
        let mut oldest_active = i64::MAX;
        let mut out_of_window = Vec::new();
        for (key, call) in self.calls.iter_mut() {
            if call.day < min_day {
                out_of_window.push(*key);
                continue;
            }
            if call.activity().is_some() {
                if watermark.saturating_sub(call.last_ts) > stale_after_ms {
                    expired += 1;
                    match call.activity() {
                        Some(Activity::Waiting) => self.waiting = self.waiting.saturating_sub(1),
                        Some(Activity::Executing) => {
                            self.executing = self.executing.saturating_sub(1)
                        }
                        None => {}
                    }
                    call.expired = true;
                } else {
                    oldest_active = oldest_active.min(call.last_ts);
                }
            }
        }
        let mut closing: Vec<ClosedDay> = self
            .days
            .iter()
            .filter(|d| d.day < min_day && d.day >= w.history_min_day)
            .map(ClosedDay::open)
            .collect();
        for key in out_of_window {
            if let Some(call) = self.calls.remove(&key) {
                self.remove_activity(&call);
                dropped += 1;
                if let Ok(i) = closing.binary_search_by_key(&call.day, |d| d.day) {
                    closing[i].add_call(&call, w.calendar);
                }
            }
        }
        self.days.retain(|d| d.day >= min_day);
        self.keep_history(closing, w.history_min_day);
        self.oldest_active = oldest_active;
        (dropped, expired)
    }

    /// Adds newly closed days (a day already closed keeps its first record) and drops the days
    /// older than the history window.
    fn keep_history(&mut self, closing: Vec<ClosedDay>, history_min_day: Day) {
        for closed in closing {
            if let Err(i) = self.history.binary_search_by_key(&closed.day, |d| d.day) {
                self.history.insert(i, closed);
            }
        }
        self.history.retain(|d| d.day >= history_min_day);
    }

    /// A closed day of the history.
    pub fn closed_day(&self, day: Day) -> Option<&ClosedDay> {
        self.history
            .binary_search_by_key(&day, |d| d.day)
            .ok()
            .map(|i| &self.history[i])
    }

    fn needs_sweep(&self, w: &Sweep) -> bool {
        self.days.first().is_some_and(|d| d.day < w.min_day)
            || self
                .history
                .first()
                .is_some_and(|d| d.day < w.history_min_day)
            || (self.oldest_active != i64::MAX
                && w.watermark.saturating_sub(self.oldest_active) > w.stale_after_ms)
    }

    fn is_empty(&self) -> bool {
        self.calls.is_empty()
            && self.days.iter().all(DayCounts::is_empty)
            && self.history.is_empty()
    }

    /// Applies one call event whose day is inside the retention window (`Store::apply` checks).
    fn apply_call(&mut self, fact: CallFact, ctx: &ApplyContext) -> (Applied, i64) {
        let CallFact {
            key,
            state,
            fail_code,
            ts,
            day,
        } = fact;
        use std::collections::hash_map::Entry;
        let stale = |last_ts: i64| ctx.watermark.saturating_sub(last_ts) > ctx.stale_after_ms;
        let full = self.calls.len() >= ctx.max_calls;
        match self.calls.entry(key) {
            Entry::Vacant(_) if full => (Applied::CallLimit, 0),
            Entry::Vacant(slot) => {
                let call = Call {
                    first_ts: ts,
                    last_ts: ts,
                    day,
                    state,
                    expired: stale(ts),
                    fail_code,
                };
                slot.insert(call);
                self.add(&call);
                (Applied::Changed, 1)
            }
            Entry::Occupied(mut slot) => {
                let old = *slot.get();
                if old.day < ctx.min_day {
                    // The call fell out of the window and awaits maintenance, which drops it.
                    // Folding into it now would only be undone; leaving it untouched keeps a
                    // redelivered event a no-op.
                    return (Applied::TooOld, 0);
                }
                let mut new = old;
                new.state = old.state.max(state);
                if ts < old.first_ts {
                    new.first_ts = ts;
                    new.day = day;
                }
                new.last_ts = old.last_ts.max(ts);
                new.expired = stale(new.last_ts);
                new.fail_code = ctx.codes.join(old.fail_code, fail_code);
                if new == old {
                    return (Applied::Unchanged, 0);
                }
                *slot.get_mut() = new;
                self.remove(&old);
                self.add(&new);
                (Applied::Changed, 0)
            }
        }
    }

    fn apply_plan(&mut self, plan: Plan, day: Day, min_day: Day) -> Applied {
        if day < min_day {
            return Applied::TooOld;
        }
        let bucket = self.day_mut(day);
        if bucket.plan.is_some_and(|p| p >= plan) {
            return Applied::Unchanged;
        }
        bucket.plan = Some(plan);
        Applied::Changed
    }
}

/// What one CALL event says about its call: the event's day (of its `ts`) and, when FAILED, its
/// interned cause (else none).
#[derive(Debug, Clone, Copy)]
struct CallFact {
    key: CallKey,
    state: CallState,
    fail_code: FailCodeId,
    ts: i64,
    day: Day,
}

/// What one task's sweep needs: the clock, its tenant's calendar and the windows in it.
struct Sweep<'a> {
    watermark: i64,
    calendar: &'a Calendar,
    /// The oldest day of the retention window.
    min_day: Day,
    /// The oldest day of the history window.
    history_min_day: Day,
    stale_after_ms: i64,
}

struct ApplyContext<'a> {
    watermark: i64,
    min_day: Day,
    stale_after_ms: i64,
    max_calls: usize,
    codes: &'a FailCodes,
}

/// What one maintenance pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintenance {
    pub calls_dropped: u64,
    pub calls_expired: u64,
    pub tasks_dropped: u64,
}

type TaskMap = DashMap<TaskKey, TaskState, xxhash_rust::xxh3::Xxh3Builder>;

/// The concurrent store of all tasks. Readers and the writer share it through an `Arc`.
pub struct Store {
    tasks: TaskMap,
    /// Each tenant's calendar: its days, its "today", its buckets.
    zones: TimeZones,
    policy: FoldPolicy,
    /// The greatest event `ts` applied: the store's notion of "now" for what it keeps.
    watermark: AtomicI64,
    /// `tasks.len()`, kept alongside: the map's own count locks every shard, which the writer
    /// cannot do while it holds one (checking the task limit).
    task_count: AtomicUsize,
    calls_tracked: AtomicI64,
    calls_expired_total: AtomicU64,
    fail_codes: FailCodes,
    /// The last change number handed to a task's `version`.
    changes: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("tasks", &self.tasks.len())
            .field("calls", &self.calls_tracked())
            .field("watermark", &self.watermark())
            .finish()
    }
}

impl Store {
    /// A store whose tenants all share one calendar.
    pub fn new(calendar: Calendar, policy: FoldPolicy) -> Self {
        Store::with_zones(TimeZones::single(calendar), policy)
    }

    /// A store whose tenants follow `zones`.
    pub fn with_zones(zones: TimeZones, policy: FoldPolicy) -> Self {
        Store {
            tasks: TaskMap::with_hasher(xxhash_rust::xxh3::Xxh3Builder::new()),
            zones,
            policy,
            watermark: AtomicI64::new(0),
            task_count: AtomicUsize::new(0),
            calls_tracked: AtomicI64::new(0),
            calls_expired_total: AtomicU64::new(0),
            fail_codes: FailCodes::default(),
            changes: AtomicU64::new(0),
        }
    }

    /// The default calendar (of tenants without a rule of their own).
    pub fn calendar(&self) -> &Calendar {
        self.zones.default_calendar()
    }

    /// The calendar of a task's tenant.
    pub fn calendar_of(&self, task: &TaskKey) -> &Calendar {
        self.zones.of_task(task)
    }

    /// A tenant's "today" at wall-clock instant `now_ms`: tenants in different zones may be on
    /// different dates at the same instant.
    pub fn today_in(&self, cc_id: u16, vdn: u16, now_ms: i64) -> Day {
        self.zones.of(cc_id, vdn).day_of(now_ms)
    }

    pub fn policy(&self) -> FoldPolicy {
        self.policy
    }

    pub fn watermark(&self) -> i64 {
        self.watermark.load(Ordering::Acquire)
    }

    /// The oldest day the retention window keeps, for a given watermark, in a calendar.
    fn min_day(&self, calendar: &Calendar, watermark: i64) -> Day {
        calendar
            .day_of(watermark)
            .saturating_sub(i32::from(self.policy.retention_days.max(1)) - 1)
    }

    /// The oldest day the history keeps, for a given watermark, in a calendar (never older than
    /// the retention window's oldest day when there is no history).
    fn history_min_day(&self, calendar: &Calendar, watermark: i64) -> Day {
        let days = self
            .policy
            .history_days
            .max(self.policy.retention_days)
            .max(1);
        calendar
            .day_of(watermark)
            .saturating_sub(i32::from(days) - 1)
    }

    /// Folds one event. `now_ms` is the wall clock, used only to refuse events from the future.
    pub fn apply(&self, event: &Event, now_ms: i64) -> Applied {
        if event.ts > now_ms.saturating_add(self.policy.max_future_ms) {
            return Applied::FromTheFuture;
        }
        let watermark = self
            .watermark
            .fetch_max(event.ts, Ordering::AcqRel)
            .max(event.ts);
        let calendar = self.zones.of_task(&event.task);
        let min_day = self.min_day(calendar, watermark);
        let day = calendar.day_of(event.ts);
        if day < min_day {
            // Older than the retention window: ignored, whether it would start a call, move an
            // existing call to that day (out of the window), or set that day's plan.
            return Applied::TooOld;
        }
        let mut task = match self.tasks.entry(event.task) {
            dashmap::Entry::Occupied(e) => e.into_ref(),
            dashmap::Entry::Vacant(_)
                if self.task_count.load(Ordering::Relaxed) >= self.policy.max_tasks =>
            {
                return Applied::TaskLimit;
            }
            dashmap::Entry::Vacant(e) => {
                self.task_count.fetch_add(1, Ordering::Relaxed);
                e.insert(TaskState::default())
            }
        };
        let applied = match event.kind {
            EventKind::Call {
                call,
                state,
                fail_code,
            } => {
                let ctx = ApplyContext {
                    watermark,
                    min_day,
                    stale_after_ms: self.policy.stale_after_ms,
                    max_calls: self.policy.max_calls_per_task,
                    codes: &self.fail_codes,
                };
                let code = self.fail_codes.of_event(state, fail_code);
                let fact = CallFact {
                    key: call,
                    state,
                    fail_code: code,
                    ts: event.ts,
                    day,
                };
                let (applied, calls_delta) = task.apply_call(fact, &ctx);
                if calls_delta != 0 {
                    self.calls_tracked.fetch_add(calls_delta, Ordering::Relaxed);
                }
                applied
            }
            EventKind::Task { planned } => task.apply_plan(
                Plan {
                    ts: event.ts,
                    planned,
                },
                day,
                min_day,
            ),
        };
        if applied == Applied::Changed {
            task.version = self.next_change();
        }
        applied
    }

    fn next_change(&self) -> u64 {
        self.changes.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Expires stale calls and drops calls and days that left the retention window, by the
    /// current watermark. Cheap when there is nothing to do: one bound check per task.
    pub fn maintain(&self) -> Maintenance {
        let watermark = self.watermark();
        if watermark == 0 {
            return Maintenance::default();
        }
        let mut report = Maintenance::default();
        let mut emptied = false;
        for mut task in self.tasks.iter_mut() {
            let calendar = self.zones.of_task(task.key());
            let sweep = Sweep {
                watermark,
                calendar,
                min_day: self.min_day(calendar, watermark),
                history_min_day: self.history_min_day(calendar, watermark),
                stale_after_ms: self.policy.stale_after_ms,
            };
            if task.needs_sweep(&sweep) {
                let (dropped, expired) = task.sweep(&sweep);
                if dropped + expired > 0 {
                    task.version = self.next_change();
                }
                report.calls_dropped += dropped;
                report.calls_expired += expired;
                emptied |= task.is_empty();
            }
        }
        if emptied {
            let before = self.tasks.len();
            self.tasks.retain(|_, task| !task.is_empty());
            let after = self.tasks.len();
            self.task_count.store(after, Ordering::Relaxed);
            report.tasks_dropped = (before - after) as u64;
        }
        if report.calls_dropped > 0 {
            self.calls_tracked
                .fetch_sub(report.calls_dropped as i64, Ordering::Relaxed);
        }
        self.calls_expired_total
            .fetch_add(report.calls_expired, Ordering::Relaxed);
        report
    }

    /// Visits every task under its shard's read lock, for snapshots: queries and the writer go on
    /// meanwhile (they are not blocked by readers, only by the writer touching the same shard).
    pub fn for_each_task(&self, mut visit: impl FnMut(&TaskKey, &TaskState)) {
        for entry in self.tasks.iter() {
            visit(entry.key(), entry.value());
        }
    }

    /// The numbers of a task for a day; a task never seen has all zeros.
    pub fn stats(&self, task: &TaskKey, day: Day) -> TaskStats {
        self.tasks
            .get(task)
            .map_or_else(TaskStats::default, |t| t.stats(day))
    }

    /// A copy of one task's state, for tests and diagnostics.
    pub fn task(&self, task: &TaskKey) -> Option<TaskState> {
        self.tasks.get(task).map(|t| t.clone())
    }

    pub fn task_keys(&self) -> Vec<TaskKey> {
        self.tasks.iter().map(|t| *t.key()).collect()
    }

    pub fn tasks_tracked(&self) -> usize {
        self.task_count.load(Ordering::Relaxed)
    }

    pub fn calls_tracked(&self) -> u64 {
        self.calls_tracked.load(Ordering::Relaxed).max(0) as u64
    }

    pub fn calls_expired_total(&self) -> u64 {
        self.calls_expired_total.load(Ordering::Relaxed)
    }
}

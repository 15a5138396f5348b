//! Positions the log no longer holds: counted, logged once per incident, never papered over.
//!
//! The consumer runs with `auto.offset.reset=error`, so librdkafka never jumps on its own: when
//! it finds a partition's position outside the log it stops fetching it and says so
//! ([`Handoff::OutOfRange`](super::fetch::Handoff)). The worker then reads every partition's
//! bounds and judges each position:
//! - below the log's start: retention deleted events this replica had not read. They are gone;
//!   their number is counted (`realstat_events_lost_total{partition}`), the partition goes on
//!   from the log's start, and the log line names the days whose counts may be short.
//! - beyond the log's end: the topic was deleted and created again (a log does not shrink
//!   otherwise). Then every partition is suspect, not only this one: a partition of the new topic
//!   that already holds more events than the old position would be read from the wrong place
//!   without a word. So every partition is read again from its start (the fold is idempotent:
//!   what is already counted counts once), and the replica is not ready until that re-read
//!   reaches the end.

use crate::clock::EpochMs;
use crate::fold::Calendar;
use crate::log_position::{Offset, Partition};

use super::Bounds;

/// Where a position stands in its partition's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Inside the log (or no position yet: read from the start).
    InLog,
    /// Below the log's start: `lost` offsets were deleted unread.
    Truncated { lost: u64 },
    /// Beyond the log's end: the topic was recreated.
    Recreated,
}

pub(super) fn judge(position: Option<Offset>, bounds: Bounds) -> Verdict {
    match position {
        Some(pos) if pos < bounds.low => Verdict::Truncated {
            lost: u64::try_from(bounds.low.0 - pos.0).unwrap_or(0),
        },
        Some(pos) if pos > bounds.end => Verdict::Recreated,
        _ => Verdict::InLog,
    }
}

/// The verdicts of one incident, over every partition whose bounds could be read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Incident {
    pub truncated: Vec<(Partition, u64)>,
    pub recreated: Vec<Partition>,
}

impl Incident {
    pub fn of(verdicts: impl IntoIterator<Item = (Partition, Verdict)>) -> Incident {
        let mut incident = Incident::default();
        for (p, verdict) in verdicts {
            match verdict {
                Verdict::InLog => {}
                Verdict::Truncated { lost } => incident.truncated.push((p, lost)),
                Verdict::Recreated => incident.recreated.push(p),
            }
        }
        incident
    }

    pub fn lost(&self) -> u64 {
        self.truncated.iter().map(|&(_, n)| n).sum()
    }
}

/// The days whose counts may be short: from the day of the last event read before the gap
/// (unknown when the gap was found at start, before any event was read) to today, in the
/// calendar's zone.
pub(super) fn days_short(
    calendar: &Calendar,
    last_read_ms: Option<EpochMs>,
    now: EpochMs,
) -> String {
    let today = Calendar::date_text(calendar.day_of(now));
    match last_read_ms {
        Some(ms) if ms > 0 => {
            let from = Calendar::date_text(calendar.day_of(ms.min(now)));
            if from == today {
                today
            } else {
                format!("{from}..{today}")
            }
        }
        _ => format!(
            "..{today} (the gap lies before this start: the days after the restored snapshot)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(low: i64, end: i64) -> Bounds {
        Bounds::from_watermarks((low, end))
    }

    #[test]
    fn a_position_is_judged_against_the_log_it_should_be_in() {
        assert_eq!(judge(Some(Offset(5)), bounds(0, 10)), Verdict::InLog);
        assert_eq!(judge(Some(Offset(10)), bounds(0, 10)), Verdict::InLog);
        assert_eq!(judge(None, bounds(4, 10)), Verdict::InLog);
        assert_eq!(
            judge(Some(Offset(3)), bounds(40, 50)),
            Verdict::Truncated { lost: 37 }
        );
        assert_eq!(judge(Some(Offset(11)), bounds(0, 10)), Verdict::Recreated);
    }

    #[test]
    fn an_incident_gathers_every_partition() {
        let incident = Incident::of([
            (Partition(0), Verdict::Truncated { lost: 7 }),
            (Partition(1), Verdict::InLog),
            (Partition(2), Verdict::Truncated { lost: 3 }),
            (Partition(3), Verdict::Recreated),
        ]);
        assert_eq!(incident.lost(), 10);
        assert_eq!(incident.truncated.len(), 2);
        assert_eq!(incident.recreated, vec![Partition(3)]);
    }

    #[test]
    fn the_short_days_run_from_the_last_event_read_to_today() {
        let utc = Calendar::utc();
        let day = 86_400_000;
        let now = 20_000 * day + 5;
        assert_eq!(days_short(&utc, Some(now - 1), now), "2024-10-04");
        assert_eq!(
            days_short(&utc, Some(now - 2 * day), now),
            "2024-10-02..2024-10-04"
        );
        assert!(days_short(&utc, None, now).starts_with("..2024-10-04"));
    }
}

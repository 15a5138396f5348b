//! Where in the Kafka log: partition ids and offsets, the two numbers that ingest, progress,
//! snapshots and the lag metrics pass between them. A leaf module (std only), so any layer may
//! name them.
//!
//! Why newtypes here and an alias for time: a partition id and an offset come out of the same
//! librdkafka calls and travel side by side (`(partition, offset)` pairs, map entries, argument
//! lists, the snapshot's positions written as two zig-zag integers in a row), so swapping them
//! is an easy slip that plain integers would compile; as [`Partition`] and [`Offset`] it does
//! not. They are thin (`Copy`, the bare number in `Debug` and `Display`, so log lines and
//! headers read as before) and unwrapped only at librdkafka and the metrics. Milliseconds get
//! an alias, [`EpochMs`](crate::clock::EpochMs), instead: event time and wall-clock time are the
//! same unit by design (the fold compares one with the other), they are added and subtracted all
//! through the domain core, and a newtype there would buy `.0` on every line of the fold and
//! no caught mistake.

use std::fmt;

/// A partition of the topic (librdkafka's `i32` partition id).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition(pub i32);

/// An offset within one partition's log (librdkafka's `i64`). Used both for a message's own
/// offset and for "the next offset to read": [`Offset::after`] turns one into the other.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset(pub i64);

impl Offset {
    /// The offset of the message after this one: where reading resumes once this is folded.
    pub fn after(self) -> Offset {
        Offset(self.0.saturating_add(1))
    }
}

impl fmt::Debug for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn they_print_as_the_bare_numbers_log_lines_and_headers_always_showed() {
        let positions: BTreeMap<Partition, Offset> = [(Partition(0), Offset(10))].into();
        assert_eq!(format!("{positions:?}"), "{0: 10}");
        assert_eq!(Partition(3).to_string(), "3");
        assert_eq!(Offset(-1).to_string(), "-1");
    }

    #[test]
    fn after_is_the_next_offset_and_never_overflows() {
        assert_eq!(Offset(41).after(), Offset(42));
        assert_eq!(Offset(i64::MAX).after(), Offset(i64::MAX));
    }
}

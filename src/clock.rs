//! The wall clock, read in one place. The domain core (events, fold) never reads it: callers
//! pass the time in, so a fold is a pure function of its input and tests choose the time.

/// Milliseconds since the Unix epoch, UTC: the unit of event time (`ts`, the watermark) and of
/// the wall clock alike. An alias, not a newtype: see `log_position` for why.
pub type EpochMs = i64;

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> EpochMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Wall-clock seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    now_ms() / 1000
}

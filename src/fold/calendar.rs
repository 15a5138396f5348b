//! Local calendar days in the configured time zone.
//!
//! A day is a plain number (days since 1970-01-01 of the *local* calendar), so buckets compare and
//! sort as integers and "today" is a lookup at query time: midnight needs no job.

use std::sync::atomic::{AtomicI64, Ordering};

use jiff::tz::TimeZone;

/// Local calendar day number: 0 is 1970-01-01 in the configured zone.
pub type Day = i32;

const MS_PER_DAY: i64 = 86_400_000;

#[derive(Debug)]
pub struct Calendar {
    tz: TimeZone,
    /// The hour (since the epoch) last looked up and the UTC offset in force over all of it,
    /// packed into one word (see [`pack`]) so concurrent readers never see a torn pair. Cached
    /// because nearly every event of a live stream falls in the same hour and a time-zone lookup
    /// is a search.
    cache: AtomicI64,
}

impl Clone for Calendar {
    fn clone(&self) -> Self {
        Calendar::new(self.tz.clone())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown time zone {name:?}: use an IANA name such as Asia/Shanghai")]
pub struct UnknownTimeZone {
    pub name: String,
}

impl Calendar {
    pub fn new(tz: TimeZone) -> Self {
        Calendar {
            tz,
            cache: AtomicI64::new(EMPTY),
        }
    }

    /// A calendar for an IANA time zone name (the tz database is compiled in, so a slim container
    /// without /usr/share/zoneinfo still knows every zone).
    pub fn named(name: &str) -> Result<Self, UnknownTimeZone> {
        TimeZone::get(name)
            .map(Calendar::new)
            .map_err(|_| UnknownTimeZone {
                name: name.to_owned(),
            })
    }

    pub fn utc() -> Self {
        Calendar::new(TimeZone::UTC)
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    pub fn time_zone_name(&self) -> &str {
        self.tz.iana_name().unwrap_or("UTC")
    }

    /// The local day of an instant given in milliseconds since the Unix epoch.
    pub fn day_of(&self, ts_ms: i64) -> Day {
        let offset_ms = self.offset_ms(ts_ms);
        (ts_ms.saturating_add(offset_ms)).div_euclid(MS_PER_DAY) as Day
    }

    /// The local wall-clock time of an instant, in minutes after local midnight (0..1440).
    pub fn minute_of_day(&self, ts_ms: i64) -> u16 {
        let local = ts_ms.saturating_add(self.offset_ms(ts_ms));
        (local.rem_euclid(MS_PER_DAY) / 60_000) as u16
    }

    /// The local date of a day, for logs and tests: `2024-11-24`.
    pub fn date_text(day: Day) -> String {
        let date = jiff::civil::date(1970, 1, 1)
            .checked_add(jiff::Span::new().days(i64::from(day)))
            .unwrap_or(jiff::civil::date(1970, 1, 1));
        date.to_string()
    }

    /// The day of a date written exactly `yyyy-MM-dd` (the vendor's date format), if it is a
    /// real date from 0001-01-01 on.
    pub fn parse_date(text: &str) -> Option<Day> {
        let b = text.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        let shape = b.len() == 10 && b[4] == b'-' && b[7] == b'-';
        if !shape || !digits(0..4) || !digits(5..7) || !digits(8..10) {
            return None;
        }
        let date: jiff::civil::Date = text.parse().ok()?;
        // Year 0 exists in the proleptic calendar but in no client's date type.
        if date.year() < 1 {
            return None;
        }
        let days = date
            .to_zoned(TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_second()
            .div_euclid(86_400);
        Day::try_from(days).ok()
    }

    fn offset_ms(&self, ts_ms: i64) -> i64 {
        let hour = ts_ms.div_euclid(MS_PER_HOUR);
        if let Some(offset_ms) = unpack(self.cache.load(Ordering::Relaxed), hour) {
            return offset_ms;
        }
        let offset_at = |ms: i64| {
            jiff::Timestamp::from_millisecond(ms)
                .map(|t| i64::from(self.tz.to_offset(t).seconds()) * 1000)
                .unwrap_or(0)
        };
        let offset_ms = offset_at(ts_ms);
        // Cache the hour only when the offset is the same at both its ends: no zone changes its
        // offset twice within an hour, so the whole hour then has this offset.
        let hour_start = hour * MS_PER_HOUR;
        if offset_at(hour_start) == offset_ms
            && offset_at(hour_start + MS_PER_HOUR - 1) == offset_ms
        {
            self.cache.store(pack(hour, offset_ms), Ordering::Relaxed);
        }
        offset_ms
    }
}

const MS_PER_HOUR: i64 = 3_600_000;
/// Offsets are whole seconds within ±26 h: 18 bits with a bias; the hour takes the bits above.
const OFFSET_BITS: u32 = 18;
const OFFSET_BIAS: i64 = 1 << (OFFSET_BITS - 1);
const EMPTY: i64 = i64::MIN;

fn pack(hour: i64, offset_ms: i64) -> i64 {
    let offset_s = offset_ms / 1000 + OFFSET_BIAS;
    if !(0..(1 << OFFSET_BITS)).contains(&offset_s) || hour.unsigned_abs() >= (1 << 44) {
        return EMPTY;
    }
    (hour << OFFSET_BITS) | offset_s
}

fn unpack(packed: i64, hour: i64) -> Option<i64> {
    if packed == EMPTY || packed >> OFFSET_BITS != hour {
        return None;
    }
    Some(((packed & ((1 << OFFSET_BITS) - 1)) - OFFSET_BIAS) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>()
            .expect("timestamp")
            .as_millisecond()
    }

    #[test]
    fn shanghai_days_start_at_local_midnight() {
        let cal = Calendar::named("Asia/Shanghai").expect("zone");
        // 2024-11-24 15:59:59.999Z is 23:59:59.999 in Shanghai; one ms later is the next day.
        let a = cal.day_of(ms("2024-11-24T15:59:59.999Z"));
        let b = cal.day_of(ms("2024-11-24T16:00:00Z"));
        assert_eq!(b, a + 1);
        assert_eq!(Calendar::date_text(a), "2024-11-24");
        assert_eq!(Calendar::date_text(b), "2024-11-25");
    }

    #[test]
    fn daylight_saving_zones_use_the_offset_in_force() {
        let cal = Calendar::named("America/New_York").expect("zone");
        // 2024-03-10: clocks jump from 02:00 EST to 03:00 EDT (07:00Z); after the change
        // midnight is at 04:00Z. The last row goes back across the change after a cached hour.
        for (instant, date) in [
            ("2024-03-10T04:59:59Z", "2024-03-09"),
            ("2024-03-10T05:00:00Z", "2024-03-10"),
            ("2024-03-11T03:59:59Z", "2024-03-10"),
            ("2024-03-11T04:00:00Z", "2024-03-11"),
            ("2024-03-10T04:59:59Z", "2024-03-09"),
        ] {
            assert_eq!(
                Calendar::date_text(cal.day_of(ms(instant))),
                date,
                "{instant}"
            );
        }
    }

    #[test]
    fn minutes_of_the_local_day() {
        let cal = Calendar::named("Asia/Shanghai").expect("zone");
        assert_eq!(cal.minute_of_day(ms("2024-11-24T16:00:00Z")), 0);
        assert_eq!(cal.minute_of_day(ms("2024-11-24T15:59:59.999Z")), 1439);
        assert_eq!(cal.minute_of_day(ms("2024-11-24T01:31:00Z")), 9 * 60 + 31);
        let ny = Calendar::named("America/New_York").expect("zone");
        // 03:30 EDT on the day the clocks jumped from 02:00 to 03:00.
        assert_eq!(ny.minute_of_day(ms("2024-03-10T07:30:00Z")), 3 * 60 + 30);
    }

    #[test]
    fn dates_parse_exactly_and_back() {
        for text in ["1970-01-01", "2024-02-29", "2026-11-20", "1969-12-31"] {
            let day = Calendar::parse_date(text).expect(text);
            assert_eq!(Calendar::date_text(day), text);
        }
        assert_eq!(Calendar::parse_date("1970-01-02"), Some(1));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "20240101",
            "2024-01-01 ",
            "２024-01-01",
            "",
            "0000-01-01",
        ] {
            assert_eq!(Calendar::parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn unknown_zone_is_an_error() {
        assert!(Calendar::named("Mars/Olympus").is_err());
    }
}

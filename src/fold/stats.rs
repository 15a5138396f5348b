//! The numbers served for one task and day, and the vendor's rate format.

use std::fmt;

/// The eight realstatistic values of one task for one day, before formatting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskStats {
    /// Calls whose day is the day asked for.
    pub total: u64,
    /// ... of which CONNECTED or FINISHED.
    pub succ: u64,
    /// ... of which FAILED.
    pub fail: u64,
    /// ... of which FAILED or FINISHED.
    pub comp: u64,
    /// Calls of the task now QUEUED, whatever their day (stale ones excluded).
    pub wait: u64,
    /// Calls of the task now DIALING or CONNECTED, whatever their day (stale ones excluded).
    pub exec: u64,
    /// The task's plan for the day; 0 when no TASK event gave one.
    pub planned: u64,
}

impl TaskStats {
    /// Connection rate: `succ / total`.
    pub fn succ_rate(&self) -> Percent {
        Percent::of(self.succ, self.total)
    }

    /// Completion rate: `comp / max(planned, total)` (events.md; the vendor defines none).
    pub fn comp_rate(&self) -> Percent {
        Percent::of(self.comp, self.planned.max(self.total))
    }
}

/// A ratio as a percentage rounded half-up to two decimals, computed from integers only.
///
/// Displays the vendor's way: trailing zeros and a trailing dot dropped (`50%`, `12.5%`, `33.33%`),
/// and `0%` for a zero denominator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Percent {
    /// The percentage times 100: `3333` is 33.33 %.
    hundredths: u128,
}

impl Percent {
    pub fn of(numerator: u64, denominator: u64) -> Self {
        if denominator == 0 {
            return Percent { hundredths: 0 };
        }
        // round(n * 10000 / d) half-up, exactly: floor((2 * n * 10000 + d) / (2 * d)). In u64
        // when nothing can overflow (any real count), else in u128 (a 128-bit division is a
        // library call, several times slower).
        // 2 * n * 10_000 + d <= FITS * 20_001 <= u64::MAX.
        const FITS: u64 = u64::MAX / 20_001;
        if numerator <= FITS && denominator <= FITS {
            return Percent {
                hundredths: u128::from((2 * numerator * 10_000 + denominator) / (2 * denominator)),
            };
        }
        let (n, d) = (u128::from(numerator), u128::from(denominator));
        Percent {
            hundredths: (2 * n * 10_000 + d) / (2 * d),
        }
    }
}

impl Percent {
    /// Appends the vendor's text (`50%`, `12.5%`, `33.33%`) to `out`, without the formatting
    /// machinery: answers write two of these per task row.
    pub fn push_to(&self, out: &mut String) {
        self.pieces(|piece| out.push_str(piece));
    }

    /// The text in pieces: the whole part, then `.` and one or two digits unless they are zero,
    /// then `%`.
    fn pieces(&self, mut put: impl FnMut(&str)) {
        const DIGITS: &str = "0123456789";
        let digit = |d: u8| {
            DIGITS
                .get(usize::from(d)..usize::from(d) + 1)
                .unwrap_or("0")
        };
        let mut buf = itoa::Buffer::new();
        // In u64 when it fits: 128-bit division and formatting run in software.
        let (whole, frac) = match u64::try_from(self.hundredths) {
            Ok(h) => (buf.format(h / 100), (h % 100) as u8),
            Err(_) => (
                buf.format(self.hundredths / 100),
                (self.hundredths % 100) as u8,
            ),
        };
        put(whole);
        if frac != 0 {
            put(".");
            put(digit(frac / 10));
            if frac % 10 != 0 {
                put(digit(frac % 10));
            }
        }
        put("%");
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut result = Ok(());
        self.pieces(|piece| {
            if result.is_ok() {
                result = f.write_str(piece);
            }
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_format_like_the_vendor() {
        let cases = [
            (1, 2, "50%"),
            (101, 200, "50.5%"),
            (1, 3, "33.33%"),
            (2, 3, "66.67%"),
            (1, 1, "100%"),
            (0, 0, "0%"),
            (5, 0, "0%"),
            (0, 7, "0%"),
            (1, 8, "12.5%"),
            (1, 200, "0.5%"),
            (1, 300, "0.33%"),
            (1, 20_000, "0.01%"), // exactly half of a hundredth: rounds up
            (1, 20_001, "0%"),    // just under half: rounds down
            (1, 16, "6.25%"),
            (7, 1000, "0.7%"),
            (1, 40_000, "0%"),
            (3, 40_000, "0.01%"), // 0.0075 % rounds half-up to 0.01 %
            (u64::MAX, u64::MAX, "100%"),
            (u64::MAX, 1, "1844674407370955161500%"),
        ];
        for (n, d, want) in cases {
            assert_eq!(Percent::of(n, d).to_string(), want, "{n}/{d}");
        }
    }

    /// The u64 shortcut gives what the exact u128 formula gives, up to and across its limit.
    #[test]
    fn the_u64_shortcut_is_exact_at_its_edges() {
        let exact = |n: u64, d: u64| {
            let (n, d) = (u128::from(n), u128::from(d));
            (2 * n * 10_000 + d) / (2 * d)
        };
        let edge = u64::MAX / 20_001;
        for n in [0, 1, 7, edge - 1, edge, edge + 1, u64::MAX / 2, u64::MAX] {
            for d in [1, 3, 7, edge - 1, edge, edge + 1, u64::MAX / 3, u64::MAX] {
                assert_eq!(Percent::of(n, d).hundredths, exact(n, d), "{n}/{d}");
            }
        }
    }

    #[test]
    fn the_vendor_example() {
        let s = crate::fold::testing::VENDOR_EXAMPLE;
        assert_eq!(s.succ_rate().to_string(), "50%");
        assert_eq!(s.comp_rate().to_string(), "50%");
    }

    #[test]
    fn completion_rate_uses_the_larger_of_plan_and_total() {
        let s = TaskStats {
            total: 10,
            comp: 5,
            planned: 4,
            ..TaskStats::default()
        };
        assert_eq!(s.comp_rate().to_string(), "50%");
    }
}

//! Which calendar a tenant's days follow: `timezones` maps a call center (`89`) or a call center
//! and VDN (`89:92`) to a zone; everything else keeps the default `timezone`. The most specific
//! rule wins. Public so that every seam that turns an instant into a tenant's local date (the
//! fold's days, "today" of a query, a callback's `callTimeStr`) asks the same table.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use super::calendar::Calendar;
use crate::events::ids::TaskKey;

/// VDNs are 1..5000, as the API accepts them (the core does not depend on `auth`).
const MAX_VDN: u16 = 5000;

/// The tenant a zone rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TenantScope {
    /// Every VDN of a call center.
    Center(u16),
    /// One VDN of a call center.
    Vdn(u16, u16),
}

impl FromStr for TenantScope {
    type Err = String;

    /// `89` or `89:92`; call centers 1..65535 and VDNs 1..5000, as the API accepts them.
    fn from_str(text: &str) -> Result<Self, String> {
        let number = |t: &str, max: u16, what: &str| -> Result<u16, String> {
            t.trim()
                .parse::<u16>()
                .ok()
                .filter(|&n| n >= 1 && n <= max)
                .ok_or_else(|| format!("{t:?} is not a {what} (1..{max})"))
        };
        match text.split_once(':') {
            None => Ok(TenantScope::Center(number(text, u16::MAX, "call center")?)),
            Some((cc, vdn)) => Ok(TenantScope::Vdn(
                number(cc, u16::MAX, "call center")?,
                number(vdn, MAX_VDN, "VDN")?,
            )),
        }
    }
}

impl fmt::Display for TenantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TenantScope::Center(cc) => write!(f, "{cc}"),
            TenantScope::Vdn(cc, vdn) => write!(f, "{cc}:{vdn}"),
        }
    }
}

/// The calendars of all tenants: a default and the exceptions.
#[derive(Debug, Clone)]
pub struct TimeZones {
    default: Calendar,
    centers: HashMap<u16, Calendar>,
    vdns: HashMap<(u16, u16), Calendar>,
}

impl TimeZones {
    /// Every tenant in one zone.
    pub fn single(default: Calendar) -> Self {
        TimeZones {
            default,
            centers: HashMap::new(),
            vdns: HashMap::new(),
        }
    }

    /// The default and the rules; a later rule for the same tenant replaces an earlier one.
    pub fn new(
        default: Calendar,
        rules: impl IntoIterator<Item = (TenantScope, Calendar)>,
    ) -> Self {
        let mut zones = TimeZones::single(default);
        for (scope, calendar) in rules {
            match scope {
                TenantScope::Center(cc) => zones.centers.insert(cc, calendar),
                TenantScope::Vdn(cc, vdn) => zones.vdns.insert((cc, vdn), calendar),
            };
        }
        zones
    }

    /// The calendar of a call center and VDN: its own rule, else its call center's, else the
    /// default.
    pub fn of(&self, cc_id: u16, vdn: u16) -> &Calendar {
        if self.centers.is_empty() && self.vdns.is_empty() {
            return &self.default;
        }
        self.vdns
            .get(&(cc_id, vdn))
            .or_else(|| self.centers.get(&cc_id))
            .unwrap_or(&self.default)
    }

    /// The calendar of a task's tenant.
    pub fn of_task(&self, task: &TaskKey) -> &Calendar {
        self.of(task.cc_id, task.vdn)
    }

    pub fn default_calendar(&self) -> &Calendar {
        &self.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_rule_wins() {
        let zones = TimeZones::new(
            Calendar::named("Asia/Shanghai").expect("zone"),
            [
                (
                    "89".parse().expect("scope"),
                    Calendar::named("America/New_York").expect("zone"),
                ),
                (
                    "89:92".parse().expect("scope"),
                    Calendar::named("Europe/Berlin").expect("zone"),
                ),
            ],
        );
        assert_eq!(zones.of(89, 92).time_zone_name(), "Europe/Berlin");
        assert_eq!(zones.of(89, 93).time_zone_name(), "America/New_York");
        assert_eq!(zones.of(7, 92).time_zone_name(), "Asia/Shanghai");
    }

    #[test]
    fn scopes_read_and_write_back() {
        for text in ["89", "7:92", "65535:5000"] {
            let scope: TenantScope = text.parse().expect("scope");
            assert_eq!(scope.to_string(), text);
        }
        for bad in ["", "0", "89:0", "89:5001", "x", "1:2:3", "70000"] {
            assert!(bad.parse::<TenantScope>().is_err(), "{bad}");
        }
    }
}

/// A tenant's days in its own zone, through the store: across both daylight-saving switches, and
/// "today" differing between tenants at one instant.
#[cfg(test)]
mod store_tests {
    use super::*;
    use crate::events::CallState::*;
    use crate::fold::testing::*;
    use crate::fold::{breakdown, Day, FoldPolicy, Store, TimeGrain};

    const NY: TaskKey = TaskKey {
        cc_id: 89,
        vdn: 92,
        task_id: 1,
    };
    const SH: TaskKey = TaskKey {
        cc_id: 7,
        vdn: 92,
        task_id: 1,
    };

    fn ms(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().expect("ts").as_millisecond()
    }

    fn day(date: &str) -> Day {
        Calendar::parse_date(date).expect("date")
    }

    /// Default Asia/Shanghai, call center 89 in New York, a retention long enough for a year.
    fn zoned_store() -> Store {
        let zones = TimeZones::new(
            Calendar::named("Asia/Shanghai").expect("zone"),
            [(
                TenantScope::Center(89),
                Calendar::named("America/New_York").expect("zone"),
            )],
        );
        Store::with_zones(
            zones,
            FoldPolicy {
                retention_days: 1000,
                ..policy()
            },
        )
    }

    #[test]
    fn new_york_days_across_the_spring_switch() {
        let s = zoned_store();
        // 2024-03-10: 02:00 EST jumps to 03:00 EDT at 07:00Z; the day is 23 hours long.
        for (id, at) in [
            ("a", "2024-03-10T04:59:59Z"), // 23:59:59 EST, March 9
            ("b", "2024-03-10T05:00:00Z"), // 00:00 EST, March 10
            ("c", "2024-03-10T07:30:00Z"), // 03:30 EDT
            ("d", "2024-03-11T03:59:59Z"), // 23:59:59 EDT, March 10
            ("e", "2024-03-11T04:00:00Z"), // 00:00 EDT, March 11
        ] {
            s.apply(&call(NY, id, Finished, ms(at)), FAR_FUTURE);
        }
        let totals: Vec<u64> = ["2024-03-09", "2024-03-10", "2024-03-11"]
            .map(|d| s.stats(&NY, day(d)).total)
            .to_vec();
        assert_eq!(totals, [1, 3, 1]);
        let b = breakdown::breakdown(&s, &NY, day("2024-03-10"), TimeGrain::Min60);
        let hours: Vec<u64> = b.buckets.iter().map(|b| b.total).collect();
        assert_eq!((hours[0], hours[2], hours[3], hours[23]), (1, 0, 1, 1));
        // The same instants in the default zone (Shanghai, no daylight saving) fall elsewhere.
        s.apply(
            &call(SH, "b", Finished, ms("2024-03-10T05:00:00Z")),
            FAR_FUTURE,
        );
        assert_eq!(s.stats(&SH, day("2024-03-10")).total, 1);
    }

    #[test]
    fn new_york_days_across_the_autumn_switch() {
        let s = zoned_store();
        // 2024-11-03: 02:00 EDT falls back to 01:00 EST at 06:00Z; the day is 25 hours long and
        // both 01:00 hours share a bucket.
        for (id, at) in [
            ("a", "2024-11-03T03:59:59Z"), // 23:59:59 EDT, November 2
            ("b", "2024-11-03T04:00:00Z"), // 00:00 EDT, November 3
            ("c", "2024-11-03T05:30:00Z"), // 01:30 EDT
            ("d", "2024-11-03T06:30:00Z"), // 01:30 EST
            ("e", "2024-11-04T04:59:59Z"), // 23:59:59 EST, November 3
            ("f", "2024-11-04T05:00:00Z"), // 00:00 EST, November 4
        ] {
            s.apply(&call(NY, id, Failed, ms(at)), FAR_FUTURE);
        }
        let totals: Vec<u64> = ["2024-11-02", "2024-11-03", "2024-11-04"]
            .map(|d| s.stats(&NY, day(d)).fail)
            .to_vec();
        assert_eq!(totals, [1, 4, 1]);
        let b = breakdown::breakdown(&s, &NY, day("2024-11-03"), TimeGrain::Min60);
        let hours: Vec<u64> = b.buckets.iter().map(|b| b.fail).collect();
        assert_eq!((hours[0], hours[1], hours[23]), (1, 2, 1));
    }

    #[test]
    fn tenants_in_different_zones_are_on_different_dates_at_one_instant() {
        let s = zoned_store();
        // 02:00Z: 10:00 on the 24th in Shanghai, 21:00 on the 23rd in New York.
        let now = ms("2024-11-24T02:00:00Z");
        assert_eq!(s.today_in(SH.cc_id, SH.vdn, now), day("2024-11-24"));
        assert_eq!(s.today_in(NY.cc_id, NY.vdn, now), day("2024-11-23"));
        s.apply(&call(NY, "x", Queued, now), FAR_FUTURE);
        s.apply(&call(SH, "x", Queued, now), FAR_FUTURE);
        assert_eq!(s.stats(&NY, s.today_in(NY.cc_id, NY.vdn, now)).total, 1);
        assert_eq!(s.stats(&SH, s.today_in(SH.cc_id, SH.vdn, now)).total, 1);
        assert_eq!(s.stats(&NY, day("2024-11-24")).total, 0);
    }
}

//! Values written as text in every source (file, environment, flags): durations such as `30s`,
//! `key=value` Kafka properties, and the time zone. One parser each, used by clap and serde alike.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// `500ms`, `30s`, `5m`, `24h`, `1d`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || format!("{text:?} is not a duration such as 500ms, 30s, 5m, 24h, 1d");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }
    .ok_or_else(bad)?;
    Ok(Duration::from_millis(ms))
}

/// The shortest text [`parse_duration`] reads back as `d` (to the millisecond).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms > 0 && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// `key=value`, as librdkafka properties are written (`--kafka-property`, `REALSTAT_KAFKA_PROPERTIES`).
pub fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{text:?} is not key=value")),
    }
}

/// serde adapter: a [`Duration`] as duration text (a bare integer is seconds).
pub mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Text {
            Seconds(u64),
            Text(String),
        }
        match Text::deserialize(d)? {
            Text::Seconds(s) => Ok(Duration::from_secs(s)),
            Text::Text(t) => parse_duration(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// serde adapter: librdkafka properties as the table the config file has (`[kafka.properties]`),
/// so that figment merges them key by key across sources; a later pair of one source wins.
pub mod properties {
    use super::*;
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(pairs: &[(String, String)], s: S) -> Result<S::Ok, S::Error> {
        let table: BTreeMap<&str, &str> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        serde::Serialize::serialize(&table, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
        Ok(BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .collect())
    }
}

/// A time zone by its IANA name (`--timezone`).
pub fn parse_zone(name: &str) -> Result<crate::fold::Calendar, String> {
    crate::fold::Calendar::named(name).map_err(|e| format!("{name:?}: {e}"))
}

/// serde adapter: the time zone as its IANA name, resolved once when the settings are read.
pub mod zone {
    use super::*;
    use crate::fold::Calendar;

    pub fn serialize<S: Serializer>(c: &Calendar, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(c.time_zone_name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Calendar, D::Error> {
        let name = String::deserialize(d)?;
        super::parse_zone(&name).map_err(serde::de::Error::custom)
    }
}

/// `89=America/New_York` or `89:92=Europe/Berlin` (`--timezone-for`, `REALSTAT_TIMEZONES`).
pub fn parse_tenant_zone(
    text: &str,
) -> Result<(crate::fold::TenantScope, crate::fold::Calendar), String> {
    let (tenant, zone) = parse_property(text)?;
    Ok((tenant.parse()?, parse_zone(zone.trim())?))
}

/// serde adapter: tenant time zones as the table the config file has (`[timezones]`,
/// `"89" = "America/New_York"`), so that figment merges them tenant by tenant across sources.
pub mod tenant_zones {
    use super::*;
    use crate::fold::{Calendar, TenantScope};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        pairs: &[(TenantScope, Calendar)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let table: BTreeMap<String, &str> = pairs
            .iter()
            .map(|(t, c)| (t.to_string(), c.time_zone_name()))
            .collect();
        serde::Serialize::serialize(&table, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(TenantScope, Calendar)>, D::Error> {
        BTreeMap::<String, String>::deserialize(d)?
            .into_iter()
            .map(|(t, z)| parse_tenant_zone(&format!("{t}={z}")))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        for bad in [
            "",
            "s",
            "-1s",
            "1.5s",
            "10 parsecs",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_round_trip_through_text() {
        for ms in [
            0, 1, 999, 1000, 1500, 60_000, 90_000, 3_600_000, 86_400_000, 90_000_000,
        ] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{ms}");
        }
    }

    #[test]
    fn properties() {
        assert_eq!(
            parse_property("sasl.password=a=b"),
            Ok(("sasl.password".into(), "a=b".into()))
        );
        assert!(parse_property("novalue").is_err());
        assert!(parse_property("=x").is_err());
    }
}

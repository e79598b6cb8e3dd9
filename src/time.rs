//! Event times: µs since the epoch, parsed from and shown as RFC 3339 in UTC.

use crate::model::Micros;

/// Parses an RFC 3339 timestamp (any offset) into µs since the epoch.
pub fn parse(text: &str) -> Result<Micros, String> {
    let ts: jiff::Timestamp = text.parse().map_err(|e: jiff::Error| {
        // A well-formed time outside the range that can be counted is not a malformed one.
        if jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M:%S", text.get(..19).unwrap_or(""))
            .is_ok()
        {
            format!(
                "{text:?} is outside the times rewind can count ({} to {}); give a time in that range",
                format(jiff::Timestamp::MIN.as_microsecond()),
                format(jiff::Timestamp::MAX.as_microsecond() / 1_000_000 * 1_000_000),
            )
        } else {
            format!("{text:?} is not an RFC 3339 time such as 2026-01-31T12:00:00Z: {e}")
        }
    })?;
    Ok(ts.as_microsecond())
}

/// Formats µs since the epoch as RFC 3339 in UTC with microseconds, e.g.
/// `2026-01-31T12:00:00.000250Z`; whole seconds are shown without a fraction.
pub fn format(us: Micros) -> String {
    match jiff::Timestamp::from_microsecond(us) {
        Ok(ts) if us % 1_000_000 == 0 => format!("{ts:.0}"),
        Ok(ts) => format!("{ts:.6}"),
        Err(_) => format!("{us}µs"),
    }
}

/// The hour, day or month (UTC) an instant falls in, as a number that grows with time.
pub fn bucket(bucket: crate::model::Bucket, us: Micros) -> i64 {
    use crate::model::Bucket;
    const HOUR: i64 = 3_600_000_000;
    match bucket {
        Bucket::Hour => us.div_euclid(HOUR),
        Bucket::Day => us.div_euclid(24 * HOUR),
        Bucket::Month => jiff::Timestamp::from_microsecond(us)
            .map(|t| {
                let date = t.to_zoned(jiff::tz::TimeZone::UTC).date();
                i64::from(date.year()) * 12 + i64::from(date.month())
            })
            .unwrap_or(0),
    }
}

/// A cron schedule, checked when it is set.
pub fn parse_cron(text: &str) -> Result<croner::Cron, String> {
    text.parse::<croner::Cron>()
        .map_err(|e| format!("{text:?} is not a cron schedule such as \"0 * * * *\": {e}"))
}

/// Whether a cron schedule fires in `(after, upto]` (UTC).
pub fn cron_fires(cron: &croner::Cron, after: Micros, upto: Micros) -> bool {
    let Ok(start) = jiff::Timestamp::from_microsecond(after) else {
        return false;
    };
    let Ok(next) = cron.find_next_occurrence(&start.to_zoned(jiff::tz::TimeZone::UTC), false)
    else {
        return false;
    };
    next.timestamp().as_microsecond() <= upto
}

/// Parses a duration such as `90s`, `15m`, `1h`, `7d` or `2w` into µs.
pub fn parse_duration(text: &str) -> Result<Micros, String> {
    let bad = || format!("{text:?} is not a duration such as 90s, 15m, 1h, 7d or 2w");
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(unit_at);
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is longer than rewind can count; give at most 290000w"))?;
    let (_, scale) = UNITS.iter().find(|(u, _)| *u == unit).ok_or_else(bad)?;
    if n == 0 {
        return Err(format!(
            "{text:?} is zero; give a duration of at least 1s, such as 90s, 15m, 1h, 7d or 2w"
        ));
    }
    n.checked_mul(*scale)
        .ok_or_else(|| format!("{text:?} is longer than rewind can count; give at most 290000w"))
}

/// Duration units and their length in µs, longest first.
const UNITS: [(&str, Micros); 5] = [
    ("w", 7 * 86_400_000_000),
    ("d", 86_400_000_000),
    ("h", 3_600_000_000),
    ("m", 60_000_000),
    ("s", 1_000_000),
];

/// A duration in the largest unit that divides it, as [`parse_duration`] reads it back
/// (`90m`, `2w`); whole seconds at least.
pub fn format_duration(us: Micros) -> String {
    for (unit, size) in UNITS {
        if us % size == 0 {
            return format!("{}{unit}", us / size);
        }
    }
    format!("{}s", us / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_in_the_largest_unit_and_read_back() {
        for (text, shown) in [
            ("90m", "90m"),
            ("120m", "2h"),
            ("14d", "2w"),
            ("90s", "90s"),
            ("36h", "36h"),
        ] {
            let us = parse_duration(text).unwrap();
            assert_eq!(format_duration(us), shown);
            assert_eq!(parse_duration(shown).unwrap(), us);
        }
    }

    #[test]
    fn roundtrips_with_and_without_fraction() {
        for text in [
            "2026-01-31T12:00:00Z",
            "2026-01-31T12:00:00.000250Z",
            "1970-01-01T00:00:00Z",
        ] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        assert_eq!(
            format(parse("2026-01-31T14:00:00+02:00").unwrap()),
            "2026-01-31T12:00:00Z"
        );
    }

    #[test]
    fn durations_parse_with_their_units() {
        assert_eq!(parse_duration("90s"), Ok(90_000_000));
        assert_eq!(parse_duration("1h"), Ok(3_600_000_000));
        assert_eq!(parse_duration("90d"), Ok(90 * 86_400_000_000));
        for bad in ["", "h", "10", "1y", "-1h", "0s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn months_and_days_bucket_in_utc() {
        use crate::model::Bucket;
        let t = |s| parse(s).unwrap();
        assert_eq!(
            bucket(Bucket::Month, t("2026-01-31T23:59:59Z")) + 1,
            bucket(Bucket::Month, t("2026-02-01T00:00:00Z"))
        );
        assert_eq!(
            bucket(Bucket::Day, t("2026-03-01T10:00:00+12:00")),
            bucket(Bucket::Day, t("2026-02-28T22:00:00Z"))
        );
    }

    #[test]
    fn a_cron_schedule_fires_between_two_instants() {
        let hourly = parse_cron("0 * * * *").unwrap();
        let t = |s| parse(s).unwrap();
        assert!(cron_fires(
            &hourly,
            t("2026-01-01T10:30:00Z"),
            t("2026-01-01T11:00:00Z")
        ));
        assert!(!cron_fires(
            &hourly,
            t("2026-01-01T11:00:00Z"),
            t("2026-01-01T11:59:59Z")
        ));
        assert!(parse_cron("every hour").is_err());
    }

    #[test]
    fn a_bad_time_says_what_is_expected() {
        assert!(parse("yesterday").unwrap_err().contains("RFC 3339"));
    }
}

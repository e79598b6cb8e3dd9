//! Event times: µs since the epoch, parsed from and shown as RFC 3339 in UTC.

use crate::model::Micros;

/// Parses an RFC 3339 timestamp (any offset) into µs since the epoch.
pub fn parse(text: &str) -> Result<Micros, String> {
    let ts: jiff::Timestamp = text.parse().map_err(|e| {
        format!("{text:?} is not an RFC 3339 time such as 2026-01-31T12:00:00Z: {e}")
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_bad_time_says_what_is_expected() {
        assert!(parse("yesterday").unwrap_err().contains("RFC 3339"));
    }
}

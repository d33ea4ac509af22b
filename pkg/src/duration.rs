//! Durations written the way Go's `time.ParseDuration` reads them (`10s`, `1m30s`, `1.5h`,
//! `250ms`): ctr's `--timeout` flags and containerd's config (the gc scheduler's delays) take
//! that form.

use std::time::Duration;

/// A duration string that is not in Go's format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time: invalid duration {0:?}")]
pub struct InvalidDuration(String);

const UNITS: &[(&str, f64)] = &[
    ("ns", 1.0),
    ("us", 1e3),
    ("µs", 1e3),
    ("μs", 1e3),
    ("ms", 1e6),
    ("s", 1e9),
    ("m", 60e9),
    ("h", 3600e9),
];

/// Parses a Go duration; negative durations are rejected since a timeout
/// cannot be negative (Go would accept them and time out at once).
pub fn parse(text: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration(text.to_owned());
    let rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut remaining = rest;
    let mut nanos = 0f64;
    while !remaining.is_empty() {
        let number_len = remaining
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number = &remaining[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        remaining = &remaining[number_len..];
        let unit_len = remaining
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(remaining.len());
        let unit = &remaining[..unit_len];
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(invalid)?;
        nanos += value * scale;
        remaining = &remaining[unit_len..];
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// A duration rounded to milliseconds as Go prints it (`326ms`, `1.5s`, `2m3.25s`): how
/// durations read in messages.
pub fn format(d: Duration) -> String {
    let millis = d.as_millis();
    if millis < 1000 {
        return format!("{millis}ms");
    }
    let minutes = millis / 60_000;
    let rest = millis % 60_000;
    let seconds = format!("{}.{:03}", rest / 1000, rest % 1000);
    let seconds = seconds.trim_end_matches('0').trim_end_matches('.');
    if minutes == 0 {
        format!("{seconds}s")
    } else {
        format!("{minutes}m{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn reads_go_durations() {
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("3us").unwrap(), Duration::from_micros(3));
        assert_eq!(parse("7ns").unwrap(), Duration::from_nanos(7));
    }

    #[test]
    fn rejects_other_forms() {
        for text in ["", "10", "s", "1x", "-1s", "1..5s", ".s", "1 s"] {
            assert!(parse(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn formats_as_go_prints() {
        assert_eq!(super::format(Duration::from_micros(326_400)), "326ms");
        assert_eq!(super::format(Duration::from_millis(1500)), "1.5s");
        assert_eq!(super::format(Duration::from_millis(2000)), "2s");
        assert_eq!(super::format(Duration::from_millis(123_250)), "2m3.25s");
    }
}

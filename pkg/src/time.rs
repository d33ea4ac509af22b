//! Record times as signed nanoseconds since the Unix epoch: how the metadata store keeps them
//! (a time before 1970 stays representable, to the nanosecond); and RFC 3339 text, the form
//! of time labels such as `containerd.io/gc.expire`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `time` as nanoseconds since the epoch, saturating beyond ±292 years.
pub fn to_unix_nanos(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos())
            .map(|n| -n)
            .unwrap_or(i64::MIN),
    }
}

/// The inverse of [`to_unix_nanos`].
pub fn from_unix_nanos(nanos: i64) -> SystemTime {
    if nanos >= 0 {
        UNIX_EPOCH + Duration::from_nanos(nanos as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(nanos.unsigned_abs())
    }
}

/// An RFC 3339 time (`2026-12-07T12:00:00Z`, any offset, optional fraction), as Go's
/// `time.Parse(time.RFC3339, …)` accepts it; `None` if it is not one.
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    // chrono also takes a space for the `T`; Go's layout does not.
    if text.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(SystemTime::from)
}

/// `time` in UTC as RFC 3339 with whole seconds (`2026-12-07T12:00:00Z`).
pub fn format_rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_refuses_other_text() {
        let at = UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        assert_eq!(parse_rfc3339(&format_rfc3339(at)), Some(at));
        assert_eq!(
            parse_rfc3339("2026-12-07T13:00:00+01:00"),
            parse_rfc3339("2026-12-07T12:00:00Z")
        );
        for bad in ["", "tomorrow", "2026-12-07", "2026-12-07 12:00:00Z"] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_to_the_nanosecond() {
        for time in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            UNIX_EPOCH - Duration::new(10, 1),
        ] {
            assert_eq!(from_unix_nanos(to_unix_nanos(time)), time);
        }
    }

    #[test]
    fn saturates_far_from_the_epoch() {
        let far = UNIX_EPOCH + Duration::from_secs(u64::MAX / 2);
        assert_eq!(to_unix_nanos(far), i64::MAX);
    }
}

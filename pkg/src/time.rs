//! Record times as signed nanoseconds since the Unix epoch: how the metadata store keeps them
//! (a time before 1970 stays representable, to the nanosecond).

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

#[cfg(test)]
mod tests {
    use super::*;

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

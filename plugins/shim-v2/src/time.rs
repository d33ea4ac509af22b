//! Times as the driver keeps them (Unix nanoseconds, the runtime interface's unit) and as the
//! shim's messages carry them (protobuf timestamps).

/// A timestamp as Unix nanoseconds; absent is 0 ("not exited").
pub fn nanos(t: Option<prost_types::Timestamp>) -> i64 {
    t.map(|t| {
        t.seconds
            .saturating_mul(1_000_000_000)
            .saturating_add(i64::from(t.nanos))
    })
    .unwrap_or(0)
}

/// Unix nanoseconds as a timestamp.
pub fn timestamp(nanos: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

/// Now, in Unix nanoseconds.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_round_trip_and_absent_is_zero() {
        for n in [0, 1_500_000_000, -1, 1_765_000_000_123_456_789] {
            assert_eq!(nanos(Some(timestamp(n))), n);
        }
        assert_eq!(nanos(None), 0);
    }
}

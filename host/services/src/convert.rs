//! Wire conversions shared by the services.

use std::time::SystemTime;

/// A record time as a protobuf timestamp (times before 1970 included).
pub fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(time)
}

/// A time kept as nanoseconds since the epoch, as a protobuf timestamp.
pub fn timestamp_from_nanos(nanos: i64) -> prost_types::Timestamp {
    timestamp(rcontainerd_pkg::time::from_unix_nanos(nanos))
}

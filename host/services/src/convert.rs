//! Wire conversions shared by the services.

use std::time::SystemTime;

use rcontainerd_api::types;
use rcontainerd_metadata::Descriptor;
use rcontainerd_mount::Mount;

/// A record time as a protobuf timestamp (times before 1970 included).
pub fn timestamp(time: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(time)
}

/// A time kept as nanoseconds since the epoch, as a protobuf timestamp.
pub fn timestamp_from_nanos(nanos: i64) -> prost_types::Timestamp {
    timestamp(rcontainerd_pkg::time::from_unix_nanos(nanos))
}

pub fn descriptor_to_wire(d: Descriptor) -> types::Descriptor {
    types::Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        annotations: d.annotations.into_iter().collect(),
    }
}

/// A missing descriptor reads as an empty one (which validation then refuses).
pub fn descriptor_from_wire(d: Option<types::Descriptor>) -> Descriptor {
    let d = d.unwrap_or_default();
    Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        annotations: d.annotations.into_iter().collect(),
    }
}

pub fn mounts_to_wire(mounts: Vec<Mount>) -> Vec<types::Mount> {
    mounts
        .into_iter()
        .map(|m| types::Mount {
            r#type: m.mount_type,
            source: m.source,
            target: m.target,
            options: m.options,
        })
        .collect()
}

pub fn mounts_from_wire(mounts: Vec<types::Mount>) -> Vec<Mount> {
    mounts
        .into_iter()
        .map(|m| Mount {
            mount_type: m.r#type,
            source: m.source,
            target: m.target,
            options: m.options,
        })
        .collect()
}

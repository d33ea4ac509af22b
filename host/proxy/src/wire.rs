//! Driver types to and from containerd's wire messages, both ways: the
//! proxy clients and the server of one driver convert through the same
//! functions, so a field mapped one way is mapped back the same.

/// Unix nanoseconds of a wire timestamp (0 when absent).
pub(crate) fn nanos(t: Option<prost_types::Timestamp>) -> i64 {
    t.map(|t| t.seconds.saturating_mul(1_000_000_000) + i64::from(t.nanos))
        .unwrap_or(0)
}

/// The wire timestamp of unix nanoseconds (the inverse of [`nanos`]).
pub(crate) fn timestamp(nanos: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: nanos.div_euclid(1_000_000_000),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

pub(crate) mod snapshot {
    use rcontainerd_api::services::snapshots as wire;
    use rcontainerd_api::types;
    use rcontainerd_plugin_api::snapshot::{Info, Kind, Mount};

    use super::{nanos, timestamp};

    pub(crate) fn kind_to_wire(kind: Kind) -> wire::Kind {
        match kind {
            Kind::View => wire::Kind::View,
            Kind::Active => wire::Kind::Active,
            Kind::Committed => wire::Kind::Committed,
        }
    }

    pub(crate) fn info_to_wire(info: Info) -> wire::Info {
        wire::Info {
            name: info.name,
            parent: info.parent,
            kind: kind_to_wire(info.kind) as i32,
            labels: info.labels.into_iter().collect(),
            created_at: Some(timestamp(info.created)),
            updated_at: Some(timestamp(info.updated)),
        }
    }

    /// An unknown kind reads as committed.
    pub(crate) fn info_from_wire(info: wire::Info) -> Info {
        let kind = match wire::Kind::try_from(info.kind) {
            Ok(wire::Kind::Active) => Kind::Active,
            Ok(wire::Kind::View) => Kind::View,
            _ => Kind::Committed,
        };
        Info {
            kind,
            name: info.name,
            parent: info.parent,
            labels: info.labels.into_iter().collect(),
            created: nanos(info.created_at),
            updated: nanos(info.updated_at),
        }
    }

    pub(crate) fn mounts_to_wire(mounts: Vec<Mount>) -> Vec<types::Mount> {
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

    pub(crate) fn mounts_from_wire(mounts: Vec<types::Mount>) -> Vec<Mount> {
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
}

pub(crate) mod content {
    use rcontainerd_api::services::content as wire;
    use rcontainerd_plugin_api::content::{Info, Status};

    use super::{nanos, timestamp};

    pub(crate) fn info_to_wire(info: Info) -> wire::Info {
        wire::Info {
            digest: info.digest,
            size: info.size,
            created_at: Some(timestamp(info.created)),
            updated_at: Some(timestamp(info.updated)),
            labels: info.labels.into_iter().collect(),
        }
    }

    pub(crate) fn info_from_wire(info: wire::Info) -> Info {
        Info {
            digest: info.digest,
            size: info.size,
            created: nanos(info.created_at),
            updated: nanos(info.updated_at),
            labels: info.labels.into_iter().collect(),
        }
    }

    pub(crate) fn status_to_wire(status: Status) -> wire::Status {
        wire::Status {
            started_at: Some(timestamp(status.started_at)),
            updated_at: Some(timestamp(status.updated_at)),
            r#ref: status.reference,
            offset: status.offset,
            total: status.total,
            expected: status.expected,
        }
    }

    pub(crate) fn status_from_wire(status: wire::Status) -> Status {
        Status {
            reference: status.r#ref,
            offset: status.offset,
            total: status.total,
            expected: status.expected,
            started_at: nanos(status.started_at),
            updated_at: nanos(status.updated_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        for n in [0, 1, 1_700_000_000_123_456_789, -1] {
            assert_eq!(nanos(Some(timestamp(n))), n);
        }
    }
}

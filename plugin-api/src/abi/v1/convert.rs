//! Conversions between the plain types and the generation-1 FFI types.

use abi_stable::std_types::{ROption, RString, RVec};
use rcontainerd_plugin_abi_v1::{
    content::{FfiContentInfo, FfiContentStatus, FfiWriterOptions},
    error::{FfiError, FfiErrorKind, FfiKeyValue},
    manifest::{FfiInitContext, FfiManifest, FfiPanicStrategy},
    runtime::{FfiCreateTask, FfiExit, FfiTaskState, FfiTaskStatus},
    snapshot::{FfiMount, FfiSnapshotInfo, FfiSnapshotKind, FfiUsage},
};

use crate::{
    content, runtime,
    snapshot::{self, Labels},
    ErrorKind, InitContext, Manifest, PanicStrategy, PluginError,
};

pub(crate) fn strings_to_ffi(values: &[String]) -> RVec<RString> {
    values.iter().map(|v| RString::from(v.as_str())).collect()
}

pub(crate) fn strings_from_ffi(values: RVec<RString>) -> Vec<String> {
    values.into_iter().map(String::from).collect()
}

pub(crate) fn labels_to_ffi(labels: Labels) -> RVec<FfiKeyValue> {
    labels
        .into_iter()
        .map(|(key, value)| FfiKeyValue {
            key: key.into(),
            value: value.into(),
        })
        .collect()
}

pub(crate) fn labels_from_ffi(labels: RVec<FfiKeyValue>) -> Labels {
    labels
        .into_iter()
        .map(|kv| (kv.key.into(), kv.value.into()))
        .collect()
}

impl From<PluginError> for FfiError {
    fn from(err: PluginError) -> Self {
        let kind = match err.kind {
            ErrorKind::InvalidArgument => FfiErrorKind::InvalidArgument,
            ErrorKind::NotFound => FfiErrorKind::NotFound,
            ErrorKind::AlreadyExists => FfiErrorKind::AlreadyExists,
            ErrorKind::FailedPrecondition => FfiErrorKind::FailedPrecondition,
            ErrorKind::Unavailable => FfiErrorKind::Unavailable,
            ErrorKind::NotImplemented => FfiErrorKind::NotImplemented,
            ErrorKind::Internal => FfiErrorKind::Internal,
            ErrorKind::Unknown => FfiErrorKind::Unknown,
            ErrorKind::Skip => FfiErrorKind::Skip,
        };
        FfiError {
            kind,
            message: err.message.into(),
        }
    }
}

impl From<FfiError> for PluginError {
    fn from(err: FfiError) -> Self {
        let kind = match err.kind {
            FfiErrorKind::InvalidArgument => ErrorKind::InvalidArgument,
            FfiErrorKind::NotFound => ErrorKind::NotFound,
            FfiErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            FfiErrorKind::FailedPrecondition => ErrorKind::FailedPrecondition,
            FfiErrorKind::Unavailable => ErrorKind::Unavailable,
            FfiErrorKind::NotImplemented => ErrorKind::NotImplemented,
            FfiErrorKind::Internal => ErrorKind::Internal,
            FfiErrorKind::Unknown => ErrorKind::Unknown,
            FfiErrorKind::Skip => ErrorKind::Skip,
        };
        PluginError::new(kind, err.message)
    }
}

impl From<Manifest> for FfiManifest {
    fn from(m: Manifest) -> Self {
        FfiManifest {
            plugin_type: m.plugin_type.into(),
            id: m.id.into(),
            requires: strings_to_ffi(&m.requires),
            plugin_version: m.plugin_version.into(),
            abi_generation: m.abi_generation,
            panic_strategy: match m.panic_strategy {
                PanicStrategy::Unwind => FfiPanicStrategy::Unwind,
                PanicStrategy::Abort => FfiPanicStrategy::Abort,
            },
            capabilities: strings_to_ffi(&m.capabilities),
            default_config: m.default_config.into(),
        }
    }
}

impl From<FfiManifest> for Manifest {
    fn from(m: FfiManifest) -> Self {
        Manifest {
            plugin_type: m.plugin_type.into(),
            id: m.id.into(),
            requires: strings_from_ffi(m.requires),
            plugin_version: m.plugin_version.into(),
            abi_generation: m.abi_generation,
            panic_strategy: match m.panic_strategy {
                FfiPanicStrategy::Unwind => PanicStrategy::Unwind,
                FfiPanicStrategy::Abort => PanicStrategy::Abort,
            },
            capabilities: strings_from_ffi(m.capabilities),
            default_config: m.default_config.into(),
        }
    }
}

impl From<InitContext> for FfiInitContext {
    fn from(ctx: InitContext) -> Self {
        FfiInitContext {
            root: ctx.root.to_string_lossy().as_ref().into(),
            state: ctx.state.to_string_lossy().as_ref().into(),
            config: ctx.config.into(),
            grpc_address: ctx.grpc_address.into(),
            ttrpc_address: ctx.ttrpc_address.into(),
        }
    }
}

impl From<FfiInitContext> for InitContext {
    fn from(ctx: FfiInitContext) -> Self {
        InitContext {
            root: String::from(ctx.root).into(),
            state: String::from(ctx.state).into(),
            config: ctx.config.into(),
            grpc_address: ctx.grpc_address.into(),
            ttrpc_address: ctx.ttrpc_address.into(),
        }
    }
}

impl From<snapshot::Info> for FfiSnapshotInfo {
    fn from(info: snapshot::Info) -> Self {
        FfiSnapshotInfo {
            kind: match info.kind {
                snapshot::Kind::View => FfiSnapshotKind::View,
                snapshot::Kind::Active => FfiSnapshotKind::Active,
                snapshot::Kind::Committed => FfiSnapshotKind::Committed,
            },
            name: info.name.into(),
            parent: info.parent.into(),
            labels: labels_to_ffi(info.labels),
            created_unix_nanos: info.created,
            updated_unix_nanos: info.updated,
        }
    }
}

impl From<FfiSnapshotInfo> for snapshot::Info {
    fn from(info: FfiSnapshotInfo) -> Self {
        snapshot::Info {
            kind: match info.kind {
                FfiSnapshotKind::View => snapshot::Kind::View,
                FfiSnapshotKind::Active => snapshot::Kind::Active,
                FfiSnapshotKind::Committed => snapshot::Kind::Committed,
            },
            name: info.name.into(),
            parent: info.parent.into(),
            labels: labels_from_ffi(info.labels),
            created: info.created_unix_nanos,
            updated: info.updated_unix_nanos,
        }
    }
}

impl From<snapshot::Mount> for FfiMount {
    fn from(m: snapshot::Mount) -> Self {
        FfiMount {
            mount_type: m.mount_type.into(),
            source: m.source.into(),
            target: m.target.into(),
            options: strings_to_ffi(&m.options),
        }
    }
}

impl From<FfiMount> for snapshot::Mount {
    fn from(m: FfiMount) -> Self {
        snapshot::Mount {
            mount_type: m.mount_type.into(),
            source: m.source.into(),
            target: m.target.into(),
            options: strings_from_ffi(m.options),
        }
    }
}

impl From<snapshot::Usage> for FfiUsage {
    fn from(u: snapshot::Usage) -> Self {
        FfiUsage {
            size: u.size,
            inodes: u.inodes,
        }
    }
}

impl From<FfiUsage> for snapshot::Usage {
    fn from(u: FfiUsage) -> Self {
        snapshot::Usage {
            size: u.size,
            inodes: u.inodes,
        }
    }
}

impl From<content::Info> for FfiContentInfo {
    fn from(info: content::Info) -> Self {
        FfiContentInfo {
            digest: info.digest.into(),
            size: info.size,
            created_unix_nanos: info.created,
            updated_unix_nanos: info.updated,
            labels: labels_to_ffi(info.labels),
        }
    }
}

impl From<FfiContentInfo> for content::Info {
    fn from(info: FfiContentInfo) -> Self {
        content::Info {
            digest: info.digest.into(),
            size: info.size,
            created: info.created_unix_nanos,
            updated: info.updated_unix_nanos,
            labels: labels_from_ffi(info.labels),
        }
    }
}

impl From<content::Status> for FfiContentStatus {
    fn from(s: content::Status) -> Self {
        FfiContentStatus {
            reference: s.reference.into(),
            offset: s.offset,
            total: s.total,
            expected: s.expected.into(),
            started_unix_nanos: s.started_at,
            updated_unix_nanos: s.updated_at,
        }
    }
}

impl From<FfiContentStatus> for content::Status {
    fn from(s: FfiContentStatus) -> Self {
        content::Status {
            reference: s.reference.into(),
            offset: s.offset,
            total: s.total,
            expected: s.expected.into(),
            started_at: s.started_unix_nanos,
            updated_at: s.updated_unix_nanos,
        }
    }
}

impl From<content::WriterOptions> for FfiWriterOptions {
    fn from(o: content::WriterOptions) -> Self {
        FfiWriterOptions {
            reference: o.reference.into(),
            expected_size: o.expected_size.into(),
            expected_digest: match o.expected_digest {
                Some(digest) => ROption::RSome(digest.into()),
                None => ROption::RNone,
            },
        }
    }
}

impl From<FfiWriterOptions> for content::WriterOptions {
    fn from(o: FfiWriterOptions) -> Self {
        content::WriterOptions {
            reference: o.reference.into(),
            expected_size: o.expected_size.into_option(),
            expected_digest: o.expected_digest.into_option().map(String::from),
        }
    }
}

impl From<runtime::CreateTask> for FfiCreateTask {
    fn from(r: runtime::CreateTask) -> Self {
        FfiCreateTask {
            namespace: r.namespace.into(),
            id: r.id.into(),
            bundle: r.bundle.into(),
            rootfs: r.rootfs.into_iter().map(FfiMount::from).collect(),
            stdin: r.stdin.into(),
            stdout: r.stdout.into(),
            stderr: r.stderr.into(),
            terminal: r.terminal,
            options: r.options.into(),
        }
    }
}

impl From<FfiCreateTask> for runtime::CreateTask {
    fn from(r: FfiCreateTask) -> Self {
        runtime::CreateTask {
            namespace: r.namespace.into(),
            id: r.id.into(),
            bundle: r.bundle.into(),
            rootfs: r.rootfs.into_iter().map(snapshot::Mount::from).collect(),
            stdin: r.stdin.into(),
            stdout: r.stdout.into(),
            stderr: r.stderr.into(),
            terminal: r.terminal,
            options: r.options.into(),
        }
    }
}

fn status_to_ffi(status: runtime::TaskStatus) -> FfiTaskStatus {
    match status {
        runtime::TaskStatus::Unknown => FfiTaskStatus::Unknown,
        runtime::TaskStatus::Created => FfiTaskStatus::Created,
        runtime::TaskStatus::Running => FfiTaskStatus::Running,
        runtime::TaskStatus::Stopped => FfiTaskStatus::Stopped,
        runtime::TaskStatus::Paused => FfiTaskStatus::Paused,
        runtime::TaskStatus::Pausing => FfiTaskStatus::Pausing,
    }
}

fn status_from_ffi(status: FfiTaskStatus) -> runtime::TaskStatus {
    match status {
        FfiTaskStatus::Unknown => runtime::TaskStatus::Unknown,
        FfiTaskStatus::Created => runtime::TaskStatus::Created,
        FfiTaskStatus::Running => runtime::TaskStatus::Running,
        FfiTaskStatus::Stopped => runtime::TaskStatus::Stopped,
        FfiTaskStatus::Paused => runtime::TaskStatus::Paused,
        FfiTaskStatus::Pausing => runtime::TaskStatus::Pausing,
    }
}

impl From<runtime::TaskState> for FfiTaskState {
    fn from(s: runtime::TaskState) -> Self {
        FfiTaskState {
            id: s.id.into(),
            pid: s.pid,
            status: status_to_ffi(s.status),
            exit_status: s.exit_status,
            exited_unix_nanos: s.exited_at,
        }
    }
}

impl From<FfiTaskState> for runtime::TaskState {
    fn from(s: FfiTaskState) -> Self {
        runtime::TaskState {
            id: s.id.into(),
            pid: s.pid,
            status: status_from_ffi(s.status),
            exit_status: s.exit_status,
            exited_at: s.exited_unix_nanos,
        }
    }
}

impl From<runtime::Exit> for FfiExit {
    fn from(e: runtime::Exit) -> Self {
        FfiExit {
            pid: e.pid,
            exit_status: e.exit_status,
            exited_unix_nanos: e.exited_at,
        }
    }
}

impl From<FfiExit> for runtime::Exit {
    fn from(e: FfiExit) -> Self {
        runtime::Exit {
            pid: e.pid,
            exit_status: e.exit_status,
            exited_at: e.exited_unix_nanos,
        }
    }
}

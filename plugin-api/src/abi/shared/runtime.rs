//! Task runtimes, the same object in every generation: conversions, the plugin-side export and
//! the host-side driver.

use std::sync::Arc;

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RResult, RStr},
};

use super::{
    ffi::{
        error::FfiError,
        runtime::{
            FfiCreateTask, FfiExit, FfiRuntime, FfiRuntimeBox, FfiRuntime_TO, FfiTaskState,
            FfiTaskStatus,
        },
    },
    guard, into_result,
    snapshot::{mount_from_ffi, mount_to_ffi},
    CatchDrop,
};
use crate::{runtime, Driver, Result};

/// A plugin's runtime as the FFI object its generation's `init` returns.
pub(crate) fn to_ffi(inner: Arc<dyn runtime::Runtime>, uri: Arc<str>) -> FfiRuntimeBox {
    FfiRuntime_TO::from_value(
        RuntimeExport {
            uri,
            inner: CatchDrop::new(inner),
        },
        TD_Opaque,
    )
}

/// A loaded library's runtime as a plain driver.
pub(crate) fn from_ffi(inner: FfiRuntimeBox) -> Driver {
    Driver::Runtime(Arc::new(ForeignRuntime { inner }))
}

struct RuntimeExport {
    uri: Arc<str>,
    inner: CatchDrop<Arc<dyn runtime::Runtime>>,
}

impl FfiRuntime for RuntimeExport {
    fn create(&self, request: FfiCreateTask) -> RResult<FfiTaskState, FfiError> {
        guard(&self.uri, || {
            self.inner.create(request.into()).map(Into::into)
        })
    }

    fn start(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<u32, FfiError> {
        guard(&self.uri, || {
            self.inner.start(namespace.as_str(), id.as_str())
        })
    }

    fn state(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<FfiTaskState, FfiError> {
        guard(&self.uri, || {
            self.inner
                .state(namespace.as_str(), id.as_str())
                .map(Into::into)
        })
    }

    fn kill(
        &self,
        namespace: RStr<'_>,
        id: RStr<'_>,
        signal: u32,
        all: bool,
    ) -> RResult<(), FfiError> {
        guard(&self.uri, || {
            self.inner
                .kill(namespace.as_str(), id.as_str(), signal, all)
        })
    }

    fn delete(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<FfiExit, FfiError> {
        guard(&self.uri, || {
            self.inner
                .delete(namespace.as_str(), id.as_str())
                .map(Into::into)
        })
    }

    fn wait(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<FfiExit, FfiError> {
        guard(&self.uri, || {
            self.inner
                .wait(namespace.as_str(), id.as_str())
                .map(Into::into)
        })
    }
}

/// A task runtime living in a loaded library.
struct ForeignRuntime {
    inner: FfiRuntimeBox,
}

impl runtime::Runtime for ForeignRuntime {
    fn create(&self, request: runtime::CreateTask) -> Result<runtime::TaskState> {
        into_result(self.inner.create(request.into())).map(Into::into)
    }

    fn start(&self, namespace: &str, id: &str) -> Result<u32> {
        into_result(
            self.inner
                .start(RStr::from_str(namespace), RStr::from_str(id)),
        )
    }

    fn state(&self, namespace: &str, id: &str) -> Result<runtime::TaskState> {
        into_result(
            self.inner
                .state(RStr::from_str(namespace), RStr::from_str(id)),
        )
        .map(Into::into)
    }

    fn kill(&self, namespace: &str, id: &str, signal: u32, all: bool) -> Result<()> {
        into_result(
            self.inner
                .kill(RStr::from_str(namespace), RStr::from_str(id), signal, all),
        )
    }

    fn delete(&self, namespace: &str, id: &str) -> Result<runtime::Exit> {
        into_result(
            self.inner
                .delete(RStr::from_str(namespace), RStr::from_str(id)),
        )
        .map(Into::into)
    }

    fn wait(&self, namespace: &str, id: &str) -> Result<runtime::Exit> {
        into_result(
            self.inner
                .wait(RStr::from_str(namespace), RStr::from_str(id)),
        )
        .map(Into::into)
    }
}

impl From<runtime::CreateTask> for FfiCreateTask {
    fn from(r: runtime::CreateTask) -> Self {
        FfiCreateTask {
            namespace: r.namespace.into(),
            id: r.id.into(),
            bundle: r.bundle.into(),
            rootfs: r.rootfs.into_iter().map(mount_to_ffi).collect(),
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
            rootfs: r.rootfs.into_iter().map(mount_from_ffi).collect(),
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

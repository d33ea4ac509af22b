//! Task runtimes across the boundary: conversions, the plugin-side export and the host-side
//! driver of the runtime object, and what becomes of the older generations' placeholder.
//!
//! The runtime object was first frozen in generation 3 (`rcontainerd-plugin-abi-v3`), so it is
//! named from that crate; later generations re-export it and share these adapters.
//!
//! Generations 1 and 2 carry a runtime *placeholder* (generation 1's `FfiRuntime`: create,
//! start, state, kill, delete, wait over a host-made bundle) that no driver ever used and that
//! cannot carry the runtime interface (the driver makes the bundle from the spec, exec
//! processes, stdio, events, …). A runtime offered through it is refused at init, on both sides
//! of the boundary, with [`PLACEHOLDER_REFUSED`] rather than half-served.

use std::{sync::Arc, time::Duration};

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RStr, RVec},
};
use rcontainerd_plugin_abi_v3::runtime::{
    FfiAnyValue, FfiConnection, FfiCreateTask, FfiCreatedTask, FfiExecProcess, FfiExit,
    FfiProcessInfo, FfiProcessRef, FfiProcessState, FfiRuntime, FfiRuntimeBox, FfiRuntimeEvent,
    FfiRuntime_TO, FfiStdio, FfiTaskInfo, FfiTaskStatus,
};

use super::{
    ffi::{
        error::{FfiError, FfiKeyValue},
        runtime::FfiRuntimeBox as PlaceholderBox,
    },
    guard, into_result, labels_from_ffi, labels_to_ffi,
    snapshot::{mount_from_ffi, mount_to_ffi},
    CatchDrop,
};
use crate::{
    runtime::{self, ProcessRef},
    Driver, PluginError, Result,
};

/// Why a runtime driver offered through generation 1 or 2 is refused.
pub(crate) const PLACEHOLDER_REFUSED: &str = "runtime drivers need ABI generation 3";

/// Plugin side, generations 1 and 2: a plugin whose init returned a runtime cannot export it.
/// Called inside the init guard, which also covers dropping the driver.
pub(crate) fn refuse_export<T>(inner: Arc<dyn runtime::Runtime>, uri: Arc<str>) -> Result<T> {
    drop(inner);
    Err(PluginError::failed_precondition(format!(
        "plugin {uri}: {PLACEHOLDER_REFUSED} (export it with export_plugin!)"
    )))
}

/// Host side, generations 1 and 2: a library that returned a placeholder runtime object. (Its
/// drop runs the plugin's, which guards itself.)
pub(crate) fn refuse_foreign(inner: PlaceholderBox) -> Result<Driver> {
    drop(inner);
    Err(PluginError::failed_precondition(PLACEHOLDER_REFUSED))
}

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
pub(crate) fn from_ffi(inner: FfiRuntimeBox) -> Result<Driver> {
    Ok(Driver::Runtime(Arc::new(ForeignRuntime { inner })))
}

struct RuntimeExport {
    uri: Arc<str>,
    inner: CatchDrop<Arc<dyn runtime::Runtime>>,
}

impl FfiRuntime for RuntimeExport {
    fn create(&self, request: FfiCreateTask) -> RResult<FfiCreatedTask, FfiError> {
        guard(&self.uri, || {
            self.inner.create(request.into()).map(Into::into)
        })
    }

    fn start(&self, process: FfiProcessRef) -> RResult<u32, FfiError> {
        guard(&self.uri, || self.inner.start(&process.into()))
    }

    fn delete(&self, process: FfiProcessRef) -> RResult<FfiExit, FfiError> {
        guard(&self.uri, || {
            self.inner.delete(&process.into()).map(exit_to_ffi)
        })
    }

    fn kill(&self, process: FfiProcessRef, signal: u32, all: bool) -> RResult<(), FfiError> {
        guard(&self.uri, || self.inner.kill(&process.into(), signal, all))
    }

    fn exec(&self, request: FfiExecProcess) -> RResult<(), FfiError> {
        guard(&self.uri, || self.inner.exec(request.into()))
    }

    fn pids(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<RVec<FfiProcessInfo>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .pids(namespace.as_str(), id.as_str())
                .map(|pids| pids.into_iter().map(Into::into).collect())
        })
    }

    fn pause(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<(), FfiError> {
        guard(&self.uri, || {
            self.inner.pause(namespace.as_str(), id.as_str())
        })
    }

    fn resume(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<(), FfiError> {
        guard(&self.uri, || {
            self.inner.resume(namespace.as_str(), id.as_str())
        })
    }

    fn update(
        &self,
        namespace: RStr<'_>,
        id: RStr<'_>,
        resources: ROption<FfiAnyValue>,
        annotations: RVec<FfiKeyValue>,
    ) -> RResult<(), FfiError> {
        guard(&self.uri, || {
            self.inner.update(
                namespace.as_str(),
                id.as_str(),
                any_from_ffi(resources),
                labels_from_ffi(annotations),
            )
        })
    }

    fn stats(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<ROption<FfiAnyValue>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .stats(namespace.as_str(), id.as_str())
                .map(any_to_ffi)
        })
    }

    fn close_io(&self, process: FfiProcessRef, stdin: bool) -> RResult<(), FfiError> {
        guard(&self.uri, || self.inner.close_io(&process.into(), stdin))
    }

    fn resize_pty(&self, process: FfiProcessRef, width: u32, height: u32) -> RResult<(), FfiError> {
        guard(&self.uri, || {
            self.inner.resize_pty(&process.into(), width, height)
        })
    }

    fn state(&self, process: FfiProcessRef) -> RResult<FfiProcessState, FfiError> {
        guard(&self.uri, || {
            self.inner.state(&process.into()).map(Into::into)
        })
    }

    fn wait(&self, process: FfiProcessRef) -> RResult<FfiExit, FfiError> {
        guard(&self.uri, || {
            self.inner.wait(&process.into()).map(exit_to_ffi)
        })
    }

    fn connect(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<FfiConnection, FfiError> {
        guard(&self.uri, || {
            self.inner
                .connect(namespace.as_str(), id.as_str())
                .map(|c| FfiConnection {
                    shim_pid: c.shim_pid,
                    task_pid: c.task_pid,
                })
        })
    }

    fn shutdown(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<(), FfiError> {
        guard(&self.uri, || {
            self.inner.shutdown(namespace.as_str(), id.as_str())
        })
    }

    fn tasks(&self) -> RResult<RVec<FfiTaskInfo>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .tasks()
                .map(|tasks| tasks.into_iter().map(Into::into).collect())
        })
    }

    fn next_events(&self, timeout_nanos: u64) -> RResult<RVec<FfiRuntimeEvent>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .next_events(Duration::from_nanos(timeout_nanos))
                .map(|events| events.into_iter().map(Into::into).collect())
        })
    }
}

/// A task runtime living in a loaded library.
struct ForeignRuntime {
    inner: FfiRuntimeBox,
}

impl runtime::Runtime for ForeignRuntime {
    fn create(&self, request: runtime::CreateTask) -> Result<runtime::CreatedTask> {
        into_result(self.inner.create(request.into())).map(Into::into)
    }

    fn start(&self, process: &ProcessRef) -> Result<u32> {
        into_result(self.inner.start(process.into()))
    }

    fn delete(&self, process: &ProcessRef) -> Result<runtime::Exit> {
        into_result(self.inner.delete(process.into())).map(exit_from_ffi)
    }

    fn kill(&self, process: &ProcessRef, signal: u32, all: bool) -> Result<()> {
        into_result(self.inner.kill(process.into(), signal, all))
    }

    fn exec(&self, request: runtime::ExecProcess) -> Result<()> {
        into_result(self.inner.exec(request.into()))
    }

    fn pids(&self, namespace: &str, id: &str) -> Result<Vec<runtime::ProcessInfo>> {
        Ok(into_result(
            self.inner
                .pids(RStr::from_str(namespace), RStr::from_str(id)),
        )?
        .into_iter()
        .map(Into::into)
        .collect())
    }

    fn pause(&self, namespace: &str, id: &str) -> Result<()> {
        into_result(
            self.inner
                .pause(RStr::from_str(namespace), RStr::from_str(id)),
        )
    }

    fn resume(&self, namespace: &str, id: &str) -> Result<()> {
        into_result(
            self.inner
                .resume(RStr::from_str(namespace), RStr::from_str(id)),
        )
    }

    fn update(
        &self,
        namespace: &str,
        id: &str,
        resources: Option<runtime::AnyValue>,
        annotations: std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        into_result(self.inner.update(
            RStr::from_str(namespace),
            RStr::from_str(id),
            any_to_ffi(resources),
            labels_to_ffi(annotations),
        ))
    }

    fn stats(&self, namespace: &str, id: &str) -> Result<Option<runtime::AnyValue>> {
        into_result(
            self.inner
                .stats(RStr::from_str(namespace), RStr::from_str(id)),
        )
        .map(any_from_ffi)
    }

    fn close_io(&self, process: &ProcessRef, stdin: bool) -> Result<()> {
        into_result(self.inner.close_io(process.into(), stdin))
    }

    fn resize_pty(&self, process: &ProcessRef, width: u32, height: u32) -> Result<()> {
        into_result(self.inner.resize_pty(process.into(), width, height))
    }

    fn state(&self, process: &ProcessRef) -> Result<runtime::ProcessState> {
        into_result(self.inner.state(process.into())).map(Into::into)
    }

    fn wait(&self, process: &ProcessRef) -> Result<runtime::Exit> {
        into_result(self.inner.wait(process.into())).map(exit_from_ffi)
    }

    fn connect(&self, namespace: &str, id: &str) -> Result<runtime::Connection> {
        into_result(
            self.inner
                .connect(RStr::from_str(namespace), RStr::from_str(id)),
        )
        .map(|c| runtime::Connection {
            shim_pid: c.shim_pid,
            task_pid: c.task_pid,
        })
    }

    fn shutdown(&self, namespace: &str, id: &str) -> Result<()> {
        into_result(
            self.inner
                .shutdown(RStr::from_str(namespace), RStr::from_str(id)),
        )
    }

    fn tasks(&self) -> Result<Vec<runtime::TaskInfo>> {
        Ok(into_result(self.inner.tasks())?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    fn next_events(&self, timeout: Duration) -> Result<Vec<runtime::RuntimeEvent>> {
        // Saturates: u64 nanoseconds is 584 years.
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        Ok(into_result(self.inner.next_events(nanos))?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}

// Conversions. `From` where the plain type is this crate's; functions for the types that are
// both foreign (exits and statuses are the frozen ABI's, options are `Option`s).

fn any_to_ffi(value: Option<runtime::AnyValue>) -> ROption<FfiAnyValue> {
    value.map(FfiAnyValue::from).into()
}

fn any_from_ffi(value: ROption<FfiAnyValue>) -> Option<runtime::AnyValue> {
    value.into_option().map(Into::into)
}

fn exit_to_ffi(e: runtime::Exit) -> FfiExit {
    FfiExit {
        pid: e.pid,
        exit_status: e.exit_status,
        exited_unix_nanos: e.exited_at,
    }
}

fn exit_from_ffi(e: FfiExit) -> runtime::Exit {
    runtime::Exit {
        pid: e.pid,
        exit_status: e.exit_status,
        exited_at: e.exited_unix_nanos,
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

impl From<runtime::AnyValue> for FfiAnyValue {
    fn from(v: runtime::AnyValue) -> Self {
        FfiAnyValue {
            type_url: v.type_url.into(),
            value: v.value.into(),
        }
    }
}

impl From<FfiAnyValue> for runtime::AnyValue {
    fn from(v: FfiAnyValue) -> Self {
        runtime::AnyValue {
            type_url: v.type_url.into(),
            value: v.value.into(),
        }
    }
}

impl From<&ProcessRef> for FfiProcessRef {
    fn from(p: &ProcessRef) -> Self {
        FfiProcessRef {
            namespace: p.namespace.as_str().into(),
            id: p.id.as_str().into(),
            exec_id: p.exec_id.as_str().into(),
        }
    }
}

impl From<FfiProcessRef> for ProcessRef {
    fn from(p: FfiProcessRef) -> Self {
        ProcessRef {
            namespace: p.namespace.into(),
            id: p.id.into(),
            exec_id: p.exec_id.into(),
        }
    }
}

impl From<runtime::Stdio> for FfiStdio {
    fn from(s: runtime::Stdio) -> Self {
        FfiStdio {
            stdin: s.stdin.into(),
            stdout: s.stdout.into(),
            stderr: s.stderr.into(),
            terminal: s.terminal,
        }
    }
}

impl From<FfiStdio> for runtime::Stdio {
    fn from(s: FfiStdio) -> Self {
        runtime::Stdio {
            stdin: s.stdin.into(),
            stdout: s.stdout.into(),
            stderr: s.stderr.into(),
            terminal: s.terminal,
        }
    }
}

impl From<runtime::CreateTask> for FfiCreateTask {
    fn from(r: runtime::CreateTask) -> Self {
        FfiCreateTask {
            namespace: r.namespace.into(),
            id: r.id.into(),
            runtime: r.runtime.into(),
            spec: r.spec.into(),
            rootfs: r.rootfs.into_iter().map(mount_to_ffi).collect(),
            stdio: r.stdio.into(),
            options: any_to_ffi(r.options),
            checkpoint: r.checkpoint.into(),
        }
    }
}

impl From<FfiCreateTask> for runtime::CreateTask {
    fn from(r: FfiCreateTask) -> Self {
        runtime::CreateTask {
            namespace: r.namespace.into(),
            id: r.id.into(),
            runtime: r.runtime.into(),
            spec: r.spec.into(),
            rootfs: r.rootfs.into_iter().map(mount_from_ffi).collect(),
            stdio: r.stdio.into(),
            options: any_from_ffi(r.options),
            checkpoint: r.checkpoint.into(),
        }
    }
}

impl From<runtime::CreatedTask> for FfiCreatedTask {
    fn from(c: runtime::CreatedTask) -> Self {
        FfiCreatedTask {
            pid: c.pid,
            bundle: c.bundle.into(),
        }
    }
}

impl From<FfiCreatedTask> for runtime::CreatedTask {
    fn from(c: FfiCreatedTask) -> Self {
        runtime::CreatedTask {
            pid: c.pid,
            bundle: c.bundle.into(),
        }
    }
}

impl From<runtime::ExecProcess> for FfiExecProcess {
    fn from(r: runtime::ExecProcess) -> Self {
        FfiExecProcess {
            process: (&r.process).into(),
            stdio: r.stdio.into(),
            spec: any_to_ffi(r.spec),
        }
    }
}

impl From<FfiExecProcess> for runtime::ExecProcess {
    fn from(r: FfiExecProcess) -> Self {
        runtime::ExecProcess {
            process: r.process.into(),
            stdio: r.stdio.into(),
            spec: any_from_ffi(r.spec),
        }
    }
}

impl From<runtime::ProcessState> for FfiProcessState {
    fn from(s: runtime::ProcessState) -> Self {
        FfiProcessState {
            id: s.id.into(),
            exec_id: s.exec_id.into(),
            pid: s.pid,
            status: status_to_ffi(s.status),
            bundle: s.bundle.into(),
            stdio: s.stdio.into(),
            exit_status: s.exit_status,
            exited_unix_nanos: s.exited_at,
        }
    }
}

impl From<FfiProcessState> for runtime::ProcessState {
    fn from(s: FfiProcessState) -> Self {
        runtime::ProcessState {
            id: s.id.into(),
            exec_id: s.exec_id.into(),
            pid: s.pid,
            status: status_from_ffi(s.status),
            bundle: s.bundle.into(),
            stdio: s.stdio.into(),
            exit_status: s.exit_status,
            exited_at: s.exited_unix_nanos,
        }
    }
}

impl From<runtime::ProcessInfo> for FfiProcessInfo {
    fn from(p: runtime::ProcessInfo) -> Self {
        FfiProcessInfo {
            pid: p.pid,
            info: any_to_ffi(p.info),
        }
    }
}

impl From<FfiProcessInfo> for runtime::ProcessInfo {
    fn from(p: FfiProcessInfo) -> Self {
        runtime::ProcessInfo {
            pid: p.pid,
            info: any_from_ffi(p.info),
        }
    }
}

impl From<runtime::TaskInfo> for FfiTaskInfo {
    fn from(t: runtime::TaskInfo) -> Self {
        FfiTaskInfo {
            namespace: t.namespace.into(),
            id: t.id.into(),
            runtime: t.runtime.into(),
            bundle: t.bundle.into(),
        }
    }
}

impl From<FfiTaskInfo> for runtime::TaskInfo {
    fn from(t: FfiTaskInfo) -> Self {
        runtime::TaskInfo {
            namespace: t.namespace.into(),
            id: t.id.into(),
            runtime: t.runtime.into(),
            bundle: t.bundle.into(),
        }
    }
}

impl From<runtime::RuntimeEvent> for FfiRuntimeEvent {
    fn from(e: runtime::RuntimeEvent) -> Self {
        FfiRuntimeEvent {
            namespace: e.namespace.into(),
            topic: e.topic.into(),
            event: e.event.into(),
        }
    }
}

impl From<FfiRuntimeEvent> for runtime::RuntimeEvent {
    fn from(e: FfiRuntimeEvent) -> Self {
        runtime::RuntimeEvent {
            namespace: e.namespace.into(),
            topic: e.topic.into(),
            event: e.event.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The conversions in both directions, in-process (the loading tests cross a real library).

    use super::*;
    use crate::snapshot::Mount;

    fn any(tag: &str) -> runtime::AnyValue {
        runtime::AnyValue {
            type_url: format!("types.test/{tag}"),
            value: tag.as_bytes().to_vec(),
        }
    }

    fn stdio() -> runtime::Stdio {
        runtime::Stdio {
            stdin: "/run/fifo/in".into(),
            stdout: "file:///var/log/out".into(),
            stderr: "binary:///usr/bin/logger?x=1".into(),
            terminal: true,
        }
    }

    #[test]
    fn every_runtime_type_round_trips() {
        let create = runtime::CreateTask {
            namespace: "ns".into(),
            id: "task".into(),
            runtime: "io.containerd.runc.v2".into(),
            spec: b"{\"ociVersion\":\"1.0.2\"}".to_vec(),
            rootfs: vec![Mount {
                mount_type: "overlay".into(),
                source: "overlay".into(),
                target: String::new(),
                options: vec!["lowerdir=/a:/b".into(), "upperdir=/c".into()],
            }],
            stdio: stdio(),
            options: Some(any("options")),
            checkpoint: "/checkpoints/1".into(),
        };
        assert_eq!(
            runtime::CreateTask::from(FfiCreateTask::from(create.clone())),
            create
        );

        let exec = runtime::ExecProcess {
            process: ProcessRef::exec("ns", "task", "exec-1"),
            stdio: stdio(),
            spec: Some(any("process")),
        };
        assert_eq!(
            runtime::ExecProcess::from(FfiExecProcess::from(exec.clone())),
            exec
        );

        for status in [
            runtime::TaskStatus::Unknown,
            runtime::TaskStatus::Created,
            runtime::TaskStatus::Running,
            runtime::TaskStatus::Stopped,
            runtime::TaskStatus::Paused,
            runtime::TaskStatus::Pausing,
        ] {
            let state = runtime::ProcessState {
                id: "task".into(),
                exec_id: "exec-1".into(),
                pid: 42,
                status,
                bundle: "/run/bundle".into(),
                stdio: stdio(),
                exit_status: 137,
                exited_at: -1,
            };
            assert_eq!(
                runtime::ProcessState::from(FfiProcessState::from(state.clone())),
                state
            );
        }

        let exit = runtime::Exit {
            pid: 7,
            exit_status: 255,
            exited_at: i64::MAX,
        };
        assert_eq!(exit_from_ffi(exit_to_ffi(exit)), exit);
        for info in [None, Some(any("details"))] {
            let p = runtime::ProcessInfo { pid: 9, info };
            assert_eq!(
                runtime::ProcessInfo::from(FfiProcessInfo::from(p.clone())),
                p
            );
        }
        let task = runtime::TaskInfo {
            namespace: "ns".into(),
            id: "task".into(),
            runtime: "io.containerd.runc.v2".into(),
            bundle: "/run/bundle".into(),
        };
        assert_eq!(
            runtime::TaskInfo::from(FfiTaskInfo::from(task.clone())),
            task
        );
        let event = runtime::RuntimeEvent {
            namespace: "ns".into(),
            topic: "/tasks/exit".into(),
            event: any("containerd.events.TaskExit"),
        };
        assert_eq!(
            runtime::RuntimeEvent::from(FfiRuntimeEvent::from(event.clone())),
            event
        );
    }
}

//! The task runtime interface: tasks and their exec processes, named by [`FfiProcessRef`].
//!
//! The plain interface is `rcontainerd_plugin_api::runtime`; these are its FFI shapes.
//! Timestamps are unix nanoseconds; durations are nanoseconds (`u64`).

use abi_stable::{
    sabi_trait,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec},
    StableAbi,
};

/// Generation 1's task status and exit, unchanged (its runtime placeholder froze them).
pub use rcontainerd_plugin_abi_v2::runtime::{FfiExit, FfiTaskStatus};

use crate::{
    error::{FfiError, FfiKeyValue},
    snapshot::FfiMount,
};

/// A protobuf `Any` as the client encoded it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiAnyValue {
    pub type_url: RString,
    pub value: RVec<u8>,
}

/// A task (`exec_id` empty) or one of its exec processes.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiProcessRef {
    pub namespace: RString,
    pub id: RString,
    pub exec_id: RString,
}

/// Where a process's stdio goes.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiStdio {
    pub stdin: RString,
    pub stdout: RString,
    pub stderr: RString,
    pub terminal: bool,
}

/// A request to create a task; `spec` is the OCI runtime spec (JSON), `checkpoint` a path or
/// empty.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiCreateTask {
    pub namespace: RString,
    pub id: RString,
    pub runtime: RString,
    pub spec: RVec<u8>,
    pub rootfs: RVec<FfiMount>,
    pub stdio: FfiStdio,
    pub options: ROption<FfiAnyValue>,
    pub checkpoint: RString,
}

/// A created task: its init process and the bundle the driver made.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiCreatedTask {
    pub pid: u32,
    pub bundle: RString,
}

/// A request to add an exec process to a running task.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiExecProcess {
    pub process: FfiProcessRef,
    pub stdio: FfiStdio,
    pub spec: ROption<FfiAnyValue>,
}

/// A process's state; `exited_unix_nanos` is 0 while it runs.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiProcessState {
    pub id: RString,
    pub exec_id: RString,
    pub pid: u32,
    pub status: FfiTaskStatus,
    pub bundle: RString,
    pub stdio: FfiStdio,
    pub exit_status: u32,
    pub exited_unix_nanos: i64,
}

/// One process of a task.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiProcessInfo {
    pub pid: u32,
    pub info: ROption<FfiAnyValue>,
}

/// What runs the task (the shim) and the task's pid.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct FfiConnection {
    pub shim_pid: u32,
    pub task_pid: u32,
}

/// A task the driver holds.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiTaskInfo {
    pub namespace: RString,
    pub id: RString,
    pub runtime: RString,
    pub bundle: RString,
}

/// An event the driver publishes itself.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiRuntimeEvent {
    pub namespace: RString,
    pub topic: RString,
    pub event: FfiAnyValue,
}

/// A task runtime driver, method for method the plain `Runtime` trait.
#[sabi_trait]
pub trait FfiRuntime: Send + Sync {
    fn create(&self, request: FfiCreateTask) -> RResult<FfiCreatedTask, FfiError>;
    fn start(&self, process: FfiProcessRef) -> RResult<u32, FfiError>;
    fn delete(&self, process: FfiProcessRef) -> RResult<FfiExit, FfiError>;
    fn kill(&self, process: FfiProcessRef, signal: u32, all: bool) -> RResult<(), FfiError>;
    fn exec(&self, request: FfiExecProcess) -> RResult<(), FfiError>;
    fn pids(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<RVec<FfiProcessInfo>, FfiError>;
    fn pause(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<(), FfiError>;
    fn resume(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<(), FfiError>;
    fn update(
        &self,
        namespace: RStr<'_>,
        id: RStr<'_>,
        resources: ROption<FfiAnyValue>,
        annotations: RVec<FfiKeyValue>,
    ) -> RResult<(), FfiError>;
    fn stats(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<ROption<FfiAnyValue>, FfiError>;
    fn close_io(&self, process: FfiProcessRef, stdin: bool) -> RResult<(), FfiError>;
    fn resize_pty(&self, process: FfiProcessRef, width: u32, height: u32) -> RResult<(), FfiError>;
    fn state(&self, process: FfiProcessRef) -> RResult<FfiProcessState, FfiError>;
    fn wait(&self, process: FfiProcessRef) -> RResult<FfiExit, FfiError>;
    fn connect(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<FfiConnection, FfiError>;
    fn shutdown(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<(), FfiError>;
    fn tasks(&self) -> RResult<RVec<FfiTaskInfo>, FfiError>;
    /// Waits up to `timeout_nanos` for events the driver publishes itself.
    #[sabi(last_prefix_field)]
    fn next_events(&self, timeout_nanos: u64) -> RResult<RVec<FfiRuntimeEvent>, FfiError>;
}

/// An owned runtime object as it crosses the boundary.
pub type FfiRuntimeBox = FfiRuntime_TO<'static, RBox<()>>;

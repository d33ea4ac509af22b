//! The task runtime interface (ABI generation 3): what a driver that runs containers provides.
//!
//! A runtime driver owns its tasks' bundles and processes (for shim v2: one shim per task). The
//! host resolves containers, snapshots and stdio, and answers `Tasks.Wait` from the exit events
//! it receives — the shim's own (forwarded over ttrpc) and the driver's ([`Runtime::next_events`],
//! e.g. a shim that died without reporting its task's exit) — so no host thread blocks per task.
//!
//! Every call names a process by [`ProcessRef`]: a task is the process with an empty `exec_id`.

use std::{collections::BTreeMap, time::Duration};

use crate::{snapshot::Mount, Result};

/// A protobuf `Any` passed through as the client encoded it (the driver decodes what it knows).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnyValue {
    pub type_url: String,
    pub value: Vec<u8>,
}

/// A task (`exec_id` empty) or one of its exec processes.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessRef {
    pub namespace: String,
    /// The task's id, which is its container's id.
    pub id: String,
    /// Empty for the task's init process.
    pub exec_id: String,
}

impl ProcessRef {
    /// The task itself.
    pub fn task(namespace: impl Into<String>, id: impl Into<String>) -> Self {
        ProcessRef {
            namespace: namespace.into(),
            id: id.into(),
            exec_id: String::new(),
        }
    }

    /// One of the task's exec processes.
    pub fn exec(
        namespace: impl Into<String>,
        id: impl Into<String>,
        exec_id: impl Into<String>,
    ) -> Self {
        ProcessRef {
            namespace: namespace.into(),
            id: id.into(),
            exec_id: exec_id.into(),
        }
    }
}

/// Where a process's stdio goes: FIFO paths, `file:///path`, `binary://…`, or empty (none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stdio {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// A request to create a task: the driver makes the bundle and starts whatever runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateTask {
    pub namespace: String,
    pub id: String,
    /// The container's runtime name, e.g. `io.containerd.runc.v2`.
    pub runtime: String,
    /// The OCI runtime spec, JSON, written verbatim as the bundle's `config.json`.
    pub spec: Vec<u8>,
    /// The root filesystem's mounts (the container's snapshot); empty = `<bundle>/rootfs` as is.
    pub rootfs: Vec<Mount>,
    pub stdio: Stdio,
    /// Runtime options (`containerd.runc.v1.Options` for runc), from the request or the container.
    pub options: Option<AnyValue>,
    /// A checkpoint to restore from (a path); empty for none.
    pub checkpoint: String,
}

/// A created task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatedTask {
    /// The task's init process.
    pub pid: u32,
    /// The bundle directory the driver made.
    pub bundle: String,
}

/// A request to add an exec process to a running task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecProcess {
    pub process: ProcessRef,
    pub stdio: Stdio,
    /// The process spec (`types.containerd.io/opencontainers/runtime-spec/1/Process`, JSON).
    pub spec: Option<AnyValue>,
}

/// The life-cycle state of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TaskStatus {
    #[default]
    Unknown,
    Created,
    Running,
    Stopped,
    Paused,
    Pausing,
}

/// A process's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessState {
    pub id: String,
    pub exec_id: String,
    pub pid: u32,
    pub status: TaskStatus,
    pub bundle: String,
    pub stdio: Stdio,
    pub exit_status: u32,
    /// Unix nanoseconds; 0 while the process runs.
    pub exited_at: i64,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exit {
    pub pid: u32,
    pub exit_status: u32,
    /// Unix nanoseconds.
    pub exited_at: i64,
}

/// One process of a task, as `ListPids` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    /// Runtime-specific details (runc: `containerd.runc.v1.ProcessDetails` with the exec id).
    pub info: Option<AnyValue>,
}

/// The shim (or whatever runs the task) and the task's pid, as `Connect` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Connection {
    pub shim_pid: u32,
    pub task_pid: u32,
}

/// A task the driver holds, e.g. one it reconnected to after a daemon restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskInfo {
    pub namespace: String,
    pub id: String,
    pub runtime: String,
    pub bundle: String,
}

/// An event the driver publishes itself (the shim's own events reach the host directly).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeEvent {
    pub namespace: String,
    /// e.g. `/tasks/exit`.
    pub topic: String,
    /// The event message, its type URL bare as containerd's are (`containerd.events.TaskExit`).
    pub event: AnyValue,
}

/// A task runtime driver. Calls may block (the host makes them from blocking threads); a call
/// the runtime does not support answers `Unimplemented`.
pub trait Runtime: Send + Sync {
    /// Makes the bundle and creates the task (not yet started).
    fn create(&self, request: CreateTask) -> Result<CreatedTask>;
    /// Starts a created task or exec process; returns its pid.
    fn start(&self, process: &ProcessRef) -> Result<u32>;
    /// Deletes a stopped process. Deleting the task also ends whatever ran it (the shim) and
    /// removes the bundle.
    fn delete(&self, process: &ProcessRef) -> Result<Exit>;
    /// Signals a process; `all` signals every process of the task.
    fn kill(&self, process: &ProcessRef, signal: u32, all: bool) -> Result<()>;
    /// Adds an exec process to a running task (started by [`Runtime::start`]).
    fn exec(&self, request: ExecProcess) -> Result<()>;
    /// The task's processes.
    fn pids(&self, namespace: &str, id: &str) -> Result<Vec<ProcessInfo>>;
    fn pause(&self, namespace: &str, id: &str) -> Result<()>;
    fn resume(&self, namespace: &str, id: &str) -> Result<()>;
    /// Updates the task's resources (e.g. `opencontainers/runtime-spec/1/LinuxResources`).
    fn update(
        &self,
        namespace: &str,
        id: &str,
        resources: Option<AnyValue>,
        annotations: BTreeMap<String, String>,
    ) -> Result<()>;
    /// The task's metrics as the runtime reports them (runc: cgroup v1 or v2 stats).
    fn stats(&self, namespace: &str, id: &str) -> Result<Option<AnyValue>>;
    /// Closes a process's stdin.
    fn close_io(&self, process: &ProcessRef, stdin: bool) -> Result<()>;
    fn resize_pty(&self, process: &ProcessRef, width: u32, height: u32) -> Result<()>;
    fn state(&self, process: &ProcessRef) -> Result<ProcessState>;
    /// Blocks until the process exits. Hosts should prefer exit events; this exists for
    /// runtimes that have none and for the conformance suite.
    fn wait(&self, process: &ProcessRef) -> Result<Exit>;
    fn connect(&self, namespace: &str, id: &str) -> Result<Connection>;
    /// Ends whatever runs the task once it has no processes left.
    fn shutdown(&self, namespace: &str, id: &str) -> Result<()>;
    /// The tasks the driver holds, including those it reconnected to at init. The host asks
    /// before each call whether the task exists: answer from memory.
    fn tasks(&self) -> Result<Vec<TaskInfo>>;
    /// Waits up to `timeout` for events the driver publishes itself and returns them (empty on
    /// timeout). The host calls it from one thread in a loop.
    fn next_events(&self, timeout: Duration) -> Result<Vec<RuntimeEvent>>;
}

//! The task runtime interface. Its shape only for now; the runtime work fills it in.

use crate::{snapshot::Mount, Result};

/// A request to create a task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateTask {
    pub namespace: String,
    pub id: String,
    /// The OCI bundle directory.
    pub bundle: String,
    pub rootfs: Vec<Mount>,
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    /// Runtime-specific options, as the client encoded them.
    pub options: Vec<u8>,
}

/// The life-cycle state of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Unknown,
    Created,
    Running,
    Stopped,
    Paused,
    Pausing,
}

/// A task's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    pub id: String,
    pub pid: u32,
    pub status: TaskStatus,
    pub exit_status: u32,
    /// Unix nanoseconds; 0 while the task runs.
    pub exited_at: i64,
}

/// How a task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub pid: u32,
    pub exit_status: u32,
    /// Unix nanoseconds.
    pub exited_at: i64,
}

/// A task runtime driver.
pub trait Runtime: Send + Sync {
    fn create(&self, request: CreateTask) -> Result<TaskState>;
    /// Starts a created task; returns its pid.
    fn start(&self, namespace: &str, id: &str) -> Result<u32>;
    fn state(&self, namespace: &str, id: &str) -> Result<TaskState>;
    fn kill(&self, namespace: &str, id: &str, signal: u32, all: bool) -> Result<()>;
    fn delete(&self, namespace: &str, id: &str) -> Result<Exit>;
    /// Blocks until the task exits.
    fn wait(&self, namespace: &str, id: &str) -> Result<Exit>;
}

//! The task runtime interface (its shape; filled in by the runtime work).

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RStr, RString, RVec},
    StableAbi,
};

use crate::{error::FfiError, snapshot::FfiMount};

/// A request to create a task.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiCreateTask {
    pub namespace: RString,
    pub id: RString,
    pub bundle: RString,
    pub rootfs: RVec<FfiMount>,
    pub stdin: RString,
    pub stdout: RString,
    pub stderr: RString,
    pub terminal: bool,
    /// Runtime-specific options, as the client encoded them.
    pub options: RVec<u8>,
}

/// The life-cycle state of a task.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfiTaskStatus {
    Unknown,
    Created,
    Running,
    Stopped,
    Paused,
    Pausing,
}

/// A task's state. `exited_unix_nanos` is 0 while it runs.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiTaskState {
    pub id: RString,
    pub pid: u32,
    pub status: FfiTaskStatus,
    pub exit_status: u32,
    pub exited_unix_nanos: i64,
}

/// How a task ended.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct FfiExit {
    pub pid: u32,
    pub exit_status: u32,
    pub exited_unix_nanos: i64,
}

/// A task runtime driver.
#[sabi_trait]
pub trait FfiRuntime: Send + Sync {
    fn create(&self, request: FfiCreateTask) -> RResult<FfiTaskState, FfiError>;
    fn start(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<u32, FfiError>;
    fn state(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<FfiTaskState, FfiError>;
    fn kill(
        &self,
        namespace: RStr<'_>,
        id: RStr<'_>,
        signal: u32,
        all: bool,
    ) -> RResult<(), FfiError>;
    fn delete(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<FfiExit, FfiError>;
    #[sabi(last_prefix_field)]
    fn wait(&self, namespace: RStr<'_>, id: RStr<'_>) -> RResult<FfiExit, FfiError>;
}

/// An owned runtime object as it crosses the boundary.
pub type FfiRuntimeBox = FfiRuntime_TO<'static, RBox<()>>;

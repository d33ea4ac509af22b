//! Errors as they cross the boundary.

use abi_stable::{std_types::RString, StableAbi};

/// The class of a failure, mirroring containerd's error definitions plus `Skip`.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfiErrorKind {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    Unavailable,
    NotImplemented,
    Internal,
    Unknown,
    /// The plugin declines to run on this host; not a failure.
    Skip,
}

/// A failure returned by any plugin entry point.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiError {
    pub kind: FfiErrorKind,
    pub message: RString,
}

/// One `key = value` pair (labels, exports).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct FfiKeyValue {
    pub key: RString,
    pub value: RString,
}

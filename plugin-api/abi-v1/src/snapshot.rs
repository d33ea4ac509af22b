//! The snapshotter interface (containerd's snapshotter model).

use abi_stable::{
    sabi_trait,
    std_types::{RBox, RResult, RStr, RString, RVec},
    StableAbi,
};

use crate::error::{FfiError, FfiKeyValue};

/// The kind of a snapshot.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfiSnapshotKind {
    View,
    Active,
    Committed,
}

/// A snapshot's record. Timestamps are unix nanoseconds; an empty parent means none.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiSnapshotInfo {
    pub kind: FfiSnapshotKind,
    pub name: RString,
    pub parent: RString,
    pub labels: RVec<FfiKeyValue>,
    pub created_unix_nanos: i64,
    pub updated_unix_nanos: i64,
}

/// One mount a client performs to use a snapshot.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiMount {
    pub mount_type: RString,
    pub source: RString,
    pub target: RString,
    pub options: RVec<RString>,
}

/// Disk usage of a snapshot.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy)]
pub struct FfiUsage {
    pub size: i64,
    pub inodes: i64,
}

/// A snapshotter driver.
#[sabi_trait]
pub trait FfiSnapshotter: Send + Sync {
    fn stat(&self, key: RStr<'_>) -> RResult<FfiSnapshotInfo, FfiError>;
    fn update(
        &self,
        info: FfiSnapshotInfo,
        fieldpaths: RVec<RString>,
    ) -> RResult<FfiSnapshotInfo, FfiError>;
    fn usage(&self, key: RStr<'_>) -> RResult<FfiUsage, FfiError>;
    fn mounts(&self, key: RStr<'_>) -> RResult<RVec<FfiMount>, FfiError>;
    fn prepare(
        &self,
        key: RStr<'_>,
        parent: RStr<'_>,
        labels: RVec<FfiKeyValue>,
    ) -> RResult<RVec<FfiMount>, FfiError>;
    fn view(
        &self,
        key: RStr<'_>,
        parent: RStr<'_>,
        labels: RVec<FfiKeyValue>,
    ) -> RResult<RVec<FfiMount>, FfiError>;
    fn commit(
        &self,
        name: RStr<'_>,
        key: RStr<'_>,
        labels: RVec<FfiKeyValue>,
    ) -> RResult<(), FfiError>;
    fn remove(&self, key: RStr<'_>) -> RResult<(), FfiError>;
    fn walk(&self) -> RResult<RVec<FfiSnapshotInfo>, FfiError>;
    #[sabi(last_prefix_field)]
    fn cleanup(&self) -> RResult<(), FfiError>;
}

/// An owned snapshotter object as it crosses the boundary.
pub type FfiSnapshotterBox = FfiSnapshotter_TO<'static, RBox<()>>;

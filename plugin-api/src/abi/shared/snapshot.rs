//! Snapshotters, the same object in every generation: conversions, the plugin-side export and
//! the host-side driver.

use std::sync::Arc;

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RResult, RStr, RString, RVec},
};

use super::{
    ffi::{
        error::{FfiError, FfiKeyValue},
        snapshot::{
            FfiMount, FfiSnapshotInfo, FfiSnapshotKind, FfiSnapshotter, FfiSnapshotterBox,
            FfiSnapshotter_TO, FfiUsage,
        },
    },
    guard, into_result, labels_from_ffi, labels_to_ffi, strings_from_ffi, strings_to_ffi,
    CatchDrop,
};
use crate::{
    snapshot::{self, Labels},
    Driver, Result,
};

/// A plugin's snapshotter as the FFI object its generation's `init` returns.
pub(crate) fn to_ffi(inner: Arc<dyn snapshot::Snapshotter>, uri: Arc<str>) -> FfiSnapshotterBox {
    FfiSnapshotter_TO::from_value(
        SnapshotterExport {
            uri,
            inner: CatchDrop::new(inner),
        },
        TD_Opaque,
    )
}

/// A loaded library's snapshotter as a plain driver.
pub(crate) fn from_ffi(inner: FfiSnapshotterBox) -> Driver {
    Driver::Snapshotter(Arc::new(ForeignSnapshotter { inner }))
}

struct SnapshotterExport {
    uri: Arc<str>,
    inner: CatchDrop<Arc<dyn snapshot::Snapshotter>>,
}

fn mounts_to_ffi(mounts: Vec<snapshot::Mount>) -> RVec<FfiMount> {
    mounts.into_iter().map(mount_to_ffi).collect()
}

impl FfiSnapshotter for SnapshotterExport {
    fn stat(&self, key: RStr<'_>) -> RResult<FfiSnapshotInfo, FfiError> {
        guard(&self.uri, || self.inner.stat(key.as_str()).map(Into::into))
    }

    fn update(
        &self,
        info: FfiSnapshotInfo,
        fieldpaths: RVec<RString>,
    ) -> RResult<FfiSnapshotInfo, FfiError> {
        guard(&self.uri, || {
            self.inner
                .update(info.into(), &strings_from_ffi(fieldpaths))
                .map(Into::into)
        })
    }

    fn usage(&self, key: RStr<'_>) -> RResult<FfiUsage, FfiError> {
        guard(&self.uri, || self.inner.usage(key.as_str()).map(Into::into))
    }

    fn mounts(&self, key: RStr<'_>) -> RResult<RVec<FfiMount>, FfiError> {
        guard(&self.uri, || {
            self.inner.mounts(key.as_str()).map(mounts_to_ffi)
        })
    }

    fn prepare(
        &self,
        key: RStr<'_>,
        parent: RStr<'_>,
        labels: RVec<FfiKeyValue>,
    ) -> RResult<RVec<FfiMount>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .prepare(key.as_str(), parent.as_str(), labels_from_ffi(labels))
                .map(mounts_to_ffi)
        })
    }

    fn view(
        &self,
        key: RStr<'_>,
        parent: RStr<'_>,
        labels: RVec<FfiKeyValue>,
    ) -> RResult<RVec<FfiMount>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .view(key.as_str(), parent.as_str(), labels_from_ffi(labels))
                .map(mounts_to_ffi)
        })
    }

    fn commit(
        &self,
        name: RStr<'_>,
        key: RStr<'_>,
        labels: RVec<FfiKeyValue>,
    ) -> RResult<(), FfiError> {
        guard(&self.uri, || {
            self.inner
                .commit(name.as_str(), key.as_str(), labels_from_ffi(labels))
        })
    }

    fn remove(&self, key: RStr<'_>) -> RResult<(), FfiError> {
        guard(&self.uri, || self.inner.remove(key.as_str()))
    }

    fn walk(&self) -> RResult<RVec<FfiSnapshotInfo>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .walk()
                .map(|infos| infos.into_iter().map(Into::into).collect())
        })
    }

    fn cleanup(&self) -> RResult<(), FfiError> {
        guard(&self.uri, || self.inner.cleanup())
    }
}

/// A snapshotter living in a loaded library.
struct ForeignSnapshotter {
    inner: FfiSnapshotterBox,
}

fn mounts_from_ffi(result: RResult<RVec<FfiMount>, FfiError>) -> Result<Vec<snapshot::Mount>> {
    Ok(into_result(result)?
        .into_iter()
        .map(mount_from_ffi)
        .collect())
}

impl snapshot::Snapshotter for ForeignSnapshotter {
    fn stat(&self, key: &str) -> Result<snapshot::Info> {
        into_result(self.inner.stat(RStr::from_str(key))).map(Into::into)
    }

    fn update(&self, info: snapshot::Info, fieldpaths: &[String]) -> Result<snapshot::Info> {
        into_result(self.inner.update(info.into(), strings_to_ffi(fieldpaths))).map(Into::into)
    }

    fn usage(&self, key: &str) -> Result<snapshot::Usage> {
        into_result(self.inner.usage(RStr::from_str(key))).map(Into::into)
    }

    fn mounts(&self, key: &str) -> Result<Vec<snapshot::Mount>> {
        mounts_from_ffi(self.inner.mounts(RStr::from_str(key)))
    }

    fn prepare(&self, key: &str, parent: &str, l: Labels) -> Result<Vec<snapshot::Mount>> {
        mounts_from_ffi(self.inner.prepare(
            RStr::from_str(key),
            RStr::from_str(parent),
            labels_to_ffi(l),
        ))
    }

    fn view(&self, key: &str, parent: &str, l: Labels) -> Result<Vec<snapshot::Mount>> {
        mounts_from_ffi(self.inner.view(
            RStr::from_str(key),
            RStr::from_str(parent),
            labels_to_ffi(l),
        ))
    }

    fn commit(&self, name: &str, key: &str, l: Labels) -> Result<()> {
        into_result(
            self.inner
                .commit(RStr::from_str(name), RStr::from_str(key), labels_to_ffi(l)),
        )
    }

    fn remove(&self, key: &str) -> Result<()> {
        into_result(self.inner.remove(RStr::from_str(key)))
    }

    fn walk(&self) -> Result<Vec<snapshot::Info>> {
        Ok(into_result(self.inner.walk())?
            .into_iter()
            .map(Into::into)
            .collect())
    }

    fn cleanup(&self) -> Result<()> {
        into_result(self.inner.cleanup())
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

// Mounts also cross the boundary inside a runtime's create request. Functions, not `From`:
// both types belong to other crates (the mount helper's and the frozen ABI's).
pub(crate) fn mount_to_ffi(m: snapshot::Mount) -> FfiMount {
    FfiMount {
        mount_type: m.mount_type.into(),
        source: m.source.into(),
        target: m.target.into(),
        options: strings_to_ffi(&m.options),
    }
}

pub(crate) fn mount_from_ffi(m: FfiMount) -> snapshot::Mount {
    snapshot::Mount {
        mount_type: m.mount_type.into(),
        source: m.source.into(),
        target: m.target.into(),
        options: strings_from_ffi(m.options),
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

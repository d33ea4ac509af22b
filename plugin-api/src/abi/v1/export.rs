//! Plugin side of generation 1: what `export_plugin_v1!` instantiates in a plugin library.
//!
//! Every entry point the host can reach — root module functions and every method of every
//! driver object — runs inside [`guard`], which turns a panic into an `Internal` error
//! ("plugin <uri> panicked: <msg>"). A panic must never reach `abi_stable`'s FFI shims: it
//! would end the whole daemon.

use std::{
    ffi::c_char,
    mem::ManuallyDrop,
    ops::{Deref, DerefMut},
    panic::{catch_unwind, AssertUnwindSafe},
    sync::Arc,
};

use abi_stable::{
    library::{CheckTypeLayout, RootModuleResult},
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{RResult, RSlice, RSliceMut, RStr, RString, RVec},
};
use rcontainerd_plugin_abi_v1::{
    content::{
        FfiContentInfo, FfiContentReader, FfiContentReaderBox, FfiContentReader_TO,
        FfiContentStatus, FfiContentStore, FfiContentStore_TO, FfiContentWriter,
        FfiContentWriterBox, FfiContentWriter_TO, FfiWriterOptions,
    },
    error::{FfiError, FfiKeyValue},
    manifest::{FfiDriver, FfiInitContext, FfiManifest, FfiPluginInstance},
    module::{PluginModuleV1, PluginModuleV1Ref},
    runtime::{FfiCreateTask, FfiExit, FfiRuntime, FfiRuntime_TO, FfiTaskState},
    snapshot::{FfiMount, FfiSnapshotInfo, FfiSnapshotter, FfiSnapshotter_TO, FfiUsage},
};

pub use abi_stable::library::LibHeader;

use super::convert::{labels_from_ffi, strings_from_ffi};
use crate::{
    abi::{panic_message, tag},
    content, runtime, snapshot, Driver, InitContext, Manifest, PanicStrategy, Plugin, PluginError,
    PluginInstance, Result,
};

/// One plugin of a library: its author's functions.
#[derive(Debug, Clone, Copy)]
pub struct PluginEntry {
    pub manifest: fn() -> Manifest,
    pub init: fn(InitContext) -> Result<PluginInstance>,
}

impl PluginEntry {
    pub const fn of<P: Plugin>() -> Self {
        PluginEntry {
            manifest: P::manifest,
            init: P::init,
        }
    }
}

/// The plugins of one library and the facts of its build, declared by the export macro.
pub trait PluginList: 'static {
    const PLUGINS: &'static [PluginEntry];
    const PLUGIN_VERSION: &'static str;
    const PANIC_STRATEGY: PanicStrategy;
}

/// A plugin's manifest with the facts only the export knows filled in.
fn manifest_of<L: PluginList>(entry: &PluginEntry) -> Manifest {
    let mut manifest = (entry.manifest)();
    if manifest.plugin_version.is_empty() {
        manifest.plugin_version = L::PLUGIN_VERSION.to_string();
    }
    manifest.abi_generation = 1;
    manifest.panic_strategy = L::PANIC_STRATEGY;
    manifest
}

/// Runs `f`, turning a panic into `Internal` "plugin <uri> panicked: <msg>".
pub(crate) fn guard<T>(uri: &str, f: impl FnOnce() -> Result<T>) -> RResult<T, FfiError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => RResult::ROk(value),
        Ok(Err(err)) => RResult::RErr(err.into()),
        Err(payload) => RResult::RErr(
            PluginError::internal(format!(
                "plugin {uri} panicked: {}",
                panic_message(payload.as_ref())
            ))
            .into(),
        ),
    }
}

/// The plain manifest JSON (see [`tag`]).
pub fn manifest_json<L: PluginList>() -> *const c_char {
    tag::plain_manifest_json(|| {
        L::PLUGINS
            .iter()
            .map(|entry| {
                let m = manifest_of::<L>(entry);
                tag::PlainPlugin {
                    plugin_type: m.plugin_type,
                    id: m.id,
                    version: m.plugin_version,
                }
            })
            .collect()
    })
}

/// The `abi_stable` library header of a generation-1 plugin library.
pub const fn lib_header<L: PluginList>() -> LibHeader {
    // SAFETY: `erased_module::<L>` returns a `PluginModuleV1Ref` erased the way abi_stable's own
    // `#[export_root_module]` does it (through `__call_root_module_loader`), which is what
    // `from_constructor::<PluginModuleV1Ref>` requires; the layout is checked by the host.
    unsafe {
        LibHeader::from_constructor::<PluginModuleV1Ref>(erased_module::<L>, CheckTypeLayout::Yes)
    }
}

extern "C" fn erased_module<L: PluginList>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(root_module::<L>)
}

fn root_module<L: PluginList>() -> PluginModuleV1Ref {
    PluginModuleV1 {
        manifests: manifests::<L>,
        init: init::<L>,
    }
    .leak_into_prefix()
}

extern "C" fn manifests<L: PluginList>() -> RResult<RVec<FfiManifest>, FfiError> {
    guard("library", || {
        Ok(L::PLUGINS
            .iter()
            .map(|entry| FfiManifest::from(manifest_of::<L>(entry)))
            .collect())
    })
}

extern "C" fn init<L: PluginList>(
    index: u32,
    ctx: FfiInitContext,
) -> RResult<FfiPluginInstance, FfiError> {
    let Some(entry) = L::PLUGINS.get(index as usize) else {
        return RResult::RErr(
            PluginError::invalid_argument(format!("library has no plugin number {index}")).into(),
        );
    };
    let uri = match catch_unwind(|| manifest_of::<L>(entry).uri()) {
        Ok(uri) => uri,
        Err(payload) => {
            return RResult::RErr(
                PluginError::internal(format!(
                    "plugin number {index} panicked in manifest: {}",
                    panic_message(payload.as_ref())
                ))
                .into(),
            )
        }
    };
    guard(&uri, || {
        let instance = (entry.init)(InitContext::from(ctx))?;
        Ok(instance_to_ffi(instance, Arc::from(uri.as_str())))
    })
}

fn instance_to_ffi(instance: PluginInstance, uri: Arc<str>) -> FfiPluginInstance {
    let exports = instance
        .exports
        .into_iter()
        .map(|(key, value)| FfiKeyValue {
            key: key.into(),
            value: value.into(),
        })
        .collect();
    let driver = match instance.driver {
        Driver::None => FfiDriver::None,
        Driver::Snapshotter(inner) => FfiDriver::Snapshotter(FfiSnapshotter_TO::from_value(
            SnapshotterExport {
                uri,
                inner: CatchDrop::new(inner),
            },
            TD_Opaque,
        )),
        Driver::Content(inner) => FfiDriver::Content(FfiContentStore_TO::from_value(
            ContentStoreExport {
                uri,
                inner: CatchDrop::new(inner),
            },
            TD_Opaque,
        )),
        Driver::Runtime(inner) => FfiDriver::Runtime(FfiRuntime_TO::from_value(
            RuntimeExport {
                uri,
                inner: CatchDrop::new(inner),
            },
            TD_Opaque,
        )),
    };
    FfiPluginInstance { exports, driver }
}

/// Owns a driver object and drops it inside `catch_unwind`: the host drops driver objects
/// through the FFI vtable, where a panicking `Drop` would end the daemon.
struct CatchDrop<T>(ManuallyDrop<T>);

impl<T> CatchDrop<T> {
    fn new(value: T) -> Self {
        CatchDrop(ManuallyDrop::new(value))
    }
}

impl<T> Deref for CatchDrop<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for CatchDrop<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> Drop for CatchDrop<T> {
    fn drop(&mut self) {
        let inner = &mut self.0;
        // A panic while dropping is reported by the plugin's own panic hook and swallowed.
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: `inner` is dropped exactly once, here, and never used again: this is
            // the owner's `Drop`.
            unsafe { ManuallyDrop::drop(inner) }
        }));
    }
}

struct SnapshotterExport {
    uri: Arc<str>,
    inner: CatchDrop<Arc<dyn snapshot::Snapshotter>>,
}

fn mounts_to_ffi(mounts: Vec<snapshot::Mount>) -> RVec<FfiMount> {
    mounts.into_iter().map(FfiMount::from).collect()
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

struct ContentStoreExport {
    uri: Arc<str>,
    inner: CatchDrop<Arc<dyn content::Store>>,
}

impl FfiContentStore for ContentStoreExport {
    fn info(&self, digest: RStr<'_>) -> RResult<FfiContentInfo, FfiError> {
        guard(&self.uri, || {
            self.inner.info(digest.as_str()).map(Into::into)
        })
    }

    fn update(
        &self,
        info: FfiContentInfo,
        fieldpaths: RVec<RString>,
    ) -> RResult<FfiContentInfo, FfiError> {
        guard(&self.uri, || {
            self.inner
                .update(info.into(), &strings_from_ffi(fieldpaths))
                .map(Into::into)
        })
    }

    fn list(&self) -> RResult<RVec<FfiContentInfo>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .list()
                .map(|infos| infos.into_iter().map(Into::into).collect())
        })
    }

    fn delete(&self, digest: RStr<'_>) -> RResult<(), FfiError> {
        guard(&self.uri, || self.inner.delete(digest.as_str()))
    }

    fn reader(&self, digest: RStr<'_>) -> RResult<FfiContentReaderBox, FfiError> {
        guard(&self.uri, || {
            let reader = self.inner.reader(digest.as_str())?;
            Ok(FfiContentReader_TO::from_value(
                ReaderExport {
                    uri: self.uri.clone(),
                    inner: CatchDrop::new(reader),
                },
                TD_Opaque,
            ))
        })
    }

    fn writer(&self, options: FfiWriterOptions) -> RResult<FfiContentWriterBox, FfiError> {
        guard(&self.uri, || {
            let writer = self.inner.writer(options.into())?;
            Ok(FfiContentWriter_TO::from_value(
                WriterExport {
                    uri: self.uri.clone(),
                    inner: CatchDrop::new(writer),
                },
                TD_Opaque,
            ))
        })
    }

    fn status(&self, reference: RStr<'_>) -> RResult<FfiContentStatus, FfiError> {
        guard(&self.uri, || {
            self.inner.status(reference.as_str()).map(Into::into)
        })
    }

    fn list_statuses(&self) -> RResult<RVec<FfiContentStatus>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .list_statuses()
                .map(|all| all.into_iter().map(Into::into).collect())
        })
    }

    fn abort(&self, reference: RStr<'_>) -> RResult<(), FfiError> {
        guard(&self.uri, || self.inner.abort(reference.as_str()))
    }
}

struct ReaderExport {
    uri: Arc<str>,
    inner: CatchDrop<Box<dyn content::Reader>>,
}

impl FfiContentReader for ReaderExport {
    fn size(&self) -> RResult<i64, FfiError> {
        guard(&self.uri, || self.inner.size())
    }

    fn read_at(&self, offset: u64, mut buf: RSliceMut<'_, u8>) -> RResult<usize, FfiError> {
        guard(&self.uri, || {
            let len = buf.len();
            let read = self.inner.read_at(offset, buf.as_mut_slice())?;
            // A reader claiming more than the buffer would make the host read out of bounds.
            if read > len {
                return Err(PluginError::internal(format!(
                    "plugin {} reader returned {read} bytes for a {len}-byte buffer",
                    self.uri
                )));
            }
            Ok(read)
        })
    }
}

struct WriterExport {
    uri: Arc<str>,
    inner: CatchDrop<Box<dyn content::Writer>>,
}

impl FfiContentWriter for WriterExport {
    fn status(&self) -> RResult<FfiContentStatus, FfiError> {
        guard(&self.uri, || self.inner.status().map(Into::into))
    }

    fn write(&mut self, offset: u64, data: RSlice<'_, u8>) -> RResult<usize, FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || self.inner.write(offset, data.as_slice()))
    }

    fn truncate(&mut self, size: u64) -> RResult<(), FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || self.inner.truncate(size))
    }

    fn commit(
        &mut self,
        size: i64,
        expected: RStr<'_>,
        labels: RVec<FfiKeyValue>,
    ) -> RResult<(), FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || {
            self.inner
                .commit(size, expected.as_str(), labels_from_ffi(labels))
        })
    }

    fn close(&mut self) -> RResult<(), FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || self.inner.close())
    }
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

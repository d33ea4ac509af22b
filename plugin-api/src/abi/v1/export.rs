//! Plugin side of generation 1: what `export_plugin_v1!` instantiates in a plugin library. The
//! adapters of the types generation 2 kept (snapshotter, runtime, reader) and the content
//! methods both generations share serve generation 2 as well.
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
    sabi_trait::TD_Opaque,
    std_types::{RResult, RSlice, RSliceMut, RStr, RString, RVec},
};
use rcontainerd_plugin_abi_v1::{
    content::{
        FfiContentInfo, FfiContentReader, FfiContentReaderBox, FfiContentReader_TO,
        FfiContentStatus, FfiContentStore, FfiContentWriter, FfiContentWriterBox,
        FfiContentWriter_TO, FfiWriterOptions,
    },
    error::{FfiError, FfiKeyValue},
    manifest::{FfiInitContext, FfiManifest},
    runtime::{FfiCreateTask, FfiExit, FfiRuntime, FfiRuntimeBox, FfiRuntime_TO, FfiTaskState},
    snapshot::{
        FfiMount, FfiSnapshotInfo, FfiSnapshotter, FfiSnapshotterBox, FfiSnapshotter_TO, FfiUsage,
    },
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
    /// The ABI generation the library is exported through.
    const GENERATION: u32;
    const PLUGINS: &'static [PluginEntry];
    const PLUGIN_VERSION: &'static str;
    const PANIC_STRATEGY: PanicStrategy;
}

/// A plugin's manifest with the facts only the export knows filled in.
pub(crate) fn manifest_of<L: PluginList>(entry: &PluginEntry) -> Manifest {
    let mut manifest = (entry.manifest)();
    if manifest.plugin_version.is_empty() {
        manifest.plugin_version = L::PLUGIN_VERSION.to_string();
    }
    manifest.abi_generation = L::GENERATION;
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

/// The root-module half of a generation's export, for the generation whose FFI crate is `$ffi`
/// and whose root module is `$module` (prefix reference `$module_ref`): `lib_header`, and the
/// `manifests` and `init` functions the module holds. The driver objects come from the shared
/// adapters; the generation's `FfiContentStore` must be implemented for `ContentStoreExport`.
macro_rules! root_module_exports {
    ($ffi:ident, $module:ident, $module_ref:ident) => {
        /// The `abi_stable` library header of a plugin library of this generation.
        pub const fn lib_header<L: $crate::abi::v1::export::PluginList>(
        ) -> $crate::abi::v1::export::LibHeader {
            // SAFETY: `erased_module::<L>` returns the root module erased the way abi_stable's
            // own `#[export_root_module]` does it (through `__call_root_module_loader`), which is
            // what `from_constructor` requires; the layout is checked by the host.
            unsafe {
                $crate::abi::v1::export::LibHeader::from_constructor::<$ffi::module::$module_ref>(
                    erased_module::<L>,
                    ::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        }

        extern "C" fn erased_module<L: $crate::abi::v1::export::PluginList>(
        ) -> ::abi_stable::library::RootModuleResult {
            ::abi_stable::library::__call_root_module_loader(root_module::<L>)
        }

        fn root_module<L: $crate::abi::v1::export::PluginList>() -> $ffi::module::$module_ref {
            ::abi_stable::prefix_type::PrefixTypeTrait::leak_into_prefix($ffi::module::$module {
                manifests: manifests::<L>,
                init: init::<L>,
            })
        }

        extern "C" fn manifests<L: $crate::abi::v1::export::PluginList>(
        ) -> ::abi_stable::std_types::RResult<
            ::abi_stable::std_types::RVec<$ffi::manifest::FfiManifest>,
            $ffi::error::FfiError,
        > {
            $crate::abi::v1::export::manifests_of::<L>()
        }

        extern "C" fn init<L: $crate::abi::v1::export::PluginList>(
            index: u32,
            ctx: $ffi::manifest::FfiInitContext,
        ) -> ::abi_stable::std_types::RResult<
            $ffi::manifest::FfiPluginInstance,
            $ffi::error::FfiError,
        > {
            use $crate::abi::v1::export as shared;
            use $ffi::manifest::FfiDriver;
            shared::init_entry::<L, _>(index, ctx, |instance, uri| {
                let (exports, driver) = shared::split_instance(instance);
                let driver = match driver {
                    $crate::Driver::None => FfiDriver::None,
                    $crate::Driver::Snapshotter(inner) => {
                        FfiDriver::Snapshotter(shared::snapshotter_to_ffi(inner, uri))
                    }
                    $crate::Driver::Content(inner) => {
                        FfiDriver::Content($ffi::content::FfiContentStore_TO::from_value(
                            shared::ContentStoreExport::new(inner, uri),
                            ::abi_stable::sabi_trait::TD_Opaque,
                        ))
                    }
                    $crate::Driver::Runtime(inner) => {
                        FfiDriver::Runtime(shared::runtime_to_ffi(inner, uri))
                    }
                };
                $ffi::manifest::FfiPluginInstance { exports, driver }
            })
        }
    };
}
pub(crate) use root_module_exports;

root_module_exports!(rcontainerd_plugin_abi_v1, PluginModuleV1, PluginModuleV1Ref);

/// The library's manifests, as every generation's root module returns them.
pub(crate) fn manifests_of<L: PluginList>() -> RResult<RVec<FfiManifest>, FfiError> {
    guard("library", || {
        Ok(L::PLUGINS
            .iter()
            .map(|entry| FfiManifest::from(manifest_of::<L>(entry)))
            .collect())
    })
}

/// Runs the init of plugin number `index` under [`guard`] and converts what it returns with
/// `to_ffi` (which differs per generation).
pub(crate) fn init_entry<L: PluginList, T>(
    index: u32,
    ctx: FfiInitContext,
    to_ffi: impl FnOnce(PluginInstance, Arc<str>) -> T,
) -> RResult<T, FfiError> {
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
        Ok(to_ffi(instance, Arc::from(uri.as_str())))
    })
}

/// An instance's exports in FFI form, and its driver.
pub(crate) fn split_instance(instance: PluginInstance) -> (RVec<FfiKeyValue>, Driver) {
    let exports = instance
        .exports
        .into_iter()
        .map(|(key, value)| FfiKeyValue {
            key: key.into(),
            value: value.into(),
        })
        .collect();
    (exports, instance.driver)
}

pub(crate) fn snapshotter_to_ffi(
    inner: Arc<dyn snapshot::Snapshotter>,
    uri: Arc<str>,
) -> FfiSnapshotterBox {
    FfiSnapshotter_TO::from_value(
        SnapshotterExport {
            uri,
            inner: CatchDrop::new(inner),
        },
        TD_Opaque,
    )
}

pub(crate) fn runtime_to_ffi(inner: Arc<dyn runtime::Runtime>, uri: Arc<str>) -> FfiRuntimeBox {
    FfiRuntime_TO::from_value(
        RuntimeExport {
            uri,
            inner: CatchDrop::new(inner),
        },
        TD_Opaque,
    )
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

pub(crate) struct ContentStoreExport {
    uri: Arc<str>,
    inner: CatchDrop<Arc<dyn content::Store>>,
}

impl ContentStoreExport {
    pub(crate) fn new(inner: Arc<dyn content::Store>, uri: Arc<str>) -> Self {
        ContentStoreExport {
            uri,
            inner: CatchDrop::new(inner),
        }
    }

    pub(crate) fn info_ffi(&self, digest: RStr<'_>) -> RResult<FfiContentInfo, FfiError> {
        guard(&self.uri, || {
            self.inner.info(digest.as_str()).map(Into::into)
        })
    }

    pub(crate) fn update_ffi(
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

    pub(crate) fn list_ffi(&self) -> RResult<RVec<FfiContentInfo>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .list()
                .map(|infos| infos.into_iter().map(Into::into).collect())
        })
    }

    pub(crate) fn delete_ffi(&self, digest: RStr<'_>) -> RResult<(), FfiError> {
        guard(&self.uri, || self.inner.delete(digest.as_str()))
    }

    pub(crate) fn reader_ffi(&self, digest: RStr<'_>) -> RResult<FfiContentReaderBox, FfiError> {
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

    pub(crate) fn status_ffi(&self, reference: RStr<'_>) -> RResult<FfiContentStatus, FfiError> {
        guard(&self.uri, || {
            self.inner.status(reference.as_str()).map(Into::into)
        })
    }

    pub(crate) fn list_statuses_ffi(&self) -> RResult<RVec<FfiContentStatus>, FfiError> {
        guard(&self.uri, || {
            self.inner
                .list_statuses()
                .map(|all| all.into_iter().map(Into::into).collect())
        })
    }

    pub(crate) fn abort_ffi(&self, reference: RStr<'_>) -> RResult<(), FfiError> {
        guard(&self.uri, || self.inner.abort(reference.as_str()))
    }

    /// Opens a writer and wraps it with `wrap` into the generation's writer object.
    pub(crate) fn writer_with<T>(
        &self,
        options: FfiWriterOptions,
        wrap: impl FnOnce(WriterExport) -> T,
    ) -> RResult<T, FfiError> {
        guard(&self.uri, || {
            let writer = self.inner.writer(options.into())?;
            Ok(wrap(WriterExport {
                uri: self.uri.clone(),
                inner: CatchDrop::new(writer),
            }))
        })
    }
}

/// The methods every generation's `FfiContentStore` has in common (all but `writer`), for an
/// `impl … for ContentStoreExport` block.
macro_rules! content_store_methods {
    () => {
        fn info(
            &self,
            digest: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<
            $crate::abi::v1::ffi::content::FfiContentInfo,
            $crate::abi::v1::ffi::error::FfiError,
        > {
            self.info_ffi(digest)
        }

        fn update(
            &self,
            info: $crate::abi::v1::ffi::content::FfiContentInfo,
            fieldpaths: ::abi_stable::std_types::RVec<::abi_stable::std_types::RString>,
        ) -> ::abi_stable::std_types::RResult<
            $crate::abi::v1::ffi::content::FfiContentInfo,
            $crate::abi::v1::ffi::error::FfiError,
        > {
            self.update_ffi(info, fieldpaths)
        }

        fn list(
            &self,
        ) -> ::abi_stable::std_types::RResult<
            ::abi_stable::std_types::RVec<$crate::abi::v1::ffi::content::FfiContentInfo>,
            $crate::abi::v1::ffi::error::FfiError,
        > {
            self.list_ffi()
        }

        fn delete(
            &self,
            digest: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<(), $crate::abi::v1::ffi::error::FfiError> {
            self.delete_ffi(digest)
        }

        fn reader(
            &self,
            digest: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<
            $crate::abi::v1::ffi::content::FfiContentReaderBox,
            $crate::abi::v1::ffi::error::FfiError,
        > {
            self.reader_ffi(digest)
        }

        fn status(
            &self,
            reference: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<
            $crate::abi::v1::ffi::content::FfiContentStatus,
            $crate::abi::v1::ffi::error::FfiError,
        > {
            self.status_ffi(reference)
        }

        fn list_statuses(
            &self,
        ) -> ::abi_stable::std_types::RResult<
            ::abi_stable::std_types::RVec<$crate::abi::v1::ffi::content::FfiContentStatus>,
            $crate::abi::v1::ffi::error::FfiError,
        > {
            self.list_statuses_ffi()
        }

        fn abort(
            &self,
            reference: ::abi_stable::std_types::RStr<'_>,
        ) -> ::abi_stable::std_types::RResult<(), $crate::abi::v1::ffi::error::FfiError> {
            self.abort_ffi(reference)
        }
    };
}
pub(crate) use content_store_methods;

impl FfiContentStore for ContentStoreExport {
    content_store_methods!();

    fn writer(&self, options: FfiWriterOptions) -> RResult<FfiContentWriterBox, FfiError> {
        self.writer_with(options, |writer| {
            FfiContentWriter_TO::from_value(writer, TD_Opaque)
        })
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

pub(crate) struct WriterExport {
    uri: Arc<str>,
    inner: CatchDrop<Box<dyn content::Writer>>,
}

impl WriterExport {
    pub(crate) fn status_ffi(&self) -> RResult<FfiContentStatus, FfiError> {
        guard(&self.uri, || self.inner.status().map(Into::into))
    }

    pub(crate) fn write_ffi(
        &mut self,
        offset: u64,
        data: RSlice<'_, u8>,
    ) -> RResult<usize, FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || self.inner.write(offset, data.as_slice()))
    }

    pub(crate) fn truncate_ffi(&mut self, size: u64) -> RResult<(), FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || self.inner.truncate(size))
    }

    pub(crate) fn commit_ffi(
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

    pub(crate) fn close_ffi(&mut self) -> RResult<(), FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || self.inner.close())
    }

    /// The driver's running digest (generation 2 on).
    pub(crate) fn digest_ffi(&mut self) -> RResult<Option<String>, FfiError> {
        let uri = self.uri.clone();
        guard(&uri, || self.inner.digest())
    }
}

/// The methods every generation's `FfiContentWriter` has in common, for an
/// `impl … for WriterExport` block.
macro_rules! content_writer_methods {
    () => {
        fn status(
            &self,
        ) -> ::abi_stable::std_types::RResult<
            $crate::abi::v1::ffi::content::FfiContentStatus,
            $crate::abi::v1::ffi::error::FfiError,
        > {
            self.status_ffi()
        }

        fn write(
            &mut self,
            offset: u64,
            data: ::abi_stable::std_types::RSlice<'_, u8>,
        ) -> ::abi_stable::std_types::RResult<usize, $crate::abi::v1::ffi::error::FfiError> {
            self.write_ffi(offset, data)
        }

        fn truncate(
            &mut self,
            size: u64,
        ) -> ::abi_stable::std_types::RResult<(), $crate::abi::v1::ffi::error::FfiError> {
            self.truncate_ffi(size)
        }

        fn commit(
            &mut self,
            size: i64,
            expected: ::abi_stable::std_types::RStr<'_>,
            labels: ::abi_stable::std_types::RVec<$crate::abi::v1::ffi::error::FfiKeyValue>,
        ) -> ::abi_stable::std_types::RResult<(), $crate::abi::v1::ffi::error::FfiError> {
            self.commit_ffi(size, expected, labels)
        }

        fn close(
            &mut self,
        ) -> ::abi_stable::std_types::RResult<(), $crate::abi::v1::ffi::error::FfiError> {
            self.close_ffi()
        }
    };
}
pub(crate) use content_writer_methods;

impl FfiContentWriter for WriterExport {
    content_writer_methods!();
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

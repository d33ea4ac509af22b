//! Host side of generation 1: drivers of a loaded library, behind the plain traits.

use abi_stable::std_types::{RResult, RSliceMut, RStr};
use rcontainerd_plugin_abi_v1::{
    content::{FfiContentReaderBox, FfiContentStoreBox, FfiContentWriterBox},
    error::FfiError,
    runtime::FfiRuntimeBox,
    snapshot::FfiSnapshotterBox,
};

pub(crate) use super::convert::{labels_to_ffi, strings_to_ffi};
use crate::{content, runtime, snapshot, snapshot::Labels, Driver, PluginError, Result};

/// `$name`, a checked root module of the generation whose FFI crate is `$ffi` (root module prefix
/// reference `$module_ref`): it loads a library against that generation's layout and turns what the
/// library's `init` returns into plain drivers — the generation's own content store, the shared
/// snapshotter and runtime.
macro_rules! checked_module {
    ($name:ident, $ffi:ident, $module_ref:ident) => {
        #[derive(Clone, Copy)]
        pub(crate) struct $name {
            module: $ffi::module::$module_ref,
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(<$ffi::module::$module_ref as ::abi_stable::library::RootModule>::NAME)
            }
        }

        impl $name {
            /// Checks the library's `abi_stable` header, version and layout against the
            /// generation.
            pub(crate) fn load(path: &std::path::Path) -> std::result::Result<Self, String> {
                use $crate::abi::tag::one_line;
                let header =
                    ::abi_stable::library::lib_header_from_path(path).map_err(|e| one_line(&e))?;
                let module = header
                    .init_root_module::<$ffi::module::$module_ref>()
                    .map_err(|e| one_line(&e))?;
                Ok($name { module })
            }

            pub(crate) fn manifests(&self) -> $crate::Result<Vec<$crate::Manifest>> {
                let manifests = $crate::abi::v1::foreign::into_result(self.module.manifests()())?;
                Ok(manifests.into_iter().map($crate::Manifest::from).collect())
            }

            pub(crate) fn init(
                &self,
                index: u32,
                ctx: $crate::InitContext,
            ) -> $crate::Result<$crate::PluginInstance> {
                use $crate::abi::v1::foreign as shared;
                use $ffi::manifest::FfiDriver;
                let instance = shared::into_result(self.module.init()(index, ctx.into()))?;
                let driver =
                    match instance.driver {
                        FfiDriver::None => $crate::Driver::None,
                        FfiDriver::Snapshotter(inner) => shared::snapshotter_from_ffi(inner),
                        FfiDriver::Content(inner) => $crate::Driver::Content(std::sync::Arc::new(
                            shared::ForeignContentStore { inner },
                        )),
                        FfiDriver::Runtime(inner) => shared::runtime_from_ffi(inner),
                    };
                Ok($crate::PluginInstance {
                    exports: shared::exports_from_ffi(instance.exports),
                    driver,
                })
            }
        }
    };
}
pub(crate) use checked_module;

checked_module!(ModuleV1, rcontainerd_plugin_abi_v1, PluginModuleV1Ref);

pub(crate) fn into_result<T>(result: RResult<T, FfiError>) -> Result<T> {
    result.into_result().map_err(PluginError::from)
}

pub(crate) fn exports_from_ffi(
    exports: abi_stable::std_types::RVec<rcontainerd_plugin_abi_v1::error::FfiKeyValue>,
) -> std::collections::BTreeMap<String, String> {
    exports
        .into_iter()
        .map(|kv| (kv.key.into(), kv.value.into()))
        .collect()
}

pub(crate) fn snapshotter_from_ffi(inner: FfiSnapshotterBox) -> Driver {
    Driver::Snapshotter(std::sync::Arc::new(ForeignSnapshotter { inner }))
}

pub(crate) fn runtime_from_ffi(inner: FfiRuntimeBox) -> Driver {
    Driver::Runtime(std::sync::Arc::new(ForeignRuntime { inner }))
}

/// A snapshotter living in a loaded library.
pub(crate) struct ForeignSnapshotter {
    inner: FfiSnapshotterBox,
}

fn mounts_from_ffi(
    result: RResult<
        abi_stable::std_types::RVec<rcontainerd_plugin_abi_v1::snapshot::FfiMount>,
        FfiError,
    >,
) -> Result<Vec<snapshot::Mount>> {
    Ok(into_result(result)?.into_iter().map(Into::into).collect())
}

fn labels(
    labels: Labels,
) -> abi_stable::std_types::RVec<rcontainerd_plugin_abi_v1::error::FfiKeyValue> {
    labels_to_ffi(labels)
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
        mounts_from_ffi(
            self.inner
                .prepare(RStr::from_str(key), RStr::from_str(parent), labels(l)),
        )
    }

    fn view(&self, key: &str, parent: &str, l: Labels) -> Result<Vec<snapshot::Mount>> {
        mounts_from_ffi(
            self.inner
                .view(RStr::from_str(key), RStr::from_str(parent), labels(l)),
        )
    }

    fn commit(&self, name: &str, key: &str, l: Labels) -> Result<()> {
        into_result(
            self.inner
                .commit(RStr::from_str(name), RStr::from_str(key), labels(l)),
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

/// A content store living in a loaded library; `S` is its generation's store object.
pub(crate) struct ForeignContentStore<S> {
    pub(crate) inner: S,
}

/// A writer living in a loaded library; `W` is its generation's writer object.
pub(crate) struct ForeignWriter<W> {
    pub(crate) inner: W,
}

/// Implements `content::Store` for `ForeignContentStore<$store>`: every generation's store
/// object has the same methods; its writer comes back as a `ForeignWriter` of the generation's
/// writer object.
macro_rules! foreign_content_store {
    ($store:ty) => {
        impl $crate::content::Store for $crate::abi::v1::foreign::ForeignContentStore<$store> {
            fn info(&self, digest: &str) -> $crate::Result<$crate::content::Info> {
                $crate::abi::v1::foreign::into_result(
                    self.inner
                        .info(::abi_stable::std_types::RStr::from_str(digest)),
                )
                .map(Into::into)
            }

            fn update(
                &self,
                info: $crate::content::Info,
                fieldpaths: &[String],
            ) -> $crate::Result<$crate::content::Info> {
                $crate::abi::v1::foreign::into_result(self.inner.update(
                    info.into(),
                    $crate::abi::v1::foreign::strings_to_ffi(fieldpaths),
                ))
                .map(Into::into)
            }

            fn list(&self) -> $crate::Result<Vec<$crate::content::Info>> {
                Ok($crate::abi::v1::foreign::into_result(self.inner.list())?
                    .into_iter()
                    .map(Into::into)
                    .collect())
            }

            fn delete(&self, digest: &str) -> $crate::Result<()> {
                $crate::abi::v1::foreign::into_result(
                    self.inner
                        .delete(::abi_stable::std_types::RStr::from_str(digest)),
                )
            }

            fn reader(&self, digest: &str) -> $crate::Result<Box<dyn $crate::content::Reader>> {
                let inner = $crate::abi::v1::foreign::into_result(
                    self.inner
                        .reader(::abi_stable::std_types::RStr::from_str(digest)),
                )?;
                Ok(Box::new($crate::abi::v1::foreign::ForeignReader { inner }))
            }

            fn writer(
                &self,
                options: $crate::content::WriterOptions,
            ) -> $crate::Result<Box<dyn $crate::content::Writer>> {
                let inner =
                    $crate::abi::v1::foreign::into_result(self.inner.writer(options.into()))?;
                Ok(Box::new($crate::abi::v1::foreign::ForeignWriter { inner }))
            }

            fn status(&self, reference: &str) -> $crate::Result<$crate::content::Status> {
                $crate::abi::v1::foreign::into_result(
                    self.inner
                        .status(::abi_stable::std_types::RStr::from_str(reference)),
                )
                .map(Into::into)
            }

            fn list_statuses(&self) -> $crate::Result<Vec<$crate::content::Status>> {
                Ok(
                    $crate::abi::v1::foreign::into_result(self.inner.list_statuses())?
                        .into_iter()
                        .map(Into::into)
                        .collect(),
                )
            }

            fn abort(&self, reference: &str) -> $crate::Result<()> {
                $crate::abi::v1::foreign::into_result(
                    self.inner
                        .abort(::abi_stable::std_types::RStr::from_str(reference)),
                )
            }
        }
    };
}
pub(crate) use foreign_content_store;

/// Implements `content::Writer` for `ForeignWriter<$writer>` with the methods every
/// generation's writer object has, plus the generation's own `$extra` methods.
macro_rules! foreign_content_writer {
    ($writer:ty $(, $extra:item)*) => {
        impl $crate::content::Writer for $crate::abi::v1::foreign::ForeignWriter<$writer> {
            fn status(&self) -> $crate::Result<$crate::content::Status> {
                $crate::abi::v1::foreign::into_result(self.inner.status()).map(Into::into)
            }

            fn write(&mut self, offset: u64, data: &[u8]) -> $crate::Result<usize> {
                $crate::abi::v1::foreign::into_result(
                    self.inner
                        .write(offset, ::abi_stable::std_types::RSlice::from_slice(data)),
                )
            }

            fn truncate(&mut self, size: u64) -> $crate::Result<()> {
                $crate::abi::v1::foreign::into_result(self.inner.truncate(size))
            }

            fn commit(
                &mut self,
                size: i64,
                expected: &str,
                labels: $crate::snapshot::Labels,
            ) -> $crate::Result<()> {
                $crate::abi::v1::foreign::into_result(self.inner.commit(
                    size,
                    ::abi_stable::std_types::RStr::from_str(expected),
                    $crate::abi::v1::foreign::labels_to_ffi(labels),
                ))
            }

            fn close(&mut self) -> $crate::Result<()> {
                $crate::abi::v1::foreign::into_result(self.inner.close())
            }

            $($extra)*
        }
    };
}
pub(crate) use foreign_content_writer;

foreign_content_store!(FfiContentStoreBox);
// Generation 1 writers keep no digest the daemon can ask for: `digest` stays `None`.
foreign_content_writer!(FfiContentWriterBox);

pub(crate) struct ForeignReader {
    pub(crate) inner: FfiContentReaderBox,
}

impl content::Reader for ForeignReader {
    fn size(&self) -> Result<i64> {
        into_result(self.inner.size())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        into_result(self.inner.read_at(offset, RSliceMut::from_mut_slice(buf)))
    }
}

/// A task runtime living in a loaded library.
pub(crate) struct ForeignRuntime {
    inner: FfiRuntimeBox,
}

impl runtime::Runtime for ForeignRuntime {
    fn create(&self, request: runtime::CreateTask) -> Result<runtime::TaskState> {
        into_result(self.inner.create(request.into())).map(Into::into)
    }

    fn start(&self, namespace: &str, id: &str) -> Result<u32> {
        into_result(
            self.inner
                .start(RStr::from_str(namespace), RStr::from_str(id)),
        )
    }

    fn state(&self, namespace: &str, id: &str) -> Result<runtime::TaskState> {
        into_result(
            self.inner
                .state(RStr::from_str(namespace), RStr::from_str(id)),
        )
        .map(Into::into)
    }

    fn kill(&self, namespace: &str, id: &str, signal: u32, all: bool) -> Result<()> {
        into_result(
            self.inner
                .kill(RStr::from_str(namespace), RStr::from_str(id), signal, all),
        )
    }

    fn delete(&self, namespace: &str, id: &str) -> Result<runtime::Exit> {
        into_result(
            self.inner
                .delete(RStr::from_str(namespace), RStr::from_str(id)),
        )
        .map(Into::into)
    }

    fn wait(&self, namespace: &str, id: &str) -> Result<runtime::Exit> {
        into_result(
            self.inner
                .wait(RStr::from_str(namespace), RStr::from_str(id)),
        )
        .map(Into::into)
    }
}

//! A library as a whole: its plugin list, manifests and init, and the macros that give each
//! generation its root module (plugin side, [`root_module_exports!`]) and its checked module
//! (host side, [`checked_module!`]).

use std::{collections::BTreeMap, ffi::c_char, panic::catch_unwind, sync::Arc};

use abi_stable::std_types::{RResult, RVec};

pub use abi_stable::library::LibHeader;

use super::{
    ffi::{
        error::{FfiError, FfiKeyValue},
        manifest::{FfiInitContext, FfiManifest, FfiPanicStrategy},
    },
    guard, panic_message, strings_from_ffi, strings_to_ffi,
};
use crate::{
    abi::tag, Driver, InitContext, Manifest, PanicStrategy, Plugin, PluginError, PluginInstance,
    Result,
};

/// What `export_plugin_vN!` expands to for generation `$generation` (`v1`, `v2`, …, whose
/// `abi::vN::export` module provides `lib_header`): the plugin list, the plain tag and manifest
/// symbols, and `abi_stable`'s root module symbol.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin_generation {
    ($generation:ident, $number:literal; $($plugin:ty),+) => {
        #[doc(hidden)]
        pub struct __RcontainerdPluginList;

        impl $crate::abi::shared::PluginList for __RcontainerdPluginList {
            const GENERATION: u32 = $number;
            const PLUGINS: &'static [$crate::abi::shared::PluginEntry] =
                &[$($crate::abi::shared::PluginEntry::of::<$plugin>()),+];
            // Evaluated here, in the plugin crate: its own version and panic strategy.
            const PLUGIN_VERSION: &'static str = env!("CARGO_PKG_VERSION");
            const PANIC_STRATEGY: $crate::PanicStrategy =
                $crate::PanicStrategy::from_unwind(cfg!(panic = "unwind"));
        }

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static rcontainerd_plugin_tag: $crate::abi::tag::PluginTag =
            $crate::abi::tag::PluginTag::new($number, cfg!(panic = "unwind"));

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn rcontainerd_plugin_manifest_json() -> *const ::std::ffi::c_char {
            $crate::abi::shared::manifest_json::<__RcontainerdPluginList>()
        }

        // abi_stable's root module symbol (`abi_stable::library::ROOT_MODULE_LOADER_NAME`),
        // declared here so that plugin crates need no direct abi_stable dependency.
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi::shared::LibHeader =
            $crate::abi::$generation::export::lib_header::<__RcontainerdPluginList>();
    };
}

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
fn manifest_of<L: PluginList>(entry: &PluginEntry) -> Manifest {
    let mut manifest = (entry.manifest)();
    if manifest.plugin_version.is_empty() {
        manifest.plugin_version = L::PLUGIN_VERSION.to_string();
    }
    manifest.abi_generation = L::GENERATION;
    manifest.panic_strategy = L::PANIC_STRATEGY;
    manifest
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
/// `to_ffi` (which differs per generation, and may refuse a driver the generation cannot carry).
pub(crate) fn init_entry<L: PluginList, T>(
    index: u32,
    ctx: FfiInitContext,
    to_ffi: impl FnOnce(PluginInstance, Arc<str>) -> Result<T>,
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
        to_ffi(instance, Arc::from(uri.as_str()))
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

/// An instance's exports as the host keeps them.
pub(crate) fn exports_from_ffi(exports: RVec<FfiKeyValue>) -> BTreeMap<String, String> {
    exports
        .into_iter()
        .map(|kv| (kv.key.into(), kv.value.into()))
        .collect()
}

/// The root-module half of a generation's export, for the generation whose FFI crate is `$ffi`
/// and whose root module is `$module` (prefix reference `$module_ref`): `lib_header`, and the
/// `manifests` and `init` functions the module holds. Snapshotters come from the shared
/// adapters; the generation's `FfiContentStore` must be implemented for `ContentStoreExport`;
/// `$runtime` (`fn(Arc<dyn Runtime>, Arc<str>) -> Result<FfiDriver>`) turns a runtime into the
/// generation's driver, or refuses it.
macro_rules! root_module_exports {
    ($ffi:ident, $module:ident, $module_ref:ident, runtime = $runtime:path) => {
        /// The `abi_stable` library header of a plugin library of this generation.
        pub const fn lib_header<L: $crate::abi::shared::PluginList>(
        ) -> $crate::abi::shared::LibHeader {
            // SAFETY: `erased_module::<L>` returns the root module erased the way abi_stable's
            // own `#[export_root_module]` does it (through `__call_root_module_loader`), which is
            // what `from_constructor` requires; the layout is checked by the host.
            unsafe {
                $crate::abi::shared::LibHeader::from_constructor::<$ffi::module::$module_ref>(
                    erased_module::<L>,
                    ::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        }

        extern "C" fn erased_module<L: $crate::abi::shared::PluginList>(
        ) -> ::abi_stable::library::RootModuleResult {
            ::abi_stable::library::__call_root_module_loader(root_module::<L>)
        }

        fn root_module<L: $crate::abi::shared::PluginList>() -> $ffi::module::$module_ref {
            ::abi_stable::prefix_type::PrefixTypeTrait::leak_into_prefix($ffi::module::$module {
                manifests: manifests::<L>,
                init: init::<L>,
            })
        }

        extern "C" fn manifests<L: $crate::abi::shared::PluginList>(
        ) -> ::abi_stable::std_types::RResult<
            ::abi_stable::std_types::RVec<$ffi::manifest::FfiManifest>,
            $ffi::error::FfiError,
        > {
            $crate::abi::shared::library::manifests_of::<L>()
        }

        extern "C" fn init<L: $crate::abi::shared::PluginList>(
            index: u32,
            ctx: $ffi::manifest::FfiInitContext,
        ) -> ::abi_stable::std_types::RResult<
            $ffi::manifest::FfiPluginInstance,
            $ffi::error::FfiError,
        > {
            use $crate::abi::shared::{content, library, snapshot};
            use $ffi::manifest::FfiDriver;
            library::init_entry::<L, _>(index, ctx, |instance, uri| {
                let (exports, driver) = library::split_instance(instance);
                let driver = match driver {
                    $crate::Driver::None => FfiDriver::None,
                    $crate::Driver::Snapshotter(inner) => {
                        FfiDriver::Snapshotter(snapshot::to_ffi(inner, uri))
                    }
                    $crate::Driver::Content(inner) => {
                        FfiDriver::Content($ffi::content::FfiContentStore_TO::from_value(
                            content::ContentStoreExport::new(inner, uri),
                            ::abi_stable::sabi_trait::TD_Opaque,
                        ))
                    }
                    $crate::Driver::Runtime(inner) => $runtime(inner, uri)?,
                };
                Ok($ffi::manifest::FfiPluginInstance { exports, driver })
            })
        }
    };
}
pub(crate) use root_module_exports;

/// `$name`, a checked root module of the generation whose FFI crate is `$ffi` (root module prefix
/// reference `$module_ref`): it loads a library against that generation's layout and turns what the
/// library's `init` returns into plain drivers — the generation's own content store, the shared
/// snapshotter, and what `$runtime` (`fn(FfiRuntimeBox) -> Result<Driver>`) makes of its runtime
/// object. `content::Store` must be implemented for the generation's `ForeignContentStore` (see
/// `foreign_content_store!`).
macro_rules! checked_module {
    ($name:ident, $ffi:ident, $module_ref:ident, runtime = $runtime:path) => {
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
                let manifests = $crate::abi::shared::into_result(self.module.manifests()())?;
                Ok(manifests.into_iter().map($crate::Manifest::from).collect())
            }

            pub(crate) fn init(
                &self,
                index: u32,
                ctx: $crate::InitContext,
            ) -> $crate::Result<$crate::PluginInstance> {
                use $crate::abi::shared::{content, into_result, library, snapshot};
                use $ffi::manifest::FfiDriver;
                let instance = into_result(self.module.init()(index, ctx.into()))?;
                let driver =
                    match instance.driver {
                        FfiDriver::None => $crate::Driver::None,
                        FfiDriver::Snapshotter(inner) => snapshot::from_ffi(inner),
                        FfiDriver::Content(inner) => $crate::Driver::Content(std::sync::Arc::new(
                            content::ForeignContentStore { inner },
                        )),
                        FfiDriver::Runtime(inner) => $runtime(inner)?,
                    };
                Ok($crate::PluginInstance {
                    exports: library::exports_from_ffi(instance.exports),
                    driver,
                })
            }
        }
    };
}
pub(crate) use checked_module;

impl From<Manifest> for FfiManifest {
    fn from(m: Manifest) -> Self {
        FfiManifest {
            plugin_type: m.plugin_type.into(),
            id: m.id.into(),
            requires: strings_to_ffi(&m.requires),
            plugin_version: m.plugin_version.into(),
            abi_generation: m.abi_generation,
            panic_strategy: match m.panic_strategy {
                PanicStrategy::Unwind => FfiPanicStrategy::Unwind,
                PanicStrategy::Abort => FfiPanicStrategy::Abort,
            },
            capabilities: strings_to_ffi(&m.capabilities),
            default_config: m.default_config.into(),
        }
    }
}

impl From<FfiManifest> for Manifest {
    fn from(m: FfiManifest) -> Self {
        Manifest {
            plugin_type: m.plugin_type.into(),
            id: m.id.into(),
            requires: strings_from_ffi(m.requires),
            plugin_version: m.plugin_version.into(),
            abi_generation: m.abi_generation,
            panic_strategy: match m.panic_strategy {
                FfiPanicStrategy::Unwind => PanicStrategy::Unwind,
                FfiPanicStrategy::Abort => PanicStrategy::Abort,
            },
            capabilities: strings_from_ffi(m.capabilities),
            default_config: m.default_config.into(),
        }
    }
}

impl From<InitContext> for FfiInitContext {
    fn from(ctx: InitContext) -> Self {
        FfiInitContext {
            root: ctx.root.to_string_lossy().as_ref().into(),
            state: ctx.state.to_string_lossy().as_ref().into(),
            config: ctx.config.into(),
            grpc_address: ctx.grpc_address.into(),
            ttrpc_address: ctx.ttrpc_address.into(),
        }
    }
}

impl From<FfiInitContext> for InitContext {
    fn from(ctx: FfiInitContext) -> Self {
        InitContext {
            root: String::from(ctx.root).into(),
            state: String::from(ctx.state).into(),
            config: ctx.config.into(),
            grpc_address: ctx.grpc_address.into(),
            ttrpc_address: ctx.ttrpc_address.into(),
        }
    }
}

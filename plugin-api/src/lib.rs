//! rcontainerd's plugin API.
//!
//! Driver authors implement [`Plugin`] and one of the driver traits ([`snapshot::Snapshotter`],
//! [`content::Store`], [`runtime::Runtime`]) with plain Rust types, and export the plugin from a
//! `cdylib` crate with [`export_plugin!`]. The macro generates the stable-ABI layer, including
//! panic containment: a panic inside a driver becomes an `Internal` error for that call.
//!
//! The daemon loads libraries with [`host::load_library`]; the drivers it gets back implement
//! the same traits, so host code cannot tell a loaded driver from an in-process one.
//! See `docs/plugin-authors.md` and `docs/abi.md`.

pub mod abi;
pub mod content;
mod error;
pub mod host;
mod instance;
mod manifest;
pub mod runtime;
pub mod snapshot;
#[cfg(feature = "testsuite")]
pub mod testsuite;

pub use error::{ErrorKind, PluginError, Result, SKIP_SUFFIX};
pub use instance::{Driver, InitContext, Plugin, PluginInstance};
pub use manifest::{Manifest, PanicStrategy, CURRENT_ABI_GENERATION, SUPPORTED_ABI_GENERATIONS};

/// Exports one or more [`Plugin`]s from a `cdylib` through the newest ABI generation
/// (today generation 3, [`export_plugin_v3!`]; [`export_plugin_v1!`] and [`export_plugin_v2!`]
/// pin a plugin to an older generation, which cannot export a runtime driver). Invoke it once,
/// at the crate root:
///
/// ```ignore
/// rcontainerd_plugin_api::export_plugin!(MyPlugin);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($($plugin:ty),+ $(,)?) => {
        $crate::export_plugin_v3!($($plugin),+);
    };
}

#[cfg(test)]
mod tests {
    /// The host moves these between threads (init runs on a blocking thread).
    #[test]
    fn host_facing_types_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<crate::host::LoadedPlugin>();
        send_sync::<crate::host::LibraryError>();
        send_sync::<crate::PluginInstance>();
        send_sync::<crate::Driver>();
        send_sync::<crate::PluginError>();
    }

    #[test]
    fn the_export_macro_names_abi_stables_root_module_symbol() {
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }
}

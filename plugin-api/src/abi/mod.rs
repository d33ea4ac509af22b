//! The stable boundary between the daemon and plugin libraries. All `unsafe` of the boundary
//! lives under this module.
//!
//! - [`tag`]: the plain, generation-independent symbols every plugin library exports (read
//!   before any ABI check, so that a refused library can still be named).
//! - [`v1`]: generation 1 — the plugin-side adapters the export macro instantiates and the
//!   host-side `Foreign…` drivers that implement the plain traits over a loaded library.

pub mod tag;
pub mod v1;
pub mod v2;

use std::any::Any;

/// The text of a caught panic's payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// What `export_plugin_vN!` expands to for generation `$generation` (`v1`, `v2`, …, whose
/// `abi::vN::export` module provides the pieces): the plugin list, the plain tag and manifest
/// symbols, and `abi_stable`'s root module symbol.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin_generation {
    ($generation:ident, $number:literal; $($plugin:ty),+) => {
        #[doc(hidden)]
        pub struct __RcontainerdPluginList;

        impl $crate::abi::$generation::export::PluginList for __RcontainerdPluginList {
            const GENERATION: u32 = $number;
            const PLUGINS: &'static [$crate::abi::$generation::export::PluginEntry] =
                &[$($crate::abi::$generation::export::PluginEntry::of::<$plugin>()),+];
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
            $crate::abi::$generation::export::manifest_json::<__RcontainerdPluginList>()
        }

        // abi_stable's root module symbol (`abi_stable::library::ROOT_MODULE_LOADER_NAME`),
        // declared here so that plugin crates need no direct abi_stable dependency.
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader:
            $crate::abi::$generation::export::LibHeader =
            $crate::abi::$generation::export::lib_header::<__RcontainerdPluginList>();
    };
}

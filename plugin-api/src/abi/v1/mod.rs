//! ABI generation 1: conversions between the plain types and `rcontainerd-plugin-abi-v1`'s
//! frozen FFI types, the plugin-side export adapters and the host-side `Foreign…` drivers.

mod convert;
pub mod export;
pub(crate) mod foreign;

pub use rcontainerd_plugin_abi_v1 as ffi;

/// Exports plugins through ABI generation 1. Prefer [`export_plugin!`](crate::export_plugin),
/// which names the newest generation; use this one to pin a plugin to generation 1.
///
/// Takes one or more types implementing [`Plugin`](crate::Plugin). Invoke it once per library,
/// at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_plugin_v1 {
    ($($plugin:ty),+ $(,)?) => {
        #[doc(hidden)]
        pub struct __RcontainerdPluginList;

        impl $crate::abi::v1::export::PluginList for __RcontainerdPluginList {
            const GENERATION: u32 = 1;
            const PLUGINS: &'static [$crate::abi::v1::export::PluginEntry] =
                &[$($crate::abi::v1::export::PluginEntry::of::<$plugin>()),+];
            // Evaluated here, in the plugin crate: its own version and panic strategy.
            const PLUGIN_VERSION: &'static str = env!("CARGO_PKG_VERSION");
            const PANIC_STRATEGY: $crate::PanicStrategy =
                $crate::PanicStrategy::from_unwind(cfg!(panic = "unwind"));
        }

        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static rcontainerd_plugin_tag: $crate::abi::tag::PluginTag =
            $crate::abi::tag::PluginTag::new(
                <__RcontainerdPluginList as $crate::abi::v1::export::PluginList>::GENERATION,
                cfg!(panic = "unwind"),
            );

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn rcontainerd_plugin_manifest_json() -> *const ::std::ffi::c_char {
            $crate::abi::v1::export::manifest_json::<__RcontainerdPluginList>()
        }

        // abi_stable's root module symbol (`abi_stable::library::ROOT_MODULE_LOADER_NAME`),
        // declared here so that plugin crates need no direct abi_stable dependency.
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi::v1::export::LibHeader =
            $crate::abi::v1::export::lib_header::<__RcontainerdPluginList>();
    };
}

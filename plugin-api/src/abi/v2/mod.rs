//! ABI generation 2: generation 1 plus a content writer that reports its running digest. Only
//! what changed is here; the snapshotter, runtime and reader adapters are generation 1's.

pub mod export;
pub(crate) mod foreign;

pub use rcontainerd_plugin_abi_v2 as ffi;

/// Exports plugins through ABI generation 2, the newest; [`export_plugin!`](crate::export_plugin)
/// names it.
///
/// Takes one or more types implementing [`Plugin`](crate::Plugin). Invoke it once per library,
/// at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_plugin_v2 {
    ($($plugin:ty),+ $(,)?) => {
        #[doc(hidden)]
        pub struct __RcontainerdPluginList;

        impl $crate::abi::v2::export::PluginList for __RcontainerdPluginList {
            const GENERATION: u32 = 2;
            const PLUGINS: &'static [$crate::abi::v2::export::PluginEntry] =
                &[$($crate::abi::v2::export::PluginEntry::of::<$plugin>()),+];
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
                <__RcontainerdPluginList as $crate::abi::v2::export::PluginList>::GENERATION,
                cfg!(panic = "unwind"),
            );

        #[doc(hidden)]
        #[unsafe(no_mangle)]
        pub extern "C" fn rcontainerd_plugin_manifest_json() -> *const ::std::ffi::c_char {
            $crate::abi::v2::export::manifest_json::<__RcontainerdPluginList>()
        }

        // abi_stable's root module symbol (`abi_stable::library::ROOT_MODULE_LOADER_NAME`),
        // declared here so that plugin crates need no direct abi_stable dependency.
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::abi::v2::export::LibHeader =
            $crate::abi::v2::export::lib_header::<__RcontainerdPluginList>();
    };
}

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
        $crate::__export_plugin_generation!(v2, 2; $($plugin),+);
    };
}

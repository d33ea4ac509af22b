//! ABI generation 3: generation 2 plus the real task runtime interface (generations 1 and 2
//! carried a placeholder that is refused). Its root module is instantiated from the
//! generation-shared glue in [`super::shared`] over `rcontainerd-plugin-abi-v3`'s frozen types;
//! snapshotters, content stores, readers and the runtime are the shared adapters as they are.

pub mod export;
pub(crate) mod foreign;

pub use rcontainerd_plugin_abi_v3 as ffi;

/// Exports plugins through ABI generation 3, the newest; [`export_plugin!`](crate::export_plugin)
/// names it.
///
/// Takes one or more types implementing [`Plugin`](crate::Plugin). Invoke it once per library,
/// at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_plugin_v3 {
    ($($plugin:ty),+ $(,)?) => {
        $crate::__export_plugin_generation!(v3, 3; $($plugin),+);
    };
}

//! ABI generation 1: its root module and content objects, instantiated from the
//! generation-shared glue in [`super::shared`] over `rcontainerd-plugin-abi-v1`'s frozen types.

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
        $crate::__export_plugin_generation!(v1, 1; $($plugin),+);
    };
}

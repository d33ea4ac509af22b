//! ABI generation 2: generation 1 plus a content writer that reports its running digest. Its
//! root module and content objects are instantiated from the generation-shared glue in
//! [`super::shared`] over `rcontainerd-plugin-abi-v2`'s frozen types; snapshotters, readers and
//! its content store and writer are the shared adapters as they are, and a runtime offered
//! through its placeholder is refused.

pub mod export;
pub(crate) mod foreign;

pub use rcontainerd_plugin_abi_v2 as ffi;

/// Exports plugins through ABI generation 2. Prefer [`export_plugin!`](crate::export_plugin),
/// which names the newest generation; use this one to pin a plugin to generation 2 (it cannot
/// export a runtime driver).
///
/// Takes one or more types implementing [`Plugin`](crate::Plugin). Invoke it once per library,
/// at the crate root of a `cdylib`.
#[macro_export]
macro_rules! export_plugin_v2 {
    ($($plugin:ty),+ $(,)?) => {
        $crate::__export_plugin_generation!(v2, 2; $($plugin),+);
    };
}

//! Host side of generation 3: its checked root module, whose runtime object becomes a plain
//! runtime driver. Content stores and writers are generation 2's objects (`shared::content`).

use crate::abi::shared::library::checked_module;

checked_module!(
    ModuleV3,
    rcontainerd_plugin_abi_v3,
    PluginModuleV3Ref,
    runtime = crate::abi::shared::runtime::from_ffi
);

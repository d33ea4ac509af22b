//! Host side of generation 2: its checked root module. Its content store and writer drivers
//! are generation 3's too and live in `shared::content`.

use crate::abi::shared::library::checked_module;

checked_module!(
    ModuleV2,
    rcontainerd_plugin_abi_v2,
    PluginModuleV2Ref,
    runtime = crate::abi::shared::runtime::refuse_foreign
);

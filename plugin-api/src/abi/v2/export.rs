//! Plugin side of generation 2: its root module (`lib_header`, which `export_plugin_v2!` puts
//! in the library). Its content store and writer objects, which report the writer's digest, are
//! generation 3's too and live in `shared::content`.

use crate::abi::shared::library::root_module_exports;

// A runtime cannot cross generation 2's placeholder: refused (see `shared::runtime`).
root_module_exports!(
    rcontainerd_plugin_abi_v2,
    PluginModuleV2,
    PluginModuleV2Ref,
    runtime = crate::abi::shared::runtime::refuse_export
);

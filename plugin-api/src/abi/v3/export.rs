//! Plugin side of generation 3: its root module (`lib_header`, which `export_plugin_v3!` puts
//! in the library), whose runtime is the real runtime object. Content stores and writers are
//! generation 2's objects (`shared::content`).

use std::sync::Arc;

use rcontainerd_plugin_abi_v3::manifest::FfiDriver;

use crate::{
    abi::shared::{library::root_module_exports, runtime},
    Result,
};

root_module_exports!(
    rcontainerd_plugin_abi_v3,
    PluginModuleV3,
    PluginModuleV3Ref,
    runtime = runtime_driver
);

fn runtime_driver(inner: Arc<dyn crate::runtime::Runtime>, uri: Arc<str>) -> Result<FfiDriver> {
    Ok(FfiDriver::Runtime(runtime::to_ffi(inner, uri)))
}

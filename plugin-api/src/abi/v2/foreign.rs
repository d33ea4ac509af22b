//! Host side of generation 2: its root module and content store; snapshotters, runtimes and
//! readers are generation 1's objects and drivers.

use std::{path::Path, sync::Arc};

use abi_stable::library::{lib_header_from_path, RootModule};
use rcontainerd_plugin_abi_v2::{
    content::{FfiContentStoreBox, FfiContentWriterBox},
    manifest::{FfiDriver, FfiPluginInstance},
    module::PluginModuleV2Ref,
};

use crate::{
    abi::{
        tag::one_line,
        v1::foreign::{
            exports_from_ffi, foreign_content_store, foreign_content_writer, into_result,
            runtime_from_ffi, snapshotter_from_ffi, ForeignContentStore,
        },
    },
    Driver, InitContext, Manifest, PluginInstance, Result,
};

/// A checked generation-2 root module.
#[derive(Clone, Copy)]
pub(crate) struct ModuleV2 {
    module: PluginModuleV2Ref,
}

impl std::fmt::Debug for ModuleV2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(PluginModuleV2Ref::NAME)
    }
}

impl ModuleV2 {
    /// Checks the library's `abi_stable` header, version and layout against generation 2.
    pub(crate) fn load(path: &Path) -> std::result::Result<Self, String> {
        let header = lib_header_from_path(path).map_err(|err| one_line(&err))?;
        let module = header
            .init_root_module::<PluginModuleV2Ref>()
            .map_err(|err| one_line(&err))?;
        Ok(ModuleV2 { module })
    }

    pub(crate) fn manifests(&self) -> Result<Vec<Manifest>> {
        let manifests = into_result(self.module.manifests()())?;
        Ok(manifests.into_iter().map(Manifest::from).collect())
    }

    pub(crate) fn init(&self, index: u32, ctx: InitContext) -> Result<PluginInstance> {
        let instance = into_result(self.module.init()(index, ctx.into()))?;
        Ok(instance_from_ffi(instance))
    }
}

fn instance_from_ffi(instance: FfiPluginInstance) -> PluginInstance {
    let driver = match instance.driver {
        FfiDriver::None => Driver::None,
        FfiDriver::Snapshotter(inner) => snapshotter_from_ffi(inner),
        FfiDriver::Content(inner) => Driver::Content(Arc::new(ForeignContentStore { inner })),
        FfiDriver::Runtime(inner) => runtime_from_ffi(inner),
    };
    PluginInstance {
        exports: exports_from_ffi(instance.exports),
        driver,
    }
}

foreign_content_store!(FfiContentStoreBox);
foreign_content_writer!(
    FfiContentWriterBox,
    fn digest(&mut self) -> Result<Option<String>> {
        into_result(self.inner.digest()).map(|digest| digest.into_option().map(String::from))
    }
);

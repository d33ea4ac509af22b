//! Host side of generation 2: its checked root module and content store and writer drivers.

use rcontainerd_plugin_abi_v2::content::{FfiContentStoreBox, FfiContentWriterBox};

use crate::{
    abi::shared::{
        content::{foreign_content_store, foreign_content_writer},
        into_result,
        library::checked_module,
    },
    Result,
};

checked_module!(
    ModuleV2,
    rcontainerd_plugin_abi_v2,
    PluginModuleV2Ref,
    runtime = crate::abi::shared::runtime::refuse_foreign
);

foreign_content_store!(FfiContentStoreBox);
foreign_content_writer!(
    FfiContentWriterBox,
    fn digest(&mut self) -> Result<Option<String>> {
        into_result(self.inner.digest()).map(|digest| digest.into_option().map(String::from))
    }
);

//! Host side of generation 2: its root module and content store; snapshotters, runtimes and
//! readers are generation 1's objects and drivers.

use rcontainerd_plugin_abi_v2::content::{FfiContentStoreBox, FfiContentWriterBox};

use crate::{
    abi::v1::foreign::{
        checked_module, foreign_content_store, foreign_content_writer, into_result,
    },
    Result,
};

checked_module!(ModuleV2, rcontainerd_plugin_abi_v2, PluginModuleV2Ref);

foreign_content_store!(FfiContentStoreBox);
foreign_content_writer!(
    FfiContentWriterBox,
    fn digest(&mut self) -> Result<Option<String>> {
        into_result(self.inner.digest()).map(|digest| digest.into_option().map(String::from))
    }
);

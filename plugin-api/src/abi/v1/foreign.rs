//! Host side of generation 1: its checked root module and content store and writer drivers.

use rcontainerd_plugin_abi_v1::content::{FfiContentStoreBox, FfiContentWriterBox};

use crate::abi::shared::{
    content::{foreign_content_store, foreign_content_writer},
    library::checked_module,
};

checked_module!(
    ModuleV1,
    rcontainerd_plugin_abi_v1,
    PluginModuleV1Ref,
    runtime = crate::abi::shared::runtime::refuse_foreign
);

foreign_content_store!(FfiContentStoreBox);
// Generation 1 writers keep no digest the daemon can ask for: `digest` stays `None`.
foreign_content_writer!(FfiContentWriterBox);

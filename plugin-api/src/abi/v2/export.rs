//! Plugin side of generation 2: its root module, content store and writer objects. Everything
//! else is generation 1's adapter (see [`super::super::v1::export`]).

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RString},
};
use rcontainerd_plugin_abi_v2::{
    content::FfiWriterOptions,
    content::{FfiContentStore, FfiContentWriter, FfiContentWriterBox, FfiContentWriter_TO},
    error::FfiError,
};

use crate::abi::v1::export::{
    content_store_methods, content_writer_methods, root_module_exports, ContentStoreExport,
    WriterExport,
};
pub use crate::abi::v1::export::{manifest_json, LibHeader, PluginEntry, PluginList};

root_module_exports!(rcontainerd_plugin_abi_v2, PluginModuleV2, PluginModuleV2Ref);

impl FfiContentStore for ContentStoreExport {
    content_store_methods!();

    fn writer(&self, options: FfiWriterOptions) -> RResult<FfiContentWriterBox, FfiError> {
        self.writer_with(options, |writer| {
            FfiContentWriter_TO::from_value(writer, TD_Opaque)
        })
    }
}

impl FfiContentWriter for WriterExport {
    content_writer_methods!();

    fn digest(&mut self) -> RResult<ROption<RString>, FfiError> {
        self.digest_ffi()
            .map(|digest| digest.map(RString::from).into())
    }
}

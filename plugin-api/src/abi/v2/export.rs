//! Plugin side of generation 2: its root module (`lib_header`, which `export_plugin_v2!` puts
//! in the library) and its content store and writer objects, whose writer reports its digest.

use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RString},
};
use rcontainerd_plugin_abi_v2::{
    content::{
        FfiContentStore, FfiContentWriter, FfiContentWriterBox, FfiContentWriter_TO,
        FfiWriterOptions,
    },
    error::FfiError,
};

use crate::abi::shared::{
    content::{content_store_methods, content_writer_methods, ContentStoreExport, WriterExport},
    library::root_module_exports,
};

// A runtime cannot cross generation 2's placeholder: refused (see `shared::runtime`).
root_module_exports!(
    rcontainerd_plugin_abi_v2,
    PluginModuleV2,
    PluginModuleV2Ref,
    runtime = crate::abi::shared::runtime::refuse_export
);

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

//! Plugin side of generation 2: its root module, content store and writer objects. Everything
//! else is generation 1's adapter (see [`super::super::v1::export`]).

use abi_stable::{
    library::{CheckTypeLayout, RootModuleResult},
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{ROption, RResult, RString, RVec},
};
use rcontainerd_plugin_abi_v2::{
    content::{FfiContentStore, FfiContentStore_TO, FfiContentWriter, FfiContentWriter_TO},
    content::{FfiContentWriterBox, FfiWriterOptions},
    error::FfiError,
    manifest::{FfiDriver, FfiInitContext, FfiManifest, FfiPluginInstance},
    module::{PluginModuleV2, PluginModuleV2Ref},
};

pub use crate::abi::v1::export::{manifest_json, LibHeader, PluginEntry, PluginList};
use crate::{
    abi::v1::export::{
        content_store_methods, content_writer_methods, init_entry, manifests_of, runtime_to_ffi,
        snapshotter_to_ffi, split_instance, ContentStoreExport, WriterExport,
    },
    Driver,
};

/// The `abi_stable` library header of a generation-2 plugin library.
pub const fn lib_header<L: PluginList>() -> LibHeader {
    // SAFETY: `erased_module::<L>` returns a `PluginModuleV2Ref` erased the way abi_stable's own
    // `#[export_root_module]` does it (through `__call_root_module_loader`), which is what
    // `from_constructor::<PluginModuleV2Ref>` requires; the layout is checked by the host.
    unsafe {
        LibHeader::from_constructor::<PluginModuleV2Ref>(erased_module::<L>, CheckTypeLayout::Yes)
    }
}

extern "C" fn erased_module<L: PluginList>() -> RootModuleResult {
    abi_stable::library::__call_root_module_loader(root_module::<L>)
}

fn root_module<L: PluginList>() -> PluginModuleV2Ref {
    PluginModuleV2 {
        manifests: manifests::<L>,
        init: init::<L>,
    }
    .leak_into_prefix()
}

extern "C" fn manifests<L: PluginList>() -> RResult<RVec<FfiManifest>, FfiError> {
    manifests_of::<L>()
}

extern "C" fn init<L: PluginList>(
    index: u32,
    ctx: FfiInitContext,
) -> RResult<FfiPluginInstance, FfiError> {
    init_entry::<L, _>(index, ctx, |instance, uri| {
        let (exports, driver) = split_instance(instance);
        let driver = match driver {
            Driver::None => FfiDriver::None,
            Driver::Snapshotter(inner) => FfiDriver::Snapshotter(snapshotter_to_ffi(inner, uri)),
            Driver::Content(inner) => FfiDriver::Content(FfiContentStore_TO::from_value(
                ContentStoreExport::new(inner, uri),
                TD_Opaque,
            )),
            Driver::Runtime(inner) => FfiDriver::Runtime(runtime_to_ffi(inner, uri)),
        };
        FfiPluginInstance { exports, driver }
    })
}

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

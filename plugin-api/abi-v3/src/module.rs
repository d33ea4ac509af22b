//! The generation-3 root module every plugin library of this generation exports.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_types::VersionStrings,
    std_types::{RResult, RVec},
    StableAbi,
};

use crate::{
    error::FfiError,
    manifest::{FfiInitContext, FfiManifest, FfiPluginInstance},
};

/// Entry points of a generation-3 plugin library. Functions may only ever be appended after
/// the last prefix field; nothing before it changes.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleV3Ref)))]
#[sabi(missing_field(panic))]
pub struct PluginModuleV3 {
    /// The registrations this library exports, in order (normally one).
    pub manifests: extern "C" fn() -> RResult<RVec<FfiManifest>, FfiError>,
    /// Initialises the registration at `index` of `manifests`.
    #[sabi(last_prefix_field)]
    pub init:
        extern "C" fn(index: u32, ctx: FfiInitContext) -> RResult<FfiPluginInstance, FfiError>,
}

impl RootModule for PluginModuleV3Ref {
    declare_root_module_statics! {PluginModuleV3Ref}
    const BASE_NAME: &'static str = "rcontainerd_plugin";
    const NAME: &'static str = "rcontainerd plugin (ABI generation 3)";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(crate::VERSION);
}

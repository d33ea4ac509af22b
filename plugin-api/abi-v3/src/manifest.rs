//! What init returns: generation 2's shapes around generation 3's runtime.

use abi_stable::{std_types::RVec, StableAbi};

pub use rcontainerd_plugin_abi_v2::manifest::{FfiInitContext, FfiManifest, FfiPanicStrategy};

use crate::{
    content::FfiContentStoreBox, error::FfiKeyValue, runtime::FfiRuntimeBox,
    snapshot::FfiSnapshotterBox,
};

/// The driver object an initialised plugin provides, if any.
#[repr(u8)]
#[derive(StableAbi)]
pub enum FfiDriver {
    None,
    Snapshotter(FfiSnapshotterBox),
    Content(FfiContentStoreBox),
    Runtime(FfiRuntimeBox),
}

/// What a successful init returns.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiPluginInstance {
    pub exports: RVec<FfiKeyValue>,
    pub driver: FfiDriver,
}

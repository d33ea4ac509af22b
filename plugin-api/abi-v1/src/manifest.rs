//! What a plugin declares about itself, what it is given at init and what init returns.

use abi_stable::{
    std_types::{RString, RVec},
    StableAbi,
};

use crate::{
    content::FfiContentStoreBox, error::FfiKeyValue, runtime::FfiRuntimeBox,
    snapshot::FfiSnapshotterBox,
};

/// How the plugin library was built to handle panics.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfiPanicStrategy {
    Unwind,
    Abort,
}

/// A plugin registration.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiManifest {
    pub plugin_type: RString,
    pub id: RString,
    pub requires: RVec<RString>,
    pub plugin_version: RString,
    pub abi_generation: u32,
    pub panic_strategy: FfiPanicStrategy,
    pub capabilities: RVec<RString>,
    pub default_config: RString,
}

/// What the daemon hands a plugin's init.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiInitContext {
    pub root: RString,
    pub state: RString,
    pub config: RString,
    pub grpc_address: RString,
    pub ttrpc_address: RString,
}

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

//! Claims ABI generation 2 in its plain tag but exports generation 1's root module: the daemon
//! must check the layout of the generation the tag names and refuse the library in one line that
//! names the plugin (taken as generation 2, its content writers would lack `digest`).

#![allow(non_upper_case_globals)]

use std::ffi::c_char;

use rcontainerd_plugin_api::abi::{
    shared::{manifest_json, LibHeader, PluginEntry, PluginList},
    tag::PluginTag,
    v1::export::lib_header,
};
use rcontainerd_plugin_api::{
    Driver, InitContext, Manifest, PanicStrategy, Plugin, PluginInstance, Result,
};

pub struct Mismatch;

impl Plugin for Mismatch {
    fn manifest() -> Manifest {
        Manifest::new("io.containerd.internal.v1", "generation-mismatch")
    }

    fn init(_: InitContext) -> Result<PluginInstance> {
        Ok(PluginInstance::new(Driver::None))
    }
}

pub struct Plugins;

impl PluginList for Plugins {
    const GENERATION: u32 = 2;
    const PLUGINS: &'static [PluginEntry] = &[PluginEntry::of::<Mismatch>()];
    const PLUGIN_VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const PANIC_STRATEGY: PanicStrategy = PanicStrategy::from_unwind(cfg!(panic = "unwind"));
}

#[unsafe(no_mangle)]
pub static rcontainerd_plugin_tag: PluginTag = PluginTag::new(2, cfg!(panic = "unwind"));

#[unsafe(no_mangle)]
pub extern "C" fn rcontainerd_plugin_manifest_json() -> *const c_char {
    manifest_json::<Plugins>()
}

/// Generation 1's root module under abi_stable's root module symbol.
#[unsafe(no_mangle)]
pub static _1as_0lib_1header_0root_bmodule_bloader: LibHeader = lib_header::<Plugins>();

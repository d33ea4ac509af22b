//! Claims ABI generation 1 in its plain tag, but exports a root module of the same name whose
//! layout differs from generation 1's: the daemon must refuse it with a one-line reason that
//! names the plugin.

#![allow(non_upper_case_globals)]

use std::ffi::c_char;

use abi_stable::{
    declare_root_module_statics, export_root_module, library::RootModule,
    prefix_type::PrefixTypeTrait, sabi_types::VersionStrings, StableAbi,
};
use rcontainerd_plugin_api::abi::tag::{plain_manifest_json, PlainPlugin, PluginTag};

/// Same name and version as generation 1's root module; different fields.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModuleV1Ref)))]
#[sabi(missing_field(panic))]
pub struct PluginModuleV1 {
    pub manifests: extern "C" fn() -> u64,
    #[sabi(last_prefix_field)]
    pub init: extern "C" fn(u8, u8) -> u8,
}

impl RootModule for PluginModuleV1Ref {
    declare_root_module_statics! {PluginModuleV1Ref}
    const BASE_NAME: &'static str = "rcontainerd_plugin";
    const NAME: &'static str = "rcontainerd plugin (ABI generation 1)";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new("1.0.0");
}

extern "C" fn manifests() -> u64 {
    0
}

extern "C" fn init(_: u8, _: u8) -> u8 {
    0
}

#[export_root_module]
fn root_module() -> PluginModuleV1Ref {
    PluginModuleV1 { manifests, init }.leak_into_prefix()
}

#[unsafe(no_mangle)]
pub static rcontainerd_plugin_tag: PluginTag = PluginTag::new(1, cfg!(panic = "unwind"));

#[unsafe(no_mangle)]
pub extern "C" fn rcontainerd_plugin_manifest_json() -> *const c_char {
    plain_manifest_json(|| {
        vec![PlainPlugin {
            plugin_type: "io.containerd.snapshotter.v1".into(),
            id: "incompatible-abi".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }]
    })
}

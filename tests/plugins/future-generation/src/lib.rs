//! Claims an ABI generation no daemon serves yet: it must be refused with a one-line reason
//! naming the generations the daemon serves, and listed under its own name.

#![allow(non_upper_case_globals)]

use std::ffi::c_char;

use rcontainerd_plugin_api::abi::tag::{plain_manifest_json, PlainPlugin, PluginTag};

#[unsafe(no_mangle)]
pub static rcontainerd_plugin_tag: PluginTag = PluginTag::new(99, cfg!(panic = "unwind"));

#[unsafe(no_mangle)]
pub extern "C" fn rcontainerd_plugin_manifest_json() -> *const c_char {
    plain_manifest_json(|| {
        vec![PlainPlugin {
            plugin_type: "io.containerd.snapshotter.v1".into(),
            id: "future-generation".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }]
    })
}

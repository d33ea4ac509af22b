//! Panics in init: the daemon must get an `Internal` error and keep running.

use rcontainerd_plugin_api::{
    export_plugin, InitContext, Manifest, Plugin, PluginInstance, Result,
};

pub struct PanicInit;

impl Plugin for PanicInit {
    fn manifest() -> Manifest {
        Manifest::new("io.containerd.internal.v1", "panic-init")
    }

    fn init(_ctx: InitContext) -> Result<PluginInstance> {
        panic!("deliberate panic in init")
    }
}

export_plugin!(PanicInit);

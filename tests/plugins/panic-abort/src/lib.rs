//! An ordinary plugin. Built with `panic = "abort"`, the daemon must refuse it before running
//! any of its code.

use rcontainerd_plugin_api::{
    export_plugin, Driver, InitContext, Manifest, Plugin, PluginInstance, Result,
};

pub struct PanicAbort;

impl Plugin for PanicAbort {
    fn manifest() -> Manifest {
        Manifest::new("io.containerd.internal.v1", "panic-abort")
    }

    fn init(_ctx: InitContext) -> Result<PluginInstance> {
        Ok(PluginInstance::new(Driver::None))
    }
}

export_plugin!(PanicAbort);

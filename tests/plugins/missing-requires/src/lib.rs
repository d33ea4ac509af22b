//! Requires a plugin type nothing provides; its init itself succeeds. The daemon's ordering
//! decides what happens (the dependent reports "no plugins registered for <type>").

use rcontainerd_plugin_api::{
    export_plugin, Driver, InitContext, Manifest, Plugin, PluginInstance, Result,
};

pub struct MissingRequires;

impl Plugin for MissingRequires {
    fn manifest() -> Manifest {
        Manifest::new("io.containerd.internal.v1", "missing-requires")
            .requires(["io.containerd.nothing.v1"])
    }

    fn init(ctx: InitContext) -> Result<PluginInstance> {
        Ok(PluginInstance::new(Driver::None).export("root", ctx.root.to_string_lossy()))
    }
}

export_plugin!(MissingRequires);

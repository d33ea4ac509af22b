//! Exported explicitly through ABI generation 1 (not the `export_plugin!` alias): the guard that
//! a generation-1 plugin keeps loading when newer generations are added.

use rcontainerd_plugin_api::{
    export_plugin_v1, Driver, InitContext, Manifest, Plugin, PluginInstance, Result,
};

pub struct PinnedV1;

impl Plugin for PinnedV1 {
    fn manifest() -> Manifest {
        Manifest::new("io.containerd.internal.v1", "abi-v1-pinned")
            .capabilities(["pinned"])
            .default_config("answer = 42\n")
    }

    fn init(ctx: InitContext) -> Result<PluginInstance> {
        Ok(PluginInstance::new(Driver::None).export("config", ctx.config))
    }
}

export_plugin_v1!(PinnedV1);

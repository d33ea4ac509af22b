//! Type `io.containerd.test-cycle-a.v1`, requiring `io.containerd.test-cycle-b.v1`: with its
//! twin in the plugin directory the daemon must refuse to start, naming the cycle.

use rcontainerd_plugin_api::{
    export_plugin, Driver, InitContext, Manifest, Plugin, PluginInstance, Result,
};

pub struct Cycle;

impl Plugin for Cycle {
    fn manifest() -> Manifest {
        Manifest::new("io.containerd.test-cycle-a.v1", "cycle-a")
            .requires(["io.containerd.test-cycle-b.v1"])
    }

    fn init(_: InitContext) -> Result<PluginInstance> {
        Ok(PluginInstance::new(Driver::None))
    }
}

export_plugin!(Cycle);

//! Initialises fine; its snapshotter panics in every call, and when dropped. Each call must
//! fail with `Internal` and the daemon keep running.

use std::sync::Arc;

use rcontainerd_plugin_api::{
    export_plugin,
    snapshot::{Info, Labels, Mount, Snapshotter, Usage},
    Driver, InitContext, Manifest, Plugin, PluginInstance, Result,
};

pub struct PanicCall;

impl Plugin for PanicCall {
    fn manifest() -> Manifest {
        Manifest::new("io.containerd.snapshotter.v1", "panic-call")
    }

    fn init(_ctx: InitContext) -> Result<PluginInstance> {
        Ok(PluginInstance::new(Driver::Snapshotter(Arc::new(Panicker))).export("root", "/nowhere"))
    }
}

struct Panicker;

impl Drop for Panicker {
    fn drop(&mut self) {
        panic!("deliberate panic in drop");
    }
}

impl Snapshotter for Panicker {
    fn stat(&self, key: &str) -> Result<Info> {
        panic!("deliberate panic in stat {key}")
    }

    fn update(&self, _info: Info, _fieldpaths: &[String]) -> Result<Info> {
        panic!("deliberate panic in update")
    }

    fn usage(&self, _key: &str) -> Result<Usage> {
        panic!("deliberate panic in usage")
    }

    fn mounts(&self, _key: &str) -> Result<Vec<Mount>> {
        panic!("deliberate panic in mounts")
    }

    fn prepare(&self, _key: &str, _parent: &str, _labels: Labels) -> Result<Vec<Mount>> {
        panic!("deliberate panic in prepare")
    }

    fn view(&self, _key: &str, _parent: &str, _labels: Labels) -> Result<Vec<Mount>> {
        panic!("deliberate panic in view")
    }

    fn commit(&self, _name: &str, _key: &str, _labels: Labels) -> Result<()> {
        panic!("deliberate panic in commit")
    }

    fn remove(&self, _key: &str) -> Result<()> {
        panic!("deliberate panic in remove")
    }

    fn walk(&self) -> Result<Vec<Info>> {
        panic!("deliberate panic in walk")
    }

    fn cleanup(&self) -> Result<()> {
        panic!("deliberate panic in cleanup")
    }
}

export_plugin!(PanicCall);

//! The snapshots service plugin: opens a snapshot store over every loaded
//! snapshotter driver — replaying interrupted operations and removing
//! orphans — before anything is served, and provides them to the gRPC edge.

use std::collections::BTreeMap;
use std::sync::Arc;

use rcontainerd_metadata::MetadataStore;
use rcontainerd_plugin_api::snapshot::Snapshotter;

use super::SnapshotStores;
use crate::gc::Scheduler;
use crate::ids::{GC_SCHEDULER, GC_TYPE, METADATA, METADATA_TYPE, SERVICE_TYPE, SNAPSHOTTER_TYPE};
use crate::registry::{InitContext, InitError, Instance, Registration};

pub fn registration() -> Registration {
    // After the gc scheduler when there is one: the stores attach to it.
    Registration::builtin(SERVICE_TYPE, "snapshots-service", &[METADATA_TYPE], init)
        .with_optional(&[GC_TYPE])
}

fn init(ctx: &InitContext<'_>) -> Result<Instance, InitError> {
    let meta = ctx.get::<Arc<MetadataStore>>(METADATA)?;
    let drivers: BTreeMap<String, Arc<dyn Snapshotter>> = ctx.all(SNAPSHOTTER_TYPE);
    let stores = Arc::new(SnapshotStores::open_all(&meta, &drivers));
    // Without the gc plugin nothing is collected; the stores serve all the same.
    if let Ok(gc) = ctx.get::<Arc<Scheduler>>(GC_SCHEDULER) {
        gc.collector().attach_snapshots(stores.clone());
    }
    Ok(Instance::of(stores))
}

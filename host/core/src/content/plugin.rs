//! The content service plugin: the content driver's blobs seen through each
//! namespace's records, provided to the gRPC edge.

use std::sync::Arc;

use rcontainerd_metadata::MetadataStore;
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_plugin_api::content::Store;

use super::ContentStore;
use crate::gc::Scheduler;
use crate::ids::{CONTENT_TYPE, GC_SCHEDULER, GC_TYPE, METADATA, METADATA_TYPE, SERVICE_TYPE};
use crate::registry::{InitContext, InitError, Instance, Registration};

pub fn registration() -> Registration {
    // After the gc scheduler when there is one: the store attaches to it.
    Registration::builtin(SERVICE_TYPE, "content-service", &[METADATA_TYPE], init)
        .with_optional(&[GC_TYPE])
}

fn init(ctx: &InitContext<'_>) -> Result<Instance, InitError> {
    let meta = ctx.get::<Arc<MetadataStore>>(METADATA)?;
    // The registry refuses a second content driver, so there is at most one.
    let Some(driver) = ctx.all::<Arc<dyn Store>>(CONTENT_TYPE).into_values().next() else {
        return Err(
            Error::not_found("no content store is loaded (io.containerd.content.v1)").into(),
        );
    };
    let store = Arc::new(ContentStore::new(meta, driver));
    if let Ok(gc) = ctx.get::<Arc<Scheduler>>(GC_SCHEDULER) {
        gc.collector().attach_content(store.clone());
    }
    Ok(Instance::of(store))
}

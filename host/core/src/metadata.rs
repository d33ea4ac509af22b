//! The metadata plugin: opens the daemon's record store. Every namespaced
//! service depends on it, so the daemon refuses to run without it.

use std::sync::Arc;

use rcontainerd_metadata::MetadataStore;
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_plugin_api::content;

use crate::ids::{CONTENT_TYPE, METADATA_TYPE, SNAPSHOTTER_TYPE};
use crate::registry::{InitContext, InitError, Instance, Registration};

pub fn registration() -> Registration {
    Registration::builtin(
        METADATA_TYPE,
        "bolt",
        &[CONTENT_TYPE, SNAPSHOTTER_TYPE],
        init,
    )
}

fn init(ctx: &InitContext<'_>) -> Result<Instance, InitError> {
    if ctx.all::<Arc<dyn content::Store>>(CONTENT_TYPE).is_empty() {
        return Err(
            Error::not_found("no content store is loaded (io.containerd.content.v1)").into(),
        );
    }
    let store = MetadataStore::open(ctx.root)?;
    Ok(Instance::of(Arc::new(store)))
}

//! The namespaces service plugin: namespaces are records in the metadata
//! store, so what it provides is the store itself.

use std::sync::Arc;

use rcontainerd_metadata::MetadataStore;

use crate::ids::{METADATA, METADATA_TYPE, SERVICE_TYPE};
use crate::registry::{InitContext, InitError, Instance, Registration};

pub fn registration() -> Registration {
    Registration::builtin(SERVICE_TYPE, "namespaces-service", &[METADATA_TYPE], init)
}

fn init(ctx: &InitContext<'_>) -> Result<Instance, InitError> {
    Ok(Instance::of(ctx.get::<Arc<MetadataStore>>(METADATA)?))
}

//! The service plugins of the record kinds that live wholly in the metadata
//! store — namespaces, images, containers and leases. What each provides is
//! the store itself; the gRPC edge reaches the records through its views
//! (`meta.images()`, …). They are separate plugins, as in containerd, so
//! that each shows in `ctr plugins ls` and can be disabled on its own.

use std::sync::Arc;

use rcontainerd_metadata::MetadataStore;

use crate::ids::{GC_TYPE, METADATA, METADATA_TYPE, SERVICE_TYPE};
use crate::registry::{InitContext, InitError, Instance, Registration};

/// `io.containerd.service.v1.namespaces-service`.
pub fn namespaces() -> Registration {
    record_service("namespaces-service")
}

/// `io.containerd.service.v1.images-service`.
pub fn images() -> Registration {
    record_service("images-service")
}

/// `io.containerd.service.v1.containers-service`.
pub fn containers() -> Registration {
    record_service("containers-service")
}

/// `io.containerd.service.v1.leases-service`.
pub fn leases() -> Registration {
    record_service("leases-service")
}

fn record_service(id: &str) -> Registration {
    // After the gc scheduler when there is one: Delete{sync} waits on it.
    Registration::builtin(SERVICE_TYPE, id, &[METADATA_TYPE], init).with_optional(&[GC_TYPE])
}

fn init(ctx: &InitContext<'_>) -> Result<Instance, InitError> {
    Ok(Instance::of(ctx.get::<Arc<MetadataStore>>(METADATA)?))
}

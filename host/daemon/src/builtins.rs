//! The one list of plugins compiled into the daemon. Adding a service is a
//! file in `rcontainerd-services` (or a domain module in `rcontainerd-core`)
//! and a line here; the registry orders them by `requires`, and the server
//! serves every gRPC plugin it finds.

use rcontainerd_core::registry::Registration;
use rcontainerd_core::{content, gc, introspection, metadata, namespaces, snapshots};
use rcontainerd_services as grpc;

/// Every built-in plugin, in registration order (Introspection lists them
/// in init order, which follows `requires`).
pub fn registrations() -> Vec<Registration> {
    vec![
        metadata::registration(),
        gc::registration(),
        introspection::registration(),
        namespaces::registration(),
        snapshots::plugin::registration(),
        content::plugin::registration(),
        grpc::introspection::registration(),
        grpc::namespaces::registration(),
        grpc::snapshots::registration(),
        grpc::content::registration(),
        grpc::version::registration(),
        grpc::health::registration(),
    ]
}

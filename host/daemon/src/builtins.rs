//! The one list of plugins compiled into the daemon. Adding a service is a
//! file in `rcontainerd-services` (or a domain module in `rcontainerd-core`)
//! and a line here; the registry orders them by `requires`, and the server
//! serves every gRPC plugin it finds.

use rcontainerd_core::registry::Registration;
use rcontainerd_core::{content, events, gc, introspection, metadata, records, snapshots};
use rcontainerd_services as grpc;

/// Every built-in plugin, in registration order (Introspection lists them
/// in init order, which follows `requires`).
pub fn registrations() -> Vec<Registration> {
    vec![
        events::registration(),
        metadata::registration(),
        gc::registration(),
        introspection::registration(),
        records::containers(),
        content::plugin::registration(),
        records::images(),
        records::leases(),
        records::namespaces(),
        snapshots::plugin::registration(),
        grpc::introspection::registration(),
        grpc::containers::registration(),
        grpc::content::registration(),
        grpc::events::registration(),
        grpc::images::registration(),
        grpc::leases::registration(),
        grpc::namespaces::registration(),
        grpc::snapshots::registration(),
        grpc::version::registration(),
        grpc::health::registration(),
    ]
}

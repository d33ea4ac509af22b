//! The one list of plugins compiled into the daemon. Adding a service is a
//! file in `rcontainerd-services` (or a domain module in `rcontainerd-core`)
//! and a line here; the registry orders them by `requires`, and the server
//! serves every gRPC plugin it finds.

use rcontainerd_core::registry::Registration;
use rcontainerd_core::{
    content, differ, events, gc, introspection, metadata, records, snapshots, tasks,
};
use rcontainerd_services as grpc;

/// Every built-in plugin, in registration order (Introspection lists them
/// in init order, which follows `requires`, then this order). The gc
/// scheduler comes before the services: the snapshots and content services
/// attach their stores to it, and the images and leases services wait on it
/// for `sync`; none requires it, so each still serves when it is disabled.
pub fn registrations() -> Vec<Registration> {
    vec![
        events::registration(),
        metadata::registration(),
        gc::registration(),
        introspection::registration(),
        records::containers(),
        content::plugin::registration(),
        differ::plugin::walking(),
        differ::plugin::service(),
        records::images(),
        records::leases(),
        records::namespaces(),
        snapshots::plugin::registration(),
        tasks::plugin::registration(),
        grpc::introspection::registration(),
        grpc::containers::registration(),
        grpc::content::registration(),
        grpc::diff::registration(),
        grpc::events::registration(),
        grpc::images::registration(),
        grpc::leases::registration(),
        grpc::namespaces::registration(),
        grpc::snapshots::registration(),
        grpc::tasks::registration(),
        grpc::version::registration(),
        grpc::health::registration(),
    ]
}

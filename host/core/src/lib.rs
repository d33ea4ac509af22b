//! The daemon's core: the plugin registry and the domain behind the gRPC
//! edge — snapshots over snapshotter drivers, content over the content
//! driver, the differ, namespaces, the event exchange, the gc settings and the server's
//! identity. No tonic here: the edge (`rcontainerd-services`) maps these
//! types to the wire.
//!
//! Each domain module ends in a `registration()`: the built-in plugin that
//! builds its domain object and hands it, typed, to the plugins after it.

pub mod content;
pub mod differ;
pub mod events;
pub mod fault;
pub mod gc;
pub mod ids;
pub mod introspection;
pub mod leases;
pub mod metadata;
pub mod records;
pub mod registry;
pub mod snapshots;
pub mod tasks;

//! containerd's v1 gRPC API (services, types, events) as tonic/prost code, and
//! the messages of the ttrpc services between containerd and its shims.
//!
//! Generated at build time from the protos that the `containerd-client` and
//! `containerd-shim-protos` packages ship (see `build.rs`); module paths follow
//! the proto packages, e.g. [`containerd::services::namespaces::v1`]. The ttrpc
//! services ([`ttrpc`]) come as prost messages only: they are called and served
//! over the `rcontainerd-ttrpc` crate, not tonic.
//!
//! [`headers`] names the gRPC metadata containerd reads from a call. With the
//! `client` feature (off by default; the daemon's proxy plugins turn it on), [`client`]
//! dials a daemon's unix socket and tags calls with those headers, the way
//! containerd's Go client does.

#![allow(clippy::all, missing_docs, rustdoc::all)]

include!(concat!(env!("OUT_DIR"), "/containerd_api.rs"));

/// `grpc.health.v1`, from the `tonic-health` crate's generated code.
pub use tonic_health as health;

/// Shorter paths for the services this daemon serves.
pub mod services {
    pub use crate::containerd::services::containers::v1 as containers;
    pub use crate::containerd::services::content::v1 as content;
    pub use crate::containerd::services::diff::v1 as diff;
    pub use crate::containerd::services::events::v1 as events;
    pub use crate::containerd::services::images::v1 as images;
    pub use crate::containerd::services::introspection::v1 as introspection;
    pub use crate::containerd::services::leases::v1 as leases;
    pub use crate::containerd::services::namespaces::v1 as namespaces;
    pub use crate::containerd::services::snapshots::v1 as snapshots;
    pub use crate::containerd::services::tasks::v1 as tasks;
    pub use crate::containerd::services::version::v1 as version;
}

pub use containerd::types;

/// The messages of the ttrpc services a shim speaks (no service code: the ttrpc
/// crate carries them). Service paths: [`ttrpc::task::SERVICE`] and
/// [`ttrpc::events::SERVICE`].
pub mod ttrpc {
    /// `containerd.task.v2`: the task service a containerd 1.6 shim serves.
    pub mod task {
        pub use crate::containerd::task::v2::*;
        /// The ttrpc service name of the task API v2.
        pub const SERVICE: &str = "containerd.task.v2.Task";
    }
    /// `containerd.services.events.ttrpc.v1`: the events service a shim calls
    /// (`Forward`) on the address in its `TTRPC_ADDRESS`.
    pub mod events {
        pub use crate::containerd::services::events::ttrpc::v1::*;
        /// The ttrpc service name of the events service.
        pub const SERVICE: &str = "containerd.services.events.ttrpc.v1.Events";
    }
    /// `containerd.runc.v1`: the runc shim's options (`Options`, sent as a
    /// `CreateTaskRequest.options` Any) and `ProcessDetails`.
    pub mod runc {
        pub use crate::containerd::runc::v1::*;
    }
}

/// The events containerd publishes (`containerd.events.*`; the image events
/// are in [`services::images`], the package containerd declares them in).
pub use containerd::events;

// The crate-wide allow above is for the generated code; what is written here is linted.
#[warn(clippy::all, missing_docs)]
pub mod headers;

#[cfg(feature = "client")]
#[warn(clippy::all, missing_docs)]
pub mod client;

#[warn(clippy::all)]
pub mod status;

//! The daemon's gRPC edge: containerd's v1 API over the core's domain.
//!
//! One file per API service, each ending in the registration of its
//! `io.containerd.grpc.v1` plugin; errors become statuses in one place
//! ([`status`]); namespaced services get the namespace header checked by
//! one interceptor ([`namespace`]); the [`server`] serves whatever gRPC
//! plugins the registry holds, with the same limits for all.

pub mod containers;
pub mod content;
pub mod convert;
pub mod diff;
pub mod events;
pub mod health;
pub mod images;
pub mod introspection;
pub mod leases;
pub mod namespace;
pub mod namespaces;
pub mod server;
pub mod service;
pub mod snapshots;
pub mod status;
pub mod tasks;
pub mod ttrpc;
pub mod version;

pub use service::{GrpcService, Limits, Routes};

use rcontainerd_pkg::errdefs::Error;
use status::IntoStatus;

/// The filters of a List of metadata records (images, containers,
/// leases). containerd's metadata store wraps the parser's error in the
/// class once more, so its message ends in `invalid argument: invalid
/// argument`; so does ours.
#[allow(clippy::result_large_err)]
pub fn record_filter(
    filters: &[String],
) -> Result<rcontainerd_pkg::filters::Filter, tonic::Status> {
    rcontainerd_pkg::filters::Filter::parse_all(filters).map_err(|e| {
        // Sent as is: the usual suffix rule would not add the class a second time.
        Error::invalid_argument(format!("{}: invalid argument", e.wire_message()))
            .bare()
            .into_status()
    })
}

/// After a Delete with `sync` (images, leases): returns once a collection
/// that started after the deletion has finished; at once without the gc plugin.
pub async fn collect_after_sync_delete(
    gc: Option<std::sync::Arc<rcontainerd_core::gc::Scheduler>>,
) -> Result<(), tonic::Status> {
    if let Some(gc) = gc {
        blocking(move || gc.collect_and_wait().map(drop)).await?;
    }
    Ok(())
}

/// Runs a point read of the store (a Get, an Info) on the calling worker.
/// A read is a few µs of RocksDB's memtable or block cache, while the hop
/// to a blocking thread and back costs tens of µs of wake-ups on a busy
/// host, more than the read itself; writes (which sync) and whole-namespace
/// lists still go through [`blocking`].
pub fn inline<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, tonic::Status> {
    f().map_err(IntoStatus::into_status)
}

/// Runs synchronous store or driver work off the async executor; its error
/// becomes the call's status.
pub async fn blocking<T, F>(f: F) -> Result<T, tonic::Status>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("worker task failed: {e}")).into_status())?
        .map_err(IntoStatus::into_status)
}

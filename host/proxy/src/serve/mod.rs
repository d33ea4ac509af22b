//! The server side: one driver served as containerd's `Snapshots` or
//! `Content` service on a unix socket, the exact inverse of the proxy
//! clients. An isolated driver's child process serves its driver with
//! [`serve`]; the daemon reaches it through [`crate::snapshotter`] or
//! [`crate::content_store`], as it would any proxy plugin.
//!
//! One driver per socket: the `snapshotter` field of requests and the
//! namespace header are ignored. Driver calls block, so they run on the
//! blocking pool; errors keep their class (containerd's errdefs codes).

pub(crate) mod content;
mod read;
pub(crate) mod snapshot;

use std::future::Future;

pub use content::ContentService;
pub use read::{read_stream, READ_CHUNK};
pub use snapshot::SnapshotService;

use std::sync::Arc;

use rcontainerd_plugin_api::snapshot::Snapshotter;
use rcontainerd_ttrpc::blocking::{Slot, Split};

use rcontainerd_api::services::content::content_server::ContentServer;
use rcontainerd_api::services::snapshots::snapshots_server::SnapshotsServer;
use rcontainerd_api::status::IntoStatus;
use rcontainerd_plugin_api::{Driver, PluginError, Result};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use crate::remote::{MAX_MESSAGE_SIZE, TTRPC_MAX_MESSAGE_SIZE};

/// Why [`serve`] could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Only snapshotter and content drivers have a gRPC service.
    #[error("a {0} driver cannot be served: only snapshotter and content drivers can")]
    Unsupported(&'static str),
    #[error("serving: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `driver` on `listener` until `shutdown` completes (then open calls
/// finish first): `Snapshots` for a snapshotter, `Content` for a content
/// store, with containerd's 16 MiB message limits both ways.
pub async fn serve(
    driver: Driver,
    listener: UnixListener,
    shutdown: impl Future<Output = ()>,
) -> std::result::Result<(), ServeError> {
    let mut builder = tonic::transport::Server::builder()
        // Blobs stream through Write and Read: windows larger than h2's
        // 64 KiB default keep a local socket's pipe full.
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(16 << 20));
    let router = match driver {
        Driver::Snapshotter(driver) => builder.add_service(
            SnapshotsServer::new(SnapshotService::new(driver))
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        ),
        Driver::Content(driver) => builder.add_service(
            ContentServer::new(ContentService::new(driver))
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        ),
        Driver::Runtime(_) => return Err(ServeError::Unsupported("runtime")),
        Driver::None => return Err(ServeError::Unsupported("empty")),
    };
    router
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}

/// A snapshotter driver as a `Snapshots` service over ttrpc on blocking
/// sockets, each connection's calls answered on its own thread: what an
/// isolated snapshotter's child serves ([`crate::Remote::supervised`] is its
/// client). One round trip per call, where gRPC cost several thread
/// hand-offs on each side (docs/benchmarks.md#isolation).
pub fn snapshotter_over_ttrpc(
    driver: Arc<dyn Snapshotter>,
) -> Arc<rcontainerd_ttrpc::blocking::Server> {
    let handler = move |_: &mut Slot, method: &str, payload: bytes::Bytes| {
        snapshot::answer(&*driver, method, payload)
    };
    rcontainerd_ttrpc::blocking::Server::new(
        snapshot::SERVICE,
        Arc::new(handler),
        TTRPC_MAX_MESSAGE_SIZE,
    )
}

/// A content store driver as a `Content` service over ttrpc on blocking
/// sockets, as [`snapshotter_over_ttrpc`] serves a snapshotter; a
/// connection's write in progress stays with that connection.
pub fn content_store_over_ttrpc(
    driver: Arc<dyn rcontainerd_plugin_api::content::Store>,
) -> Arc<rcontainerd_ttrpc::blocking::Server> {
    let handler = move |slot: &mut Slot, method: &str, payload: bytes::Bytes| {
        content::answer(&driver, slot, method, payload)
    };
    rcontainerd_ttrpc::blocking::Server::new(
        content::SERVICE,
        Arc::new(handler),
        TTRPC_MAX_MESSAGE_SIZE,
    )
}

/// A driver error as the status containerd would send: its class's code
/// and the message with the class's words.
pub(crate) fn to_status(error: PluginError) -> tonic::Status {
    rcontainerd_pkg::errdefs::Error::from(error).into_status()
}

/// Runs a blocking driver call on the blocking pool.
pub(crate) async fn blocking<T, F>(f: F) -> std::result::Result<T, tonic::Status>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| tonic::Status::internal(format!("driver call failed: {e}")))?
        .map_err(to_status)
}

/// Answers a gRPC `request` with `f` and `driver` on the blocking pool: the
/// shape of every unary call of both services.
pub(crate) async fn answer_blocking<D, Req, Resp>(
    driver: &Arc<D>,
    request: tonic::Request<Req>,
    f: fn(&D, Req) -> std::result::Result<Resp, tonic::Status>,
) -> std::result::Result<tonic::Response<Resp>, tonic::Status>
where
    D: ?Sized + Send + Sync + 'static,
    Req: Send + 'static,
    Resp: Send + 'static,
{
    let driver = driver.clone();
    let request = request.into_inner();
    tokio::task::spawn_blocking(move || f(&*driver, request))
        .await
        .map_err(|e| tonic::Status::internal(format!("driver call failed: {e}")))?
        .map(tonic::Response::new)
}

/// A ttrpc request's payload as the message `Req`.
pub(crate) fn decode<Req: prost::Message + Default>(
    payload: bytes::Bytes,
) -> std::result::Result<Req, tonic::Status> {
    Req::decode(payload)
        .map_err(|e| tonic::Status::invalid_argument(format!("undecodable request: {e}")))
}

/// Answers one ttrpc call with `f`: the request decoded, the answer encoded
/// whole.
pub(crate) fn unary<Req: prost::Message + Default, Resp: prost::Message>(
    payload: bytes::Bytes,
    f: impl FnOnce(Req) -> std::result::Result<Resp, tonic::Status>,
) -> std::result::Result<Split<'static>, tonic::Status> {
    f(decode(payload)?).map(|response| Split::whole(response.encode_to_vec()))
}

/// A status as ttrpc carries it: the same code and message.
pub(crate) fn ttrpc_status(status: tonic::Status) -> rcontainerd_ttrpc::Status {
    rcontainerd_ttrpc::Status::new(status.code() as i32, status.message())
}

/// `labels.<key>` of a filter path, for the List filters.
pub(crate) fn label<'a>(
    labels: &'a std::collections::BTreeMap<String, String>,
    path: &[String],
) -> Option<&'a String> {
    labels.get(&path[1..].join("."))
}

/// Infos per List response message.
const LIST_BATCH: usize = 100;

/// `items` in List messages of [`LIST_BATCH`], moved, not copied.
pub(crate) fn batches<T>(items: impl IntoIterator<Item = T>) -> Vec<Vec<T>> {
    let mut all = Vec::new();
    let mut batch = Vec::new();
    for item in items {
        batch.push(item);
        if batch.len() == LIST_BATCH {
            all.push(std::mem::take(&mut batch));
        }
    }
    if !batch.is_empty() {
        all.push(batch);
    }
    all
}

//! The bench's side of the wire: its async runtime, its connections, and the request headers each
//! daemon needs — a namespace always, and for containerd a lease that keeps its GC off the objects we create.

use anyhow::Context;
use rcontainerd_api::client::{Dialer, Headers};
use rcontainerd_api::services::leases::{leases_client::LeasesClient, CreateRequest};
use std::collections::HashMap;
use std::path::Path;
use tonic::transport::Channel;

/// containerd's GC keeps a lease until this time; far enough out that no run outlives it.
const LEASE_EXPIRY: &str = "2099-01-01T00:00:00Z";

/// The clients' async runtime: single-threaded, so that a call's latency is the daemon's rather
/// than hand-offs between the client's own threads.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// One connection to the daemon listening on `socket`. A missing socket fails at once (the readiness probe
/// polls on its own, much finer schedule), and HTTP/2 keeps h2's fixed flow-control windows, as every
/// measurement in docs/benchmarks.md was taken with.
pub async fn connect(socket: &Path) -> anyhow::Result<Channel> {
    Dialer::new()
        .wait_for_socket(false)
        .http2_adaptive_window(false)
        .connect(socket)
        .await
        .with_context(|| format!("connecting to {}", socket.display()))
}

/// The headers of one measurement in `namespace`; with `use_lease`, a lease is created there first
/// (containerd) and sent on every call too.
pub async fn headers(
    channel: Channel,
    namespace: &str,
    use_lease: bool,
) -> anyhow::Result<Headers> {
    let headers = Headers::new()
        .namespace(namespace)
        .with_context(|| format!("namespace {namespace} as a header"))?;
    if !use_lease {
        return Ok(headers);
    }
    let id = create_lease(channel, &headers).await?;
    headers.lease(&id).context("lease id as a header")
}

async fn create_lease(channel: Channel, headers: &Headers) -> anyhow::Result<String> {
    let labels = HashMap::from([(
        "containerd.io/gc.expire".to_string(),
        LEASE_EXPIRY.to_string(),
    )]);
    let reply = LeasesClient::new(channel)
        .create(headers.request(CreateRequest {
            id: format!("rcontainerd-bench-{}", std::process::id()),
            labels,
        }))
        .await
        .context("creating a lease")?;
    let lease = reply
        .into_inner()
        .lease
        .context("lease missing from the reply")?;
    Ok(lease.id)
}

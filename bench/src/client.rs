//! The bench's side of the wire: its async runtime, its connections, and the request headers each
//! daemon needs — a namespace always, and a lease that keeps the daemon's GC off the objects we create.

use anyhow::Context;
use rcontainerd_api::client::{Dialer, Headers};
use rcontainerd_api::services::leases::{leases_client::LeasesClient, CreateRequest};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};
use tonic::transport::Channel;

/// A daemon's GC keeps a lease until its `containerd.io/gc.expire` time: this long after it is created,
/// longer than any measurement made under it.
const LEASE_LIFETIME: Duration = Duration::from_secs(3600);

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
/// and sent on every call too.
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
        rcontainerd_pkg::time::format_rfc3339(SystemTime::now() + LEASE_LIFETIME),
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

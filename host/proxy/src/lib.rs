//! Drivers over containerd's `Snapshots` and `Content` gRPC services, both
//! sides.
//!
//! The client side is containerd's `proxy_plugins`: a proxy is a driver like
//! any loaded one (it implements plugin-api's `Snapshotter` or content
//! `Store`), whose every call is a gRPC call to an external `Snapshots` or
//! `Content` service on a unix socket. The server side ([`serve`]) is its
//! inverse: one driver served as that service, so that a driver can run in a
//! process of its own and the daemon reach it through a proxy.
//!
//! Isolated drivers' children speak the same services over ttrpc on blocking
//! sockets instead (one round trip per call; [`Remote::supervised`],
//! [`serve::snapshotter_over_ttrpc`], [`serve::content_store_over_ttrpc`]):
//! the proxies send each request over whichever their remote speaks.
//!
//! The socket is dialled on the first call, not at start-up: a service that
//! is not there yet fails calls Unavailable, naming the plugin and the socket,
//! and is reached as soon as it listens; a broken connection is dialled
//! again on the next call. Remote errors keep their class (containerd's
//! errdefs mapping of gRPC codes).

mod content;
mod park;
mod remote;
pub mod serve;
mod snapshot;
mod wire;

use std::sync::Arc;

pub use content::ProxyContentStore;
pub use remote::{Remote, Watcher};
pub use serve::{serve, ContentService, ServeError, SnapshotService};
pub use snapshot::ProxySnapshotter;

use rcontainerd_plugin_api::{content::Store, snapshot::Snapshotter, Result};

/// The namespace header proxies send. The daemon's drivers see no
/// namespace (the metadata layer above them owns names per namespace and
/// hands them unique keys), so every call of a proxy runs in this one.
pub const NAMESPACE: &str = "default";

/// A snapshotter driver for plugin `uri`, served at `address` under the
/// snapshotter name `name` (containerd sends the proxy plugin's name).
pub fn snapshotter(
    uri: &str,
    address: &str,
    name: &str,
    namespace: &str,
) -> Result<Arc<dyn Snapshotter>> {
    let remote = Remote::new(uri, address, namespace)?;
    Ok(Arc::new(ProxySnapshotter::new(remote, name)))
}

/// A content store driver for plugin `uri`, served at `address`.
pub fn content_store(uri: &str, address: &str, namespace: &str) -> Result<Arc<dyn Store>> {
    let remote = Remote::new(uri, address, namespace)?;
    Ok(Arc::new(ProxyContentStore::new(remote)))
}

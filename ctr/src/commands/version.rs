//! `ctr version`: client and server versions, warning when they differ.

use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::introspection::introspection_client::IntrospectionClient;
use rcontainerd_api::services::version::version_client::VersionClient;

use crate::errors::{unclassified, RpcError};

/// The containerd release whose API we speak, with our version as build
/// metadata; the daemon reports the same form, so matching builds agree.
pub const CLIENT_VERSION: &str = concat!("1.6.20+rcontainerd.", env!("CARGO_PKG_VERSION"));
pub const CLIENT_REVISION: &str = concat!("rcontainerd-", env!("CARGO_PKG_VERSION"));
const RUSTC_VERSION: &str = env!("CTR_RUSTC_VERSION");

/// The client half, printed before dialling so it shows even when the
/// daemon cannot be reached.
pub fn client_section() -> String {
    format!(
        "Client:\n  Version:  {CLIENT_VERSION}\n  Revision: {CLIENT_REVISION}\n  Rust version: {RUSTC_VERSION}\n\n"
    )
}

/// Prints the server half line by line, so a failure part-way leaves what
/// was already known on screen, then warns on stderr about a version or
/// revision that differs from ours. As with containerd's ctr, a failed
/// Version call is reported unclassified and a failed Server call classified.
pub async fn server_section(channel: NamespacedChannel) -> anyhow::Result<()> {
    let version = VersionClient::new(channel.clone())
        .version(())
        .await
        .map_err(|status| anyhow::anyhow!(unclassified(&status)))?
        .into_inner();
    println!("Server:");
    println!("  Version:  {}", version.version);
    println!("  Revision: {}", version.revision);
    let server = IntrospectionClient::new(channel)
        .server(())
        .await
        .map_err(RpcError::from)?
        .into_inner();
    println!("  UUID: {}", server.uuid);
    if version.version != CLIENT_VERSION {
        eprintln!("WARNING: version mismatch");
    }
    if version.revision != CLIENT_REVISION {
        eprintln!("WARNING: revision mismatch");
    }
    Ok(())
}

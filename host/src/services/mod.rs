//! gRPC services: thin wrappers that decode a request, call the local
//! store or registry, and map errors once through [`crate::errdefs`].

pub mod content;
pub mod introspection;
pub mod namespace_header;
pub mod namespaces;
pub mod pending;
pub mod snapshots;
pub mod version;

use crate::errdefs::{Error, Result};

/// Runs synchronous store or plugin work off the async executor.
pub async fn blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("worker task failed: {e}")))?
}

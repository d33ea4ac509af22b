//! gRPC over the daemon's unix socket.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// The gRPC metadata key containerd reads the namespace from.
pub const NAMESPACE_HEADER: &str = "containerd-namespace";

/// Connects to a gRPC server listening on the unix socket `socket`.
pub async fn connect(socket: &Path) -> Result<Channel, tonic::transport::Error> {
    let socket: PathBuf = socket.to_path_buf();
    // The URI is a placeholder: the connector ignores it, and h2 wants `:authority` to be a host name.
    Endpoint::try_from("http://localhost")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        }))
        .await
}

/// A request carrying the `containerd-namespace` header.
pub fn namespaced<T>(message: T, namespace: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        NAMESPACE_HEADER,
        namespace.parse().expect("namespace is valid metadata"),
    );
    request
}

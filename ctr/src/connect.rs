//! Dialling the daemon: gRPC over a unix socket, every call tagged with the
//! namespace, the way containerd's client does it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Request, Status};

/// The metadata key containerd reads the namespace of a call from.
pub const NAMESPACE_HEADER: &str = "containerd-namespace";

/// How long to keep trying to dial when `--connect-timeout` is not given
/// (containerd's client waits the same).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often to look again for a socket that does not exist yet.
const DIAL_RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// A channel whose calls carry the namespace header.
pub type NamespacedChannel = InterceptedService<Channel, NamespaceHeader>;

/// Failure to reach the daemon; the text matches containerd's client.
#[derive(Debug)]
pub struct DialError {
    address: String,
    reason: String,
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "failed to dial {:?}: {}", self.address, self.reason)
    }
}

impl std::error::Error for DialError {}

/// Adds `containerd-namespace: <namespace>` to every request.
#[derive(Debug, Clone)]
pub struct NamespaceHeader {
    value: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl NamespaceHeader {
    /// A header for `namespace`; a name that cannot be a header value is sent
    /// as no header, and the daemon then rejects the call like a missing one.
    pub fn new(namespace: &str) -> Self {
        Self {
            value: MetadataValue::try_from(namespace).ok(),
        }
    }
}

impl Interceptor for NamespaceHeader {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.value {
            request
                .metadata_mut()
                .insert(NAMESPACE_HEADER, value.clone());
        }
        Ok(request)
    }
}

/// The socket path in `address`, which may carry a `unix://` prefix.
pub fn socket_path(address: &str) -> PathBuf {
    PathBuf::from(address.strip_prefix("unix://").unwrap_or(address))
}

/// Connects to the daemon at `address`, waiting up to `timeout` for the socket
/// to appear, and tags every call on the channel with `namespace`.
pub async fn connect(
    address: &str,
    namespace: &str,
    timeout: Duration,
) -> Result<NamespacedChannel, DialError> {
    let dial_error = |reason: String| DialError {
        address: address.to_owned(),
        reason,
    };
    let path = socket_path(address);
    let first = match tokio::time::timeout(timeout, dial_when_present(&path)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => return Err(dial_error(describe_dial_failure(&path, &err))),
        Err(_) => {
            return Err(dial_error(format!(
                "context deadline exceeded: connection error: desc = \"transport: error while dialing: dial unix://{}: timeout\"",
                path.display()
            )))
        }
    };

    // The first connection is the one dialled above; reconnects dial afresh.
    let ready = Arc::new(Mutex::new(Some(first)));
    let connector = tower::service_fn(move |_: Uri| {
        let ready = Arc::clone(&ready);
        let path = path.clone();
        async move {
            let taken = ready.lock().map(|mut slot| slot.take()).unwrap_or(None);
            let stream = match taken {
                Some(stream) => stream,
                None => UnixStream::connect(&path).await?,
            };
            Ok::<_, io::Error>(TokioIo::new(stream))
        }
    });
    // The authority is what containerd's client sends; h2 refuses socket paths.
    // Flow-control windows sized by measuring the link (as grpc-go does)
    // rather than h2's fixed 64 KiB, which would stall every blob chunk.
    let channel = Endpoint::from_static("http://localhost")
        .http2_adaptive_window(true)
        .connect_with_connector(connector)
        .await
        .map_err(|err| dial_error(format!("connection error: desc = \"{err}\"")))?;
    Ok(InterceptedService::new(
        channel,
        NamespaceHeader::new(namespace),
    ))
}

/// Dials `path`, retrying while the socket does not exist (the daemon may
/// still be starting); other failures are final.
async fn dial_when_present(path: &Path) -> io::Result<UnixStream> {
    loop {
        match UnixStream::connect(path).await {
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                tokio::time::sleep(DIAL_RETRY_INTERVAL).await;
            }
            other => return other,
        }
    }
}

/// containerd's wording for a failed dial, e.g. `... connect: connection refused`.
fn describe_dial_failure(path: &Path, err: &io::Error) -> String {
    format!(
        "connection error: desc = \"transport: error while dialing: dial unix {}: connect: {}\"",
        path.display(),
        os_error_text(err)
    )
}

/// The OS's description of `err` in lower case, without Rust's `(os error N)`.
pub fn os_error_text(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" (os error ") {
        Some(index) => &text[..index],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_unix_scheme() {
        assert_eq!(
            socket_path("unix:///run/x.sock"),
            PathBuf::from("/run/x.sock")
        );
        assert_eq!(socket_path("/run/x.sock"), PathBuf::from("/run/x.sock"));
    }

    #[test]
    fn describes_os_errors_in_go_style() {
        let err = io::Error::from_raw_os_error(111);
        assert_eq!(os_error_text(&err), "connection refused");
    }

    #[tokio::test]
    async fn refuses_a_file_that_is_not_a_socket_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain-file");
        std::fs::write(&path, b"").unwrap();
        let address = path.to_str().unwrap();
        let started = std::time::Instant::now();
        let err = connect(address, "default", Duration::from_secs(5))
            .await
            .expect_err("dialling a plain file succeeded");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            err.to_string(),
            format!("failed to dial {address:?}: connection error: desc = \"transport: error while dialing: dial unix {address}: connect: connection refused\"")
        );
    }

    #[tokio::test]
    async fn gives_up_on_a_missing_socket_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let address = dir.path().join("missing.sock");
        let address = address.to_str().unwrap();
        let started = std::time::Instant::now();
        let err = connect(address, "default", Duration::from_millis(300))
            .await
            .expect_err("dialling a missing socket succeeded");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(
            err.to_string().starts_with(&format!(
                "failed to dial {address:?}: context deadline exceeded"
            )),
            "{err}"
        );
    }

    /// A Version service that answers with the namespace header it received.
    struct EchoNamespace;

    #[tonic::async_trait]
    impl rcontainerd_api::services::version::version_server::Version for EchoNamespace {
        async fn version(
            &self,
            request: Request<()>,
        ) -> Result<tonic::Response<rcontainerd_api::services::version::VersionResponse>, Status>
        {
            let namespace = request
                .metadata()
                .get(NAMESPACE_HEADER)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("<none>")
                .to_owned();
            Ok(tonic::Response::new(
                rcontainerd_api::services::version::VersionResponse {
                    version: namespace,
                    revision: String::new(),
                },
            ))
        }
    }

    #[tokio::test]
    async fn sends_the_namespace_on_every_call() {
        use rcontainerd_api::services::version::{
            version_client::VersionClient, version_server::VersionServer,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("echo.sock");
        let listener = tokio::net::UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(VersionServer::new(EchoNamespace))
                .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener)),
        );
        let channel = connect(path.to_str().unwrap(), "team-a", Duration::from_secs(5))
            .await
            .unwrap();
        let mut client = VersionClient::new(channel);
        for _ in 0..2 {
            let response = client.version(()).await.unwrap().into_inner();
            assert_eq!(response.version, "team-a");
        }
        server.abort();
    }
}

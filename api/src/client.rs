//! Dialling a daemon: gRPC over its unix socket, calls tagged with the
//! namespace (and lease) headers, the way containerd's Go client does it.
//!
//! One connector for every client in this repository (ctr, the integration
//! tests, the bench). Its retry and timeout behaviour and its error messages
//! are ctr's, which match containerd's ctr word for word.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use rcontainerd_api::client::{self, Headers};
//! use rcontainerd_api::services::namespaces::namespaces_client::NamespacesClient;
//!
//! let channel = client::connect("/run/rcontainerd/rcontainerd.sock", client::DEFAULT_CONNECT_TIMEOUT).await?;
//! let headers = Headers::new().namespace("default")?;
//! let mut namespaces = NamespacesClient::new(headers.intercept(channel));
//! # let _ = &mut namespaces;
//! # Ok(())
//! # }
//! ```

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Request, Status};

use crate::headers;

/// How long to keep trying to dial when the caller has no timeout of its own
/// (containerd's client waits the same).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often to look again for a socket that does not exist yet.
const DIAL_RETRY_INTERVAL: Duration = Duration::from_millis(100);

/// A channel whose every call carries the [`Headers`] it was wrapped with.
pub type NamespacedChannel = InterceptedService<Channel, Headers>;

/// Connects to the daemon at `address` (a socket path, optionally with a
/// `unix://` prefix), waiting up to `timeout` for the socket to appear.
///
/// The same as `Dialer::new().timeout(timeout).connect(address)`.
pub async fn connect(address: impl AsRef<OsStr>, timeout: Duration) -> Result<Channel, DialError> {
    Dialer::new().timeout(timeout).connect(address).await
}

/// How to dial: [`Dialer::new`] gives ctr's behaviour, the setters change one
/// thing each.
#[derive(Debug, Clone)]
pub struct Dialer {
    timeout: Duration,
    wait_for_socket: bool,
    adaptive_window: bool,
}

impl Default for Dialer {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_CONNECT_TIMEOUT,
            wait_for_socket: true,
            adaptive_window: true,
        }
    }
}

impl Dialer {
    /// Waits up to [`DEFAULT_CONNECT_TIMEOUT`], looking for the socket again
    /// every 100 ms while it does not exist, with HTTP/2 flow-control windows
    /// sized by measuring the link.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives up dialling after `timeout` (the HTTP/2 handshake that follows
    /// a successful dial is not bounded by it).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether a socket that does not exist (yet) is waited for, as while a
    /// daemon starts (the default), or fails the dial at once — for callers
    /// that poll on their own schedule, e.g. a readiness probe.
    pub fn wait_for_socket(mut self, wait: bool) -> Self {
        self.wait_for_socket = wait;
        self
    }

    /// Whether HTTP/2 flow-control windows are sized by measuring the link,
    /// as grpc-go does (the default), or stay at h2's fixed 64 KiB, which
    /// stalls every large blob chunk on the link's round trip.
    pub fn http2_adaptive_window(mut self, enabled: bool) -> Self {
        self.adaptive_window = enabled;
        self
    }

    /// Connects to the daemon at `address`, a socket path, optionally with a
    /// `unix://` prefix.
    pub async fn connect(&self, address: impl AsRef<OsStr>) -> Result<Channel, DialError> {
        let address = address.as_ref();
        let dial_error = |reason: String| DialError {
            address: address.to_string_lossy().into_owned(),
            reason,
        };
        let path = socket_path(address);
        let dial = async {
            if self.wait_for_socket {
                dial_when_present(&path).await
            } else {
                UnixStream::connect(&path).await
            }
        };
        let first = match tokio::time::timeout(self.timeout, dial).await {
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
        let mut endpoint = Endpoint::from_static("http://localhost");
        if self.adaptive_window {
            endpoint = endpoint.http2_adaptive_window(true);
        }
        endpoint
            .connect_with_connector(connector)
            .await
            .map_err(|err| dial_error(format!("connection error: desc = \"{err}\"")))
    }
}

/// Failure to reach the daemon; the text matches containerd's client, e.g.
/// `failed to dial "/run/x.sock": connection error: desc = "transport: error
/// while dialing: dial unix /run/x.sock: connect: connection refused"`.
#[derive(Debug, Clone)]
pub struct DialError {
    address: String,
    reason: String,
}

impl fmt::Display for DialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to dial {:?}: {}", self.address, self.reason)
    }
}

impl std::error::Error for DialError {}

/// The socket path in `address`, which may carry a `unix://` prefix.
pub fn socket_path(address: impl AsRef<OsStr>) -> PathBuf {
    let bytes = address.as_ref().as_bytes();
    let path = bytes.strip_prefix(b"unix://").unwrap_or(bytes);
    PathBuf::from(OsStr::from_bytes(path))
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

/// The OS's description of `err` the way Go prints it: in lower case, without
/// Rust's `(os error N)`, e.g. `connection refused`.
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

/// The namespace and lease headers ([`headers::NAMESPACE`], [`headers::LEASE`])
/// sent with calls: on every call of a channel ([`Headers::intercept`], or as
/// a tonic [`Interceptor`]) or on one request ([`Headers::request`]).
#[derive(Debug, Clone, Default)]
pub struct Headers {
    namespace: Option<AsciiMetadataValue>,
    lease: Option<AsciiMetadataValue>,
}

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends `namespace` as the namespace header.
    pub fn namespace(mut self, namespace: &str) -> Result<Self, InvalidHeader> {
        self.namespace = Some(header_value(headers::NAMESPACE, namespace)?);
        Ok(self)
    }

    /// Sends `lease` (a lease's id) as the lease header.
    pub fn lease(mut self, lease: &str) -> Result<Self, InvalidHeader> {
        self.lease = Some(header_value(headers::LEASE, lease)?);
        Ok(self)
    }

    /// Sets the headers in `metadata`, replacing any already there.
    pub fn insert_into(&self, metadata: &mut MetadataMap) {
        if let Some(namespace) = &self.namespace {
            metadata.insert(headers::NAMESPACE, namespace.clone());
        }
        if let Some(lease) = &self.lease {
            metadata.insert(headers::LEASE, lease.clone());
        }
    }

    /// A request for `message` that carries the headers.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        self.insert_into(request.metadata_mut());
        request
    }

    /// `channel`, with the headers on every call.
    pub fn intercept(self, channel: Channel) -> NamespacedChannel {
        InterceptedService::new(channel, self)
    }
}

impl Interceptor for Headers {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        self.insert_into(request.metadata_mut());
        Ok(request)
    }
}

/// A request for `message` in `namespace`. A namespace that cannot be a
/// header value is sent as no header (as ctr sends it): the daemon then
/// rejects the call like one without a namespace.
pub fn namespaced<T>(message: T, namespace: &str) -> Request<T> {
    Headers::new()
        .namespace(namespace)
        .unwrap_or_default()
        .request(message)
}

/// A request for `message` in `namespace` under lease `lease` (what it
/// creates is held by the lease); values that cannot be headers are left out,
/// as [`namespaced`] does.
pub fn leased<T>(message: T, namespace: &str, lease: &str) -> Request<T> {
    let headers = Headers::new().namespace(namespace).unwrap_or_default();
    let headers = match headers.clone().lease(lease) {
        Ok(with_lease) => with_lease,
        Err(_) => headers,
    };
    headers.request(message)
}

fn header_value(header: &'static str, value: &str) -> Result<AsciiMetadataValue, InvalidHeader> {
    AsciiMetadataValue::try_from(value).map_err(|_| InvalidHeader {
        header,
        value: value.to_owned(),
    })
}

/// A namespace or lease that gRPC metadata cannot carry (it holds a control
/// character, such as a newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHeader {
    header: &'static str,
    value: String,
}

impl fmt::Display for InvalidHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} cannot be sent as gRPC header {}",
            self.value, self.header
        )
    }
}

impl std::error::Error for InvalidHeader {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::version::{
        version_client::VersionClient, version_server::Version, version_server::VersionServer,
        VersionResponse,
    };

    #[test]
    fn strips_the_unix_scheme() {
        assert_eq!(
            socket_path("unix:///run/x.sock"),
            PathBuf::from("/run/x.sock")
        );
        assert_eq!(socket_path("/run/x.sock"), PathBuf::from("/run/x.sock"));
        assert_eq!(
            socket_path(Path::new("/run/x.sock")),
            PathBuf::from("/run/x.sock")
        );
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
        let err = connect(address, Duration::from_secs(5))
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
        let err = connect(address, Duration::from_millis(300))
            .await
            .expect_err("dialling a missing socket succeeded");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(
            err.to_string(),
            format!("failed to dial {address:?}: context deadline exceeded: connection error: desc = \"transport: error while dialing: dial unix://{address}: timeout\"")
        );
    }

    #[tokio::test]
    async fn without_waiting_a_missing_socket_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let address = dir.path().join("missing.sock");
        let started = std::time::Instant::now();
        let err = Dialer::new()
            .wait_for_socket(false)
            .connect(&address)
            .await
            .expect_err("dialling a missing socket succeeded");
        assert!(started.elapsed() < Duration::from_secs(2));
        let address = address.display();
        assert_eq!(
            err.to_string(),
            format!("failed to dial \"{address}\": connection error: desc = \"transport: error while dialing: dial unix {address}: connect: no such file or directory\"")
        );
    }

    #[tokio::test]
    async fn waits_for_a_socket_that_appears_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.sock");
        let server = {
            let path = path.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(250)).await;
                server(&path).await
            })
        };
        let channel = connect(&path, Duration::from_secs(5)).await.unwrap();
        let reply = VersionClient::new(Headers::new().intercept(channel))
            .version(())
            .await
            .unwrap();
        assert_eq!(reply.into_inner().version, "<none> <none>");
        server.abort();
    }

    /// A Version service that answers with the namespace and lease headers it received.
    struct EchoHeaders;

    #[tonic::async_trait]
    impl Version for EchoHeaders {
        async fn version(
            &self,
            request: Request<()>,
        ) -> Result<tonic::Response<VersionResponse>, Status> {
            let header = |name| {
                request
                    .metadata()
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("<none>")
                    .to_owned()
            };
            Ok(tonic::Response::new(VersionResponse {
                version: format!("{} {}", header(headers::NAMESPACE), header(headers::LEASE)),
                revision: String::new(),
            }))
        }
    }

    /// Binds `path` and returns the server, which serves [`EchoHeaders`] on it once polled.
    fn server(
        path: &Path,
    ) -> impl std::future::Future<Output = Result<(), tonic::transport::Error>> {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        tonic::transport::Server::builder()
            .add_service(VersionServer::new(EchoHeaders))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener))
    }

    #[tokio::test]
    async fn sends_the_headers_on_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("echo.sock");
        let server = tokio::spawn(server(&path));
        let address = format!("unix://{}", path.display());
        let channel = connect(&address, Duration::from_secs(5)).await.unwrap();
        let headers = Headers::new()
            .namespace("team-a")
            .unwrap()
            .lease("lease-1")
            .unwrap();
        let mut client = VersionClient::new(headers.intercept(channel.clone()));
        for _ in 0..2 {
            let response = client.version(()).await.unwrap().into_inner();
            assert_eq!(response.version, "team-a lease-1");
        }

        let mut plain = VersionClient::new(channel);
        let one = plain.version(namespaced((), "team-b")).await.unwrap();
        assert_eq!(one.into_inner().version, "team-b <none>");
        let none = plain.version(()).await.unwrap();
        assert_eq!(none.into_inner().version, "<none> <none>");
        server.abort();
    }

    #[test]
    fn a_namespace_metadata_cannot_carry_is_refused_or_left_out() {
        let err = Headers::new().namespace("two\nlines").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"two\\nlines\" cannot be sent as gRPC header containerd-namespace"
        );
        let err = Headers::new().lease("del\u{7f}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"del\\u{7f}\" cannot be sent as gRPC header containerd-lease"
        );
        let request = namespaced((), "two\nlines");
        assert!(request.metadata().get(headers::NAMESPACE).is_none());
        let request = namespaced((), "ok");
        assert_eq!(request.metadata().get(headers::NAMESPACE).unwrap(), "ok");
    }
}

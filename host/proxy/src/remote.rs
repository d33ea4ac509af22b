//! One external service: its socket, dialled lazily and again after a broken
//! connection, and the blocking bridge from a driver call to a gRPC call.
//!
//! Driver calls come from the host's blocking threads (and `mounts` from an
//! async worker), so the connections live on a small runtime of the proxies'
//! own, and the caller polls its call on its own thread (see [`crate::park`]):
//! never a runtime's `block_on` inside someone else's runtime.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rcontainerd_api::client::{os_error_text, Headers, NamespacedChannel};
use rcontainerd_plugin_api::{ErrorKind, PluginError, Result};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Code, Status};

/// containerd's default limit for both directions (16 MiB): a long walk or a
/// 200-layer mount list is larger than tonic's 4 MiB default.
pub(crate) const MAX_MESSAGE_SIZE: usize = 16 << 20;

/// The largest message of the isolated drivers' ttrpc transport: a walk or
/// a List answers in one message, so more than gRPC's 16 MiB per message.
pub const TTRPC_MAX_MESSAGE_SIZE: usize = 64 << 20;

/// How long a dial may take before the call fails Unavailable.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The runtime every proxy's calls run on: two workers are plenty for I/O.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("proxy-plugins")
            .enable_all()
            .build()
            .expect("cannot start the proxy plugins' runtime")
    })
}

/// Runs `future` in the proxies' runtime's context, on this thread. On a
/// worker of the daemon's runtime (`mounts` is called there: in-process
/// drivers answer it from memory) the wait first hands the worker's other
/// tasks to another thread, so a slow or hung remote stalls only this call.
fn block<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let wait = || crate::park::block_on(runtime(), future);
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

/// What watches a remote whose service is a driver in a child process of
/// ours (isolation's supervisor): it admits each call and hears of calls
/// that ran past their deadline.
pub trait Watcher: Send + Sync {
    /// Runs on the caller's thread before each call, and may wait (for a
    /// restarting driver, say). The guard it returns is held until the call
    /// ends, so the watcher can tell when calls are in flight; an error fails
    /// the call.
    fn admit(&self) -> Result<Box<dyn Send>>;
    /// A call got no answer within the deadline: the driver hangs.
    fn deadline_passed(&self);
}

/// The service behind one proxy plugin.
pub struct Remote {
    uri: String,
    /// How errors name the plugin: "proxy plugin" or "isolated plugin".
    label: &'static str,
    address: PathBuf,
    headers: Headers,
    channel: Mutex<Option<Channel>>,
    /// Each call fails Unavailable when it takes longer.
    deadline: Option<Duration>,
    watcher: Option<Arc<dyn Watcher>>,
    /// Unary calls go over ttrpc on blocking sockets instead of gRPC (an
    /// isolated snapshotter's child serves that).
    ttrpc: Option<rcontainerd_ttrpc::blocking::Client>,
}

impl Remote {
    /// The service at `address` (a socket path, optionally `unix://…`) that
    /// plugin `uri` talks to; calls carry `namespace` as containerd's
    /// namespace header. Nothing is dialled until the first call.
    pub fn new(uri: &str, address: &str, namespace: &str) -> Result<Arc<Remote>> {
        let headers = Headers::new()
            .namespace(namespace)
            .map_err(|e| PluginError::invalid_argument(format!("proxy plugin {uri}: {e}")))?;
        Ok(Arc::new(Remote {
            uri: uri.to_string(),
            label: "proxy plugin",
            address: rcontainerd_api::client::socket_path(address),
            headers,
            channel: Mutex::new(None),
            deadline: None,
            watcher: None,
            ttrpc: None,
        }))
    }

    /// The private socket of an isolated driver, which serves ttrpc on
    /// blocking sockets ([`crate::serve::snapshotter_over_ttrpc`],
    /// [`crate::serve::content_store_over_ttrpc`]): every call is admitted by
    /// `watcher` and fails after `deadline`.
    pub fn supervised(
        uri: &str,
        address: &Path,
        deadline: Duration,
        watcher: Arc<dyn Watcher>,
    ) -> Arc<Remote> {
        Arc::new(Remote {
            uri: uri.to_string(),
            label: "isolated plugin",
            address: address.to_path_buf(),
            headers: Headers::new(),
            channel: Mutex::new(None),
            deadline: Some(deadline),
            watcher: Some(watcher),
            ttrpc: Some(rcontainerd_ttrpc::blocking::Client::new(
                address,
                TTRPC_MAX_MESSAGE_SIZE,
            )),
        })
    }

    /// Drops the cached channel (and idle connections): the service at the
    /// address is a new one.
    pub fn forget(&self) {
        *self.lock() = None;
        if let Some(ttrpc) = &self.ttrpc {
            ttrpc.forget();
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// "proxy plugin <uri>" or "isolated plugin <uri>", as errors name it.
    pub fn describe(&self) -> String {
        format!("{} {}", self.label, self.uri)
    }

    pub fn address(&self) -> &Path {
        &self.address
    }

    /// One unary call of `service`/`method`: over ttrpc when the remote
    /// speaks it, otherwise `grpc` on a channel to the service. Blocks this
    /// thread.
    pub(crate) fn unary<Req, Resp, F, Fut>(
        self: &Arc<Self>,
        service: &str,
        method: &str,
        request: Req,
        grpc: F,
    ) -> Result<Resp>
    where
        Req: prost::Message + Send + 'static,
        Resp: prost::Message + Default + Send + 'static,
        F: FnOnce(NamespacedChannel, Req) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Resp, Status>> + Send + 'static,
    {
        match self.over_ttrpc(service, method, &request) {
            Some(answer) => answer,
            None => self.call(move |channel| grpc(channel, request)),
        }
    }

    /// A unary call over ttrpc on this thread, admitted by the watcher and
    /// bounded by the deadline as gRPC calls are; `None` (nothing sent) when
    /// the remote speaks gRPC. The calls that stream on gRPC (List, Read)
    /// are unary here and come straight to this.
    pub(crate) fn over_ttrpc<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        service: &str,
        method: &str,
        request: &Req,
    ) -> Option<Result<Resp>> {
        let ttrpc = self.ttrpc.as_ref()?;
        let payload = rcontainerd_ttrpc::blocking::Split::whole(request.encode_to_vec());
        Some(self.ttrpc_call(|deadline| ttrpc.call(service, method, payload, deadline)))
    }

    /// A connection of its own to the service, for calls whose state the
    /// service keeps between them (a write); `None` when the remote speaks gRPC.
    pub(crate) fn ttrpc_session(&self) -> Option<Result<rcontainerd_ttrpc::blocking::Session>> {
        let ttrpc = self.ttrpc.as_ref()?;
        Some(ttrpc.session().map_err(|e| self.ttrpc_error(e)))
    }

    /// Runs one ttrpc exchange (given the deadline) on this thread, admitted
    /// by the watcher; decodes the answer or maps the failure as gRPC's are
    /// mapped: a status keeps its class, a lost or silent connection fails
    /// Unavailable naming the plugin (and, past the deadline, tells the
    /// watcher).
    pub(crate) fn ttrpc_call<Resp: prost::Message + Default>(
        &self,
        exchange: impl FnOnce(
            Option<Duration>,
        ) -> std::result::Result<bytes::Bytes, rcontainerd_ttrpc::Error>,
    ) -> Result<Resp> {
        let _admitted = match &self.watcher {
            Some(watcher) => Some(watcher.admit()?),
            None => None,
        };
        let deadline = self.deadline;
        let exchange = || exchange(deadline);
        let answer = match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(exchange)
            }
            _ => exchange(),
        };
        match answer {
            Ok(bytes) => Resp::decode(bytes).map_err(|e| {
                PluginError::internal(format!("{}: undecodable answer: {e}", self.describe()))
            }),
            Err(e) => Err(self.ttrpc_error(e)),
        }
    }

    fn ttrpc_error(&self, error: rcontainerd_ttrpc::Error) -> PluginError {
        use rcontainerd_ttrpc::Error;
        match error {
            Error::Status { code, message } => {
                PluginError::new(kind_of(Code::from_i32(code)), message)
            }
            Error::Timeout => {
                self.forget();
                if let Some(watcher) = &self.watcher {
                    watcher.deadline_passed();
                }
                self.no_answer()
            }
            e => {
                self.forget();
                let detail = match e {
                    Error::Io(e) => os_error_text(&e),
                    Error::Closed => "connection closed".to_string(),
                    other => other.to_string(),
                };
                PluginError::unavailable(format!(
                    "{} {}: {}: {detail}",
                    self.label,
                    self.uri,
                    self.address.display()
                ))
            }
        }
    }

    /// Runs `call` on a channel to the service, blocking this thread.
    pub(crate) fn call<T, F, Fut>(self: &Arc<Self>, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(NamespacedChannel) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, Status>> + Send + 'static,
    {
        let remote = self.clone();
        self.run(async move {
            let channel = remote.channel().await?;
            call(channel).await.map_err(|s| remote.error(s))
        })
    }

    /// Runs `future` (one exchange with the service) on the proxies'
    /// runtime, admitted by the watcher and bounded by the deadline.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let _admitted = match &self.watcher {
            Some(watcher) => Some(watcher.admit()?),
            None => None,
        };
        let Some(deadline) = self.deadline else {
            return block(future);
        };
        let result = block(async move {
            match tokio::time::timeout(deadline, future).await {
                Ok(result) => result.map(Some),
                Err(_) => Ok(None),
            }
        })?;
        match result {
            Some(value) => Ok(value),
            None => {
                self.forget();
                if let Some(watcher) = &self.watcher {
                    watcher.deadline_passed();
                }
                Err(self.no_answer())
            }
        }
    }

    /// `isolated plugin <uri>: no answer within <deadline>`, Unavailable.
    fn no_answer(&self) -> PluginError {
        PluginError::unavailable(format!(
            "{} {}: no answer within {}",
            self.label,
            self.uri,
            rcontainerd_pkg::duration::format(self.deadline.unwrap_or_default())
        ))
    }

    /// The cached channel, or a fresh one (dialled now).
    pub(crate) async fn channel(&self) -> Result<NamespacedChannel> {
        if let Some(channel) = self.lock().clone() {
            return Ok(self.headers.clone().intercept(channel));
        }
        let channel = self.dial().await?;
        *self.lock() = Some(channel.clone());
        Ok(self.headers.clone().intercept(channel))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Channel>> {
        self.channel.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Dials the socket; the channel re-dials the path on its own when the
    /// connection breaks later.
    async fn dial(&self) -> Result<Channel> {
        let path = self.address.clone();
        let first = match tokio::time::timeout(DIAL_TIMEOUT, UnixStream::connect(&path)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(self.unavailable(&os_error_text(&e))),
            Err(_) => return Err(self.unavailable("timeout")),
        };
        let ready = Arc::new(Mutex::new(Some(first)));
        let connector = tower::service_fn(move |_: Uri| {
            let ready = ready.clone();
            let path = path.clone();
            async move {
                let taken = ready.lock().map(|mut s| s.take()).unwrap_or(None);
                let stream = match taken {
                    Some(stream) => stream,
                    None => UnixStream::connect(&path).await?,
                };
                Ok::<_, io::Error>(TokioIo::new(stream))
            }
        });
        // Fixed windows as large as the server's: the adaptive window would
        // add a BDP ping to the responses' round trips.
        Endpoint::from_static("http://localhost")
            .initial_stream_window_size(Some(8 << 20))
            .initial_connection_window_size(Some(16 << 20))
            .connect_with_connector(connector)
            .await
            .map_err(|e| self.unavailable(&e.to_string()))
    }

    /// `proxy plugin <uri>: dial <socket>: <reason>`, Unavailable.
    fn unavailable(&self, reason: &str) -> PluginError {
        PluginError::unavailable(format!(
            "{} {}: dial {}: {reason}",
            self.label,
            self.uri,
            self.address.display()
        ))
    }

    /// The remote's answer as a driver error, keeping its class (containerd's
    /// errdefs mapping of gRPC codes). A failure of the connection itself
    /// (no status from the remote) drops the channel, so the next call
    /// dials afresh, and names the plugin and the socket.
    pub(crate) fn error(&self, status: Status) -> PluginError {
        let transport = std::error::Error::source(&status).is_some();
        if transport || (status.code() == Code::Unavailable && status.message().is_empty()) {
            *self.lock() = None;
            let detail = std::error::Error::source(&status)
                .map(|s| s.to_string())
                .unwrap_or_else(|| status.message().to_string());
            return PluginError::unavailable(format!(
                "{} {}: {}: {detail}",
                self.label,
                self.uri,
                self.address.display()
            ));
        }
        PluginError::new(kind_of(status.code()), status.message())
    }
}

/// containerd's `errdefs.FromGRPC`, onto the classes a driver error has.
pub(crate) fn kind_of(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::FailedPrecondition => ErrorKind::FailedPrecondition,
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => ErrorKind::Unavailable,
        Code::Unimplemented => ErrorKind::NotImplemented,
        Code::Internal | Code::DataLoss => ErrorKind::Internal,
        _ => ErrorKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_socket_fails_unavailable_naming_plugin_and_socket() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("none.sock");
        let remote = Remote::new(
            "io.containerd.snapshotter.v1.r",
            socket.to_str().unwrap(),
            "default",
        )
        .unwrap();
        let err = remote
            .call(|_channel| async { Ok::<_, Status>(()) })
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert_eq!(
            err.message,
            format!(
                "proxy plugin io.containerd.snapshotter.v1.r: dial {}: no such file or directory",
                socket.display()
            )
        );
    }

    #[test]
    fn remote_codes_keep_their_class() {
        assert_eq!(kind_of(Code::AlreadyExists), ErrorKind::AlreadyExists);
        assert_eq!(kind_of(Code::Unimplemented), ErrorKind::NotImplemented);
        assert_eq!(kind_of(Code::OutOfRange), ErrorKind::InvalidArgument);
        assert_eq!(
            kind_of(Code::FailedPrecondition),
            ErrorKind::FailedPrecondition
        );
        let remote = Remote::new("u", "/nonexistent", "default").unwrap();
        let err = remote.error(Status::not_found("snapshot x: not found"));
        assert_eq!(err.kind, ErrorKind::NotFound);
        assert_eq!(err.message, "snapshot x: not found");
    }
}

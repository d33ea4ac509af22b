//! The serving side: unary methods registered by (service, method).
//!
//! Each connection has a reader (this module's `serve_conn`) that decodes
//! requests and runs each in a task of its own, and a writer task that sends
//! the answers in the order they finish. Protocol faults that leave the
//! connection in step are answered on the stream they arrived on, as Go ttrpc
//! does: an oversized frame (skipped) with RESOURCE_EXHAUSTED, an undecodable
//! request or an even stream id with INVALID_ARGUMENT, an unknown service or
//! method with UNIMPLEMENTED. A connection that ends inside a frame is closed.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::error::{code, Status};
use crate::frame::{self, Frame, MAX_MESSAGE_LEN, TYPE_REQUEST, TYPE_RESPONSE};
use crate::proto;

/// A call as a handler receives it.
#[derive(Debug, Clone)]
pub struct Request {
    pub service: String,
    pub method: String,
    /// The encoded request message.
    pub payload: Bytes,
    /// The ttrpc metadata, in the order sent; a key may repeat.
    pub metadata: Vec<(String, String)>,
    /// The caller's deadline, counted from when the request arrived; `None`
    /// when it set none. Handlers that can give up early should.
    pub timeout: Option<Duration>,
}

impl Request {
    /// The first value of metadata `key` (keys compare case-insensitively, as
    /// Go ttrpc lower-cases them).
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    /// The payload decoded as `M`; the INTERNAL status Go ttrpc answers with
    /// when it cannot.
    pub fn decode<M: Message + Default>(&self) -> Result<M, Status> {
        M::decode(self.payload.clone())
            .map_err(|e| Status::internal(format!("ttrpc: error unmarshalling payload: {e}")))
    }
}

type HandlerFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, Status>> + Send>>;
type Handler = Arc<dyn Fn(Request) -> HandlerFuture + Send + Sync>;

/// A ttrpc server: register methods, then [`Server::serve`] a listener.
#[derive(Default, Clone)]
pub struct Server {
    services: HashMap<String, HashMap<String, Handler>>,
}

impl Server {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `service`/`method` with `handler`, which answers with the
    /// encoded response message or a status. Registering a method again
    /// replaces its handler.
    pub fn register<F, Fut>(&mut self, service: &str, method: &str, handler: F) -> &mut Self
    where
        F: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<u8>, Status>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        self.services
            .entry(service.to_string())
            .or_default()
            .insert(method.to_string(), handler);
        self
    }

    /// [`Server::register`] with prost messages: the handler gets the decoded
    /// request (and the raw [`Request`] for its metadata and timeout).
    pub fn register_message<Req, Resp, F, Fut>(
        &mut self,
        service: &str,
        method: &str,
        handler: F,
    ) -> &mut Self
    where
        Req: Message + Default + 'static,
        Resp: Message + 'static,
        F: Fn(Req, Request) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Resp, Status>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        self.register(service, method, move |req: Request| {
            let handler = handler.clone();
            async move {
                let msg = req.decode::<Req>()?;
                Ok(handler(msg, req).await?.encode_to_vec())
            }
        })
    }

    /// Accepts connections on `listener` until `shutdown` resolves, then stops
    /// accepting, lets the requests in flight finish and answer, closes every
    /// connection and returns. Fails only when accepting fails for a reason
    /// other than a transient one (descriptors or memory exhausted).
    pub async fn serve(
        self,
        listener: UnixListener,
        shutdown: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let services = Arc::new(self.services);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        let result = loop {
            tokio::select! {
                _ = &mut shutdown => break Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        conns.spawn(serve_conn(stream, services.clone(), stop_rx.clone()));
                    }
                    Err(e) if transient(&e) => {
                        tracing::warn!("ttrpc server: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => break Err(e),
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        };
        stop_tx.send_replace(true);
        while conns.join_next().await.is_some() {}
        result
    }
}

fn transient(e: &io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | Interrupted | WouldBlock | OutOfMemory
    ) || matches!(
        e.raw_os_error(),
        Some(libc_codes::EMFILE | libc_codes::ENFILE | libc_codes::ENOBUFS | libc_codes::ENOMEM)
    )
}

/// Linux errno values for the accept failures that pass.
mod libc_codes {
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENOBUFS: i32 = 105;
}

async fn serve_conn(
    stream: UnixStream,
    services: Arc<HashMap<String, HashMap<String, Handler>>>,
    mut stop: watch::Receiver<bool>,
) {
    let (mut read, write) = stream.into_split();
    let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(write_loop(write, rx));
    let mut calls = JoinSet::new();
    let graceful = loop {
        let frame = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break true,
            frame = frame::read(&mut read) => frame,
        };
        while calls.try_join_next().is_some() {}
        let (header, payload) = match frame {
            Ok(Some(Frame::Message(h, p))) => (h, p),
            Ok(Some(Frame::TooLarge(h))) => {
                let message = format!(
                    "message length {} exceed maximum message size of {MAX_MESSAGE_LEN}",
                    h.len
                );
                answer(
                    &tx,
                    h.stream_id,
                    Err(Status::new(code::RESOURCE_EXHAUSTED, message)),
                );
                continue;
            }
            Ok(None) => break false,
            Err(e) => {
                tracing::debug!("ttrpc server: closing a connection: {e}");
                break false;
            }
        };
        if header.kind != TYPE_REQUEST {
            // Other types are ignored, as Go ttrpc does, for later versions
            // of the protocol (streams).
            continue;
        }
        let request = match proto::Request::decode(payload.as_slice()) {
            Ok(r) => r,
            Err(e) => {
                let status = Status::invalid_argument(format!("unmarshal request error: {e}"));
                answer(&tx, header.stream_id, Err(status));
                continue;
            }
        };
        if header.stream_id % 2 != 1 {
            let status =
                Status::invalid_argument("StreamID must be odd for client initiated streams");
            answer(&tx, header.stream_id, Err(status));
            continue;
        }
        let handler = match services.get(&request.service) {
            None => Err(Status::unimplemented(format!(
                "service {}",
                request.service
            ))),
            Some(methods) => methods
                .get(&request.method)
                .cloned()
                .ok_or_else(|| Status::unimplemented(format!("method {}", request.method))),
        };
        let handler = match handler {
            Ok(h) => h,
            Err(status) => {
                answer(&tx, header.stream_id, Err(status));
                continue;
            }
        };
        let request = Request {
            service: request.service,
            method: request.method,
            payload: request.payload,
            metadata: request
                .metadata
                .into_iter()
                .map(|kv| (kv.key, kv.value))
                .collect(),
            timeout: u64::try_from(request.timeout_nano)
                .ok()
                .filter(|&n| n > 0)
                .map(Duration::from_nanos),
        };
        let tx = tx.clone();
        let id = header.stream_id;
        calls.spawn(async move {
            // The handler runs as a task of its own so that a panic in it is
            // answered (INTERNAL) instead of leaving the caller waiting.
            let mut task = AbortOnDrop(tokio::spawn(handler(request)));
            let result = match task.await_result().await {
                Ok(result) => result,
                Err(_) => Err(Status::internal("ttrpc: handler panicked")),
            };
            answer(&tx, id, result);
        });
    };
    if graceful {
        // Shutting down: the calls in flight answer before the socket closes.
        while calls.join_next().await.is_some() {}
    } else {
        // The peer is gone or out of step: nobody reads the answers.
        calls.shutdown().await;
    }
    drop(tx);
    let _ = writer.await;
}

/// Aborts the handler task when the call task is aborted (its peer left).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn await_result(&mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Queues the answer to stream `id`.
fn answer(tx: &mpsc::UnboundedSender<Vec<u8>>, id: u32, result: Result<Vec<u8>, Status>) {
    let mut bytes = response(result).encode_to_vec();
    if bytes.len() > MAX_MESSAGE_LEN {
        let message = format!(
            "response of {} bytes exceeds maximum message size of {MAX_MESSAGE_LEN}",
            bytes.len()
        );
        bytes = response(Err(Status::new(code::RESOURCE_EXHAUSTED, message))).encode_to_vec();
    }
    // The writer is gone only when the connection is; the answer has nowhere to go.
    let _ = tx.send(frame::encode(id, TYPE_RESPONSE, &bytes));
}

pub(crate) fn response(result: Result<Vec<u8>, Status>) -> proto::Response {
    match result {
        Ok(payload) => proto::Response {
            status: Some(proto::RpcStatus::default()),
            payload: payload.into(),
        },
        Err(status) => proto::Response {
            status: Some(rpc_status(status)),
            payload: Bytes::new(),
        },
    }
}

fn rpc_status(s: Status) -> proto::RpcStatus {
    proto::RpcStatus {
        code: s.code,
        message: s.message,
        details: Vec::new(),
    }
}

async fn write_loop(mut write: OwnedWriteHalf, mut frames: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(frame) = frames.recv().await {
        if let Err(e) = write.write_all(&frame).await {
            tracing::debug!("ttrpc server: write failed: {e}");
            return;
        }
    }
    let _ = write.shutdown().await;
}

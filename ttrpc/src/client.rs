//! The calling side: one connection, many concurrent calls.
//!
//! A writer task sends request frames in the order their stream ids were
//! given (ids are handed out and queued under one lock, so they go out
//! increasing, as newer Go servers require); a reader task hands each response
//! to the call waiting on its stream id. When either side of the connection
//! fails, every call in flight fails with [`Error::Closed`] and so does every
//! later call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::error::{code, Error};
use crate::frame::{self, Frame, MAX_MESSAGE_LEN, TYPE_REQUEST, TYPE_RESPONSE};
use crate::proto;

type Reply = Result<proto::Response, Error>;

/// A ttrpc client connection. Clones share the connection; it closes when the
/// last clone is dropped, on [`Client::close`], or when the peer goes away.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
}

struct Shared {
    state: Mutex<State>,
    closed: watch::Sender<bool>,
}

struct State {
    next_id: u32,
    waiting: HashMap<u32, oneshot::Sender<Reply>>,
    /// To the writer task; `None` once the connection is closed.
    writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
}

impl Client {
    /// Dials `address`: `unix:///abs/path`, a path, or an abstract socket as
    /// `unix://@name` or `@name`.
    pub async fn connect(address: &str) -> Result<Client, Error> {
        Ok(Client::new(crate::address::connect(address).await?))
    }

    /// A client on an established connection. Must be called within a tokio
    /// runtime (it spawns the connection's reader and writer).
    pub fn new(stream: UnixStream) -> Client {
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_id: 1,
                waiting: HashMap::new(),
                writer: Some(tx),
            }),
            closed: watch::channel(false).0,
        });
        tokio::spawn(write_loop(write, rx, shared.clone()));
        let reader = tokio::spawn(read_loop(read, shared.clone()));
        Client {
            inner: Arc::new(Inner { shared, reader }),
        }
    }

    /// Calls `service`/`method` with `request` and decodes the answer as
    /// `Resp`. `metadata` travels as ttrpc metadata (e.g.
    /// `("containerd-namespace-ttrpc", ns)`). With a `timeout`, the server is
    /// told the deadline and the call fails with [`Error::Timeout`] when it
    /// passes; without one it waits as long as the connection lives.
    pub async fn call<Req: Message, Resp: Message + Default>(
        &self,
        service: &str,
        method: &str,
        request: &Req,
        metadata: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<Resp, Error> {
        let payload = self
            .call_raw(
                service,
                method,
                request.encode_to_vec().into(),
                metadata,
                timeout,
            )
            .await?;
        Ok(Resp::decode(payload)?)
    }

    /// [`Client::call`] with the payloads as encoded bytes.
    pub async fn call_raw(
        &self,
        service: &str,
        method: &str,
        payload: Bytes,
        metadata: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<Bytes, Error> {
        let request = proto::Request {
            service: service.to_string(),
            method: method.to_string(),
            payload,
            timeout_nano: timeout.map_or(0, |t| i64::try_from(t.as_nanos()).unwrap_or(i64::MAX)),
            metadata: metadata
                .iter()
                .map(|(k, v)| proto::KeyValue {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
        }
        .encode_to_vec();
        if request.len() > MAX_MESSAGE_LEN {
            return Err(Error::FrameTooLarge { len: request.len() });
        }

        let (tx, rx) = oneshot::channel();
        let id = {
            let mut state = self.inner.shared.lock();
            let id = state.next_id;
            let writer = state.writer.as_ref().ok_or(Error::Closed)?;
            writer
                .send(frame::encode(id, TYPE_REQUEST, &request))
                .map_err(|_| Error::Closed)?;
            state.next_id = id.wrapping_add(2);
            state.waiting.insert(id, tx);
            id
        };
        // Forgets the call if this future is dropped or times out, so that a
        // late answer is discarded rather than kept.
        let _pending = Pending {
            shared: &self.inner.shared,
            id,
        };
        let reply = match timeout {
            Some(t) => tokio::time::timeout(t, rx)
                .await
                .map_err(|_| Error::Timeout)?,
            None => rx.await,
        };
        let response = reply.map_err(|_| Error::Closed)??;
        match response.status {
            Some(s) if s.code != code::OK => Err(Error::Status {
                code: s.code,
                message: s.message,
            }),
            _ => Ok(response.payload),
        }
    }

    /// Resolves once the connection is closed (at once if it already is): how
    /// a runtime learns that its shim went away.
    pub async fn closed(&self) {
        let mut rx = self.inner.shared.closed.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        *self.inner.shared.closed.borrow()
    }

    /// Closes the connection: calls in flight fail with [`Error::Closed`];
    /// requests already queued are still written before the socket closes.
    pub fn close(&self) {
        self.inner.shared.close();
        self.inner.reader.abort();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.close();
        self.reader.abort();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the map consistent (each
        // critical section is one insert, remove or drain).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the connection closed and fails every call in flight.
    fn close(&self) {
        let waiting = {
            let mut state = self.lock();
            state.writer = None;
            std::mem::take(&mut state.waiting)
        };
        for (_, tx) in waiting {
            let _ = tx.send(Err(Error::Closed));
        }
        self.closed.send_replace(true);
    }
}

struct Pending<'a> {
    shared: &'a Shared,
    id: u32,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.shared.lock().waiting.remove(&self.id);
    }
}

async fn write_loop(
    mut write: OwnedWriteHalf,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    while let Some(frame) = frames.recv().await {
        if let Err(e) = write.write_all(&frame).await {
            tracing::debug!("ttrpc client: write failed: {e}");
            shared.close();
            return;
        }
    }
    let _ = write.shutdown().await;
}

async fn read_loop(mut read: OwnedReadHalf, shared: Arc<Shared>) {
    loop {
        let (header, result) = match frame::read(&mut read).await {
            Ok(Some(Frame::Message(h, _))) if h.kind != TYPE_RESPONSE => {
                tracing::debug!("ttrpc client: ignoring a frame of type {}", h.kind);
                continue;
            }
            Ok(Some(Frame::Message(h, payload))) => (
                h,
                proto::Response::decode(payload.as_slice()).map_err(Error::Decode),
            ),
            Ok(Some(Frame::TooLarge(h))) => (
                h,
                Err(Error::FrameTooLarge {
                    len: h.len as usize,
                }),
            ),
            Ok(None) => break,
            Err(e) => {
                tracing::debug!("ttrpc client: read failed: {e}");
                break;
            }
        };
        let waiter = shared.lock().waiting.remove(&header.stream_id);
        match waiter {
            Some(tx) => {
                let _ = tx.send(result);
            }
            None => tracing::debug!(
                "ttrpc client: answer for stream {} that no call waits for",
                header.stream_id
            ),
        }
    }
    shared.close();
}

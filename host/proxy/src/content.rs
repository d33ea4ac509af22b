//! A content store driver over `containerd.services.content.v1.Content`, as
//! containerd 1.6's proxy content store uses it: a writer is one Write
//! stream (one request, one response at a time), a reader one Read stream
//! per `read_at`. A writer reports the running digest the remote sends on
//! every Stat and Write response, so the daemon does not hash the data a
//! second time.

use std::future::Future;
use std::sync::Arc;

use rcontainerd_api::client::NamespacedChannel;
use rcontainerd_api::services::content::{
    self as wire, content_client::ContentClient, WriteAction, WriteContentRequest,
    WriteContentResponse,
};
use rcontainerd_plugin_api::content::{Info, Reader, Status, Store, Writer, WriterOptions};
use rcontainerd_plugin_api::snapshot::Labels;
use rcontainerd_plugin_api::{PluginError, Result};
use tokio::sync::mpsc;
use tonic::Streaming;

use crate::remote::{Remote, MAX_MESSAGE_SIZE};
use crate::serve::content::SERVICE;
use crate::wire::content::{info_from_wire, status_from_wire};
use crate::wire::nanos;

pub struct ProxyContentStore {
    remote: Arc<Remote>,
}

impl ProxyContentStore {
    pub fn new(remote: Arc<Remote>) -> Self {
        ProxyContentStore { remote }
    }

    pub fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }
}

fn client(channel: NamespacedChannel) -> ContentClient<NamespacedChannel> {
    ContentClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

impl ProxyContentStore {
    /// One unary call: `grpc` with a client, or the same request over ttrpc.
    fn unary<Req, Resp, F, Fut>(&self, method: &str, request: Req, grpc: F) -> Result<Resp>
    where
        Req: prost::Message + Send + 'static,
        Resp: prost::Message + Default + Send + 'static,
        F: FnOnce(ContentClient<NamespacedChannel>, Req) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<tonic::Response<Resp>, tonic::Status>>
            + Send
            + 'static,
    {
        self.remote.unary(
            SERVICE,
            method,
            request,
            move |channel, request| async move {
                Ok(grpc(client(channel), request).await?.into_inner())
            },
        )
    }
}

impl Store for ProxyContentStore {
    fn info(&self, digest: &str) -> Result<Info> {
        let request = wire::InfoRequest {
            digest: digest.to_string(),
        };
        let info = self
            .unary("Info", request, |mut c, r| async move { c.info(r).await })?
            .info;
        Ok(info_from_wire(info.unwrap_or_default()))
    }

    fn update(&self, info: Info, fieldpaths: &[String]) -> Result<Info> {
        let request = wire::UpdateRequest {
            info: Some(wire::Info {
                digest: info.digest,
                size: info.size,
                created_at: None,
                updated_at: None,
                labels: info.labels.into_iter().collect(),
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: fieldpaths.to_vec(),
            }),
        };
        let info = self
            .unary(
                "Update",
                request,
                |mut c, r| async move { c.update(r).await },
            )?
            .info;
        Ok(info_from_wire(info.unwrap_or_default()))
    }

    fn list(&self) -> Result<Vec<Info>> {
        let request = wire::ListContentRequest {
            filters: Vec::new(),
        };
        // Over ttrpc, one message with every blob.
        let all: Option<Result<wire::ListContentResponse>> =
            self.remote.over_ttrpc(SERVICE, "List", &request);
        let infos = if let Some(all) = all {
            all?.info
        } else {
            self.remote.call(|ch| async move {
                let mut stream = client(ch).list(request).await?.into_inner();
                let mut infos = Vec::new();
                while let Some(batch) = stream.message().await? {
                    infos.extend(batch.info);
                }
                Ok(infos)
            })?
        };
        Ok(infos.into_iter().map(info_from_wire).collect())
    }

    fn delete(&self, digest: &str) -> Result<()> {
        let request = wire::DeleteContentRequest {
            digest: digest.to_string(),
        };
        self.unary(
            "Delete",
            request,
            |mut c, r| async move { c.delete(r).await },
        )
    }

    /// Asks for the size first, as containerd's proxy does.
    fn reader(&self, digest: &str) -> Result<Box<dyn Reader>> {
        let info = self.info(digest)?;
        Ok(Box::new(ProxyReader {
            remote: self.remote.clone(),
            digest: info.digest,
            size: info.size,
        }))
    }

    fn writer(&self, options: WriterOptions) -> Result<Box<dyn Writer>> {
        ProxyWriter::open(self.remote.clone(), options).map(|w| Box::new(w) as Box<dyn Writer>)
    }

    fn status(&self, reference: &str) -> Result<Status> {
        let request = wire::StatusRequest {
            r#ref: reference.to_string(),
        };
        let status = self
            .unary(
                "Status",
                request,
                |mut c, r| async move { c.status(r).await },
            )?
            .status;
        Ok(status_from_wire(status.unwrap_or_default()))
    }

    fn list_statuses(&self) -> Result<Vec<Status>> {
        let request = wire::ListStatusesRequest {
            filters: Vec::new(),
        };
        let statuses = self
            .unary("ListStatuses", request, |mut c, r| async move {
                c.list_statuses(r).await
            })?
            .statuses;
        Ok(statuses.into_iter().map(status_from_wire).collect())
    }

    fn abort(&self, reference: &str) -> Result<()> {
        let request = wire::AbortRequest {
            r#ref: reference.to_string(),
        };
        self.unary("Abort", request, |mut c, r| async move { c.abort(r).await })
    }
}

struct ProxyReader {
    remote: Arc<Remote>,
    digest: String,
    size: i64,
}

impl Reader for ProxyReader {
    fn size(&self) -> Result<i64> {
        Ok(self.size)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() || offset >= self.size.max(0) as u64 {
            return Ok(0);
        }
        let want = buf.len().min((self.size as u64 - offset) as usize);
        let request = wire::ReadContentRequest {
            digest: self.digest.clone(),
            offset: offset as i64,
            size: want as i64,
        };
        // Over ttrpc, one range per call; the answer's buffer is copied once, into `buf`.
        let answer: Option<Result<wire::ReadContentResponse>> =
            self.remote.over_ttrpc(SERVICE, "Read", &request);
        if let Some(answer) = answer {
            let answer = answer?;
            let n = answer.data.len().min(buf.len());
            buf[..n].copy_from_slice(&answer.data[..n]);
            return Ok(n);
        }
        // The messages' buffers come back as they are and are copied once, into `buf`.
        let chunks = self.remote.call(move |ch| async move {
            let mut stream = client(ch).read(request).await?.into_inner();
            let (mut chunks, mut got) = (Vec::new(), 0);
            while let Some(chunk) = stream.message().await? {
                got += chunk.data.len();
                chunks.push(chunk.data);
                if got >= want {
                    break;
                }
            }
            Ok(chunks)
        })?;
        let mut n = 0;
        for chunk in chunks {
            let take = chunk.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&chunk[..take]);
            n += take;
        }
        Ok(n)
    }
}

/// One ingest, over one Write stream at a time. The remote ends a stream
/// on any refused request (containerd's rule), so the next call opens a new
/// one on the same ref; closing waits for the stream's end, when the remote
/// has released the ref.
struct ProxyWriter {
    remote: Arc<Remote>,
    options: WriterOptions,
    /// The remote's offset after the last response.
    offset: i64,
    /// The remote's running digest in the last response (containerd sends
    /// one on every Stat and Write response), or `None` when the writer's
    /// first response had none: a remote that keeps no running digest.
    digest: Option<String>,
    /// A response has come: whether the remote keeps a digest is settled.
    answered: bool,
    /// The stream's opening Stat answer while nothing else was sent since:
    /// the ingest is this stream's alone, so it still holds, and the
    /// status asked for right after opening costs no round trip.
    opening: Option<WriteContentResponse>,
    stream: Option<WriteChannel>,
    /// Committed or closed: no more calls.
    closed: bool,
    /// The remote answered the commit.
    committed: bool,
}

/// Where a writer's requests go: a gRPC Write stream, or (an isolated
/// driver) a ttrpc connection of its own, whose open ingest the remote keeps
/// until a refusal, a commit, `CloseWrite` or the connection's end.
enum WriteChannel {
    Grpc(WriteStream),
    Ttrpc(rcontainerd_ttrpc::blocking::Session),
}

struct WriteStream {
    requests: mpsc::Sender<WriteContentRequest>,
    responses: Arc<tokio::sync::Mutex<Streaming<WriteContentResponse>>>,
}

impl ProxyWriter {
    fn open(remote: Arc<Remote>, options: WriterOptions) -> Result<ProxyWriter> {
        let mut writer = ProxyWriter {
            remote,
            options,
            offset: 0,
            digest: None,
            answered: false,
            opening: None,
            stream: None,
            closed: false,
            committed: false,
        };
        writer.stream()?;
        Ok(writer)
    }

    /// The open stream, or a new one that starts with a Stat carrying the
    /// ref and the expectations, as containerd's proxy negotiates.
    fn stream(&mut self) -> Result<&WriteChannel> {
        if self.closed {
            return Err(PluginError::failed_precondition(format!(
                "ingest {} is closed",
                self.options.reference
            )));
        }
        if self.stream.is_none() {
            let first = WriteContentRequest {
                action: WriteAction::Stat as i32,
                r#ref: self.options.reference.clone(),
                total: self.options.expected_size.unwrap_or(0),
                expected: self.options.expected_digest.clone().unwrap_or_default(),
                ..Default::default()
            };
            if let Some(session) = self.remote.ttrpc_session() {
                let mut session = session?;
                let response = write_over_ttrpc(&self.remote, &mut session, first)?;
                self.heard(&response);
                self.opening = Some(response);
                self.stream = Some(WriteChannel::Ttrpc(session));
                return Ok(self.stream.as_ref().expect("opened above"));
            }
            let remote = self.remote.clone();
            let (stream, response) = self.remote.run(async move {
                let channel = remote.channel().await?;
                let (requests, rx) = mpsc::channel(1);
                let _ = requests.send(first).await;
                let rx = tokio_stream::wrappers::ReceiverStream::new(rx);
                let mut responses = client(channel)
                    .write(rx)
                    .await
                    .map_err(|s| remote.error(s))?
                    .into_inner();
                let response = next(&remote, &mut responses).await?;
                let responses = Arc::new(tokio::sync::Mutex::new(responses));
                Ok((
                    WriteStream {
                        requests,
                        responses,
                    },
                    response,
                ))
            })?;
            self.heard(&response);
            self.opening = Some(response);
            self.stream = Some(WriteChannel::Grpc(stream));
        }
        Ok(self.stream.as_ref().expect("opened above"))
    }

    /// One request (with `data` as its data) and its response on the open
    /// channel (opened first if need be). A failure ends the channel, as the
    /// remote ends its side.
    fn exchange(
        &mut self,
        mut request: WriteContentRequest,
        data: &[u8],
    ) -> Result<WriteContentResponse> {
        self.stream()?;
        let result = match self.stream.as_mut().expect("opened above") {
            WriteChannel::Ttrpc(session) => {
                let payload = rcontainerd_ttrpc::blocking::Split::with_bytes(&request, 6, data);
                self.remote
                    .ttrpc_call(|deadline| session.call(SERVICE, "Write", payload, deadline))
            }
            WriteChannel::Grpc(stream) => {
                request.data = tonic::codegen::Bytes::copy_from_slice(data);
                let requests = stream.requests.clone();
                let responses = stream.responses.clone();
                let remote = self.remote.clone();
                self.remote.run(async move {
                    // A send fails only when the stream has ended: its status is next.
                    let _ = requests.send(request).await;
                    next(&remote, &mut *responses.lock().await).await
                })
            }
        };
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    /// Sends one request and waits for its response. A failure ends the
    /// stream.
    fn send(&mut self, request: WriteContentRequest, data: &[u8]) -> Result<WriteContentResponse> {
        self.stream()?;
        self.opening = None;
        let response = self.exchange(request, data)?;
        self.heard(&response);
        Ok(response)
    }

    /// Takes the offset and the running digest of a response. Whether the
    /// remote keeps a digest is settled by the writer's first response, as a
    /// driver's answer to `digest` must not change over a writer's life.
    fn heard(&mut self, response: &WriteContentResponse) {
        self.offset = response.offset;
        let keeps = if self.answered {
            self.digest.is_some()
        } else {
            !response.digest.is_empty()
        };
        self.answered = true;
        if keeps {
            self.digest = Some(response.digest.clone());
        }
    }

    /// The ingest's status as a Stat answer gives it.
    fn status_of(&self, response: &WriteContentResponse) -> Status {
        Status {
            reference: self.options.reference.clone(),
            offset: response.offset,
            total: response.total,
            expected: self.options.expected_digest.clone().unwrap_or_default(),
            started_at: nanos(response.started_at),
            updated_at: nanos(response.updated_at),
        }
    }

    /// Half-closes the stream and waits for the remote to end it (over
    /// ttrpc: asks the remote to release the ingest).
    fn finish(&mut self) {
        self.closed = true;
        let Some(channel) = self.stream.take() else {
            return;
        };
        let WriteStream {
            requests,
            responses,
        } = match channel {
            WriteChannel::Grpc(stream) => stream,
            WriteChannel::Ttrpc(mut session) => {
                // A commit ended the ingest on the remote's side already;
                // otherwise it is released first. Then the connection serves
                // other calls.
                let released = self.committed
                    || self
                        .remote
                        .ttrpc_call::<()>(|deadline| {
                            let nothing = rcontainerd_ttrpc::blocking::Split::whole(Vec::new());
                            session.call(SERVICE, "CloseWrite", nothing, deadline)
                        })
                        .is_ok();
                if released {
                    session.release();
                }
                return;
            }
        };
        drop(requests);
        let _ = self.remote.run(async move {
            let mut responses = responses.lock().await;
            while let Ok(Some(_)) = responses.message().await {}
            Ok(())
        });
    }
}

/// One Write request over a ttrpc session, and its response.
fn write_over_ttrpc(
    remote: &Remote,
    session: &mut rcontainerd_ttrpc::blocking::Session,
    request: WriteContentRequest,
) -> Result<WriteContentResponse> {
    let payload =
        rcontainerd_ttrpc::blocking::Split::whole(prost::Message::encode_to_vec(&request));
    remote.ttrpc_call(|deadline| session.call(SERVICE, "Write", payload, deadline))
}

/// The next response, or the stream's error.
async fn next(
    remote: &Remote,
    responses: &mut Streaming<WriteContentResponse>,
) -> Result<WriteContentResponse> {
    match responses.message().await {
        Ok(Some(response)) => Ok(response),
        Ok(None) => Err(PluginError::unavailable(format!(
            "{}: write stream ended early",
            remote.describe()
        ))),
        Err(status) => Err(remote.error(status)),
    }
}

impl Writer for ProxyWriter {
    fn status(&self) -> Result<Status> {
        let Some(stream) = &self.stream else {
            // The stream ended on a refusal: the remote's record of the ingest.
            let store = ProxyContentStore::new(self.remote.clone());
            return store.status(&self.options.reference);
        };
        if let Some(opening) = &self.opening {
            return Ok(self.status_of(opening));
        }
        let stream = match stream {
            WriteChannel::Grpc(stream) => stream,
            // A Stat on the writer's own connection needs `&mut`: the
            // remote's record of the ingest says the same.
            WriteChannel::Ttrpc(_) => {
                let store = ProxyContentStore::new(self.remote.clone());
                return store.status(&self.options.reference);
            }
        };
        let requests = stream.requests.clone();
        let responses = stream.responses.clone();
        let remote = self.remote.clone();
        let response = self.remote.run(async move {
            let _ = requests
                .send(WriteContentRequest {
                    action: WriteAction::Stat as i32,
                    ..Default::default()
                })
                .await;
            next(&remote, &mut *responses.lock().await).await
        })?;
        Ok(self.status_of(&response))
    }

    /// At the current offset only: on the wire, a write at 0 truncates
    /// (the trait's `truncate` does), so the check cannot be the remote's.
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<usize> {
        self.stream()?;
        if offset as i64 != self.offset {
            return Err(PluginError::invalid_argument(format!(
                "ingest {}: write @{offset} must occur at current offset {}",
                self.options.reference, self.offset
            )));
        }
        let response = self.send(
            WriteContentRequest {
                action: WriteAction::Write as i32,
                offset: offset as i64,
                ..Default::default()
            },
            data,
        )?;
        Ok((response.offset - offset as i64).max(0) as usize)
    }

    /// An empty write at offset 0 truncates on the wire; the remote cannot
    /// truncate to anywhere else but where it is.
    fn truncate(&mut self, size: u64) -> Result<()> {
        self.stream()?;
        if size as i64 == self.offset {
            return Ok(());
        }
        if size != 0 {
            return Err(PluginError::not_implemented(format_args!(
                "{}: truncate to {size}",
                self.remote.describe()
            )));
        }
        self.send(
            WriteContentRequest {
                action: WriteAction::Write as i32,
                offset: 0,
                ..Default::default()
            },
            &[],
        )?;
        Ok(())
    }

    fn commit(&mut self, size: i64, expected: &str, labels: Labels) -> Result<()> {
        // Opened first, so that the offset sent is the remote's current one.
        self.stream()?;
        self.send(
            WriteContentRequest {
                action: WriteAction::Commit as i32,
                offset: self.offset,
                total: size,
                expected: expected.to_string(),
                labels: labels.into_iter().collect(),
                ..Default::default()
            },
            &[],
        )?;
        self.committed = true;
        self.finish();
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        self.finish();
        Ok(())
    }

    /// The remote's, from its last response (a stream ended by a refusal is
    /// opened again first, and its Stat says where the data now stands).
    fn digest(&mut self) -> Result<Option<String>> {
        if self.digest.is_some() && !self.closed {
            self.stream()?;
        }
        match &self.digest {
            Some(digest) if digest.is_empty() => Err(PluginError::internal(format!(
                "{}: no digest in the answer for ingest {}",
                self.remote.describe(),
                self.options.reference
            ))),
            digest => Ok(digest.clone()),
        }
    }
}

impl Drop for ProxyWriter {
    fn drop(&mut self) {
        self.finish();
    }
}

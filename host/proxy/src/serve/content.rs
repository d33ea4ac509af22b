//! `containerd.services.content.v1.Content` over one content store driver:
//! what [`crate::ProxyContentStore`] (and containerd 1.6's proxy) sends,
//! answered by the driver.
//!
//! Write follows containerd 1.6's service: the first message names the ref
//! and opens the driver's writer; every request gets one response, fields a
//! STAT set (total, times) stay on later responses, and the last response is
//! sent once more when the stream ends well (after COMMIT, or when the
//! client half-closes). A write at offset 0 onto a non-empty ingest
//! truncates it. A stream that ends without a commit closes the writer, so
//! the ingest stays for resumption as the driver keeps it. Data is handed to
//! the driver's `write` as it arrives, one message at a time.
//!
//! Differences from containerd 1.6, as in the daemon's own service: an
//! unknown Write action is InvalidArgument (containerd ignores it); digests
//! are checked by the driver, not here.

use std::sync::Arc;

use rcontainerd_api::services::content::{
    content_server, AbortRequest, DeleteContentRequest, InfoRequest, InfoResponse,
    ListContentRequest, ListContentResponse, ListStatusesRequest, ListStatusesResponse,
    ReadContentRequest, ReadContentResponse, StatusRequest, StatusResponse, UpdateRequest,
    UpdateResponse, WriteAction, WriteContentRequest, WriteContentResponse,
};
use rcontainerd_api::status::IntoStatus;
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_pkg::filters::{Fields, Filter};
use rcontainerd_plugin_api::content::{Info, Status as IngestStatus, Store, Writer, WriterOptions};
use rcontainerd_ttrpc::blocking::Split;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use super::{
    answer_blocking, batches, blocking, decode, label, read_stream, to_status, ttrpc_status, unary,
};
use crate::wire::content::{info_from_wire, info_to_wire, status_to_wire};
use crate::wire::timestamp;

/// Messages buffered ahead of the client.
const STREAM_BUFFER: usize = 4;

/// Serves one content store driver.
pub struct ContentService {
    driver: Arc<dyn Store>,
}

impl ContentService {
    pub fn new(driver: Arc<dyn Store>) -> Self {
        ContentService { driver }
    }

    /// Answers `request` with `f` and the driver, on the blocking pool.
    async fn run<Req, Resp>(
        &self,
        request: Request<Req>,
        f: fn(&dyn Store, Req) -> Result<Resp, Status>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Send + 'static,
        Resp: Send + 'static,
    {
        answer_blocking(&self.driver, request, f).await
    }
}

/// containerd's content filter fields: `digest`, `size`, `labels.<key>`.
struct InfoFields<'a>(&'a Info);

impl Fields for InfoFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "digest" => Some(self.0.digest.clone()),
            "size" => Some(self.0.size.to_string()),
            "labels" if path.len() > 1 => label(&self.0.labels, path).cloned(),
            _ => None,
        }
    }
}

/// containerd's ingest filter field: `ref`.
struct IngestFields<'a>(&'a IngestStatus);

impl Fields for IngestFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path {
            [field] if field == "ref" => Some(self.0.reference.clone()),
            _ => None,
        }
    }
}

fn info(d: &dyn Store, r: InfoRequest) -> Result<InfoResponse, Status> {
    let info = d.info(&r.digest).map_err(to_status)?;
    Ok(InfoResponse {
        info: Some(info_to_wire(info)),
    })
}

fn update(d: &dyn Store, r: UpdateRequest) -> Result<UpdateResponse, Status> {
    let info = r
        .info
        .map(info_from_wire)
        .ok_or_else(|| Status::invalid_argument("info is required"))?;
    let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
    let info = d.update(info, &paths).map_err(to_status)?;
    Ok(UpdateResponse {
        info: Some(info_to_wire(info)),
    })
}

/// The blobs matching the request's filters, as containerd filters.
fn list(
    d: &dyn Store,
    r: ListContentRequest,
) -> Result<Vec<rcontainerd_api::services::content::Info>, Status> {
    let filter = Filter::parse_all(&r.filters).map_err(IntoStatus::into_status)?;
    let infos = d.list().map_err(to_status)?;
    Ok(infos
        .into_iter()
        .filter(|i| filter.matches(&InfoFields(i)))
        .map(info_to_wire)
        .collect())
}

fn delete(d: &dyn Store, r: DeleteContentRequest) -> Result<(), Status> {
    d.delete(&r.digest).map_err(to_status)
}

fn status(d: &dyn Store, r: StatusRequest) -> Result<StatusResponse, Status> {
    let status = d.status(&r.r#ref).map_err(to_status)?;
    Ok(StatusResponse {
        status: Some(status_to_wire(status)),
    })
}

fn list_statuses(d: &dyn Store, r: ListStatusesRequest) -> Result<ListStatusesResponse, Status> {
    let filter = Filter::parse_all(&r.filters).map_err(IntoStatus::into_status)?;
    let statuses = d.list_statuses().map_err(to_status)?;
    Ok(ListStatusesResponse {
        statuses: statuses
            .into_iter()
            .filter(|s| filter.matches(&IngestFields(s)))
            .map(status_to_wire)
            .collect(),
    })
}

fn abort(d: &dyn Store, r: AbortRequest) -> Result<(), Status> {
    d.abort(&r.r#ref).map_err(to_status)
}

#[tonic::async_trait]
impl content_server::Content for ContentService {
    async fn info(&self, request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        self.run(request, info).await
    }

    async fn update(
        &self,
        request: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        self.run(request, update).await
    }

    async fn list(
        &self,
        request: Request<ListContentRequest>,
    ) -> Result<Response<BoxStream<ListContentResponse>>, Status> {
        let matching = self.run(request, list).await?.into_inner();
        let messages = batches(matching)
            .into_iter()
            .map(|info| Ok(ListContentResponse { info }));
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn delete(&self, request: Request<DeleteContentRequest>) -> Result<Response<()>, Status> {
        self.run(request, delete).await
    }

    async fn read(
        &self,
        request: Request<ReadContentRequest>,
    ) -> Result<Response<BoxStream<ReadContentResponse>>, Status> {
        let r = request.into_inner();
        let digest = r.digest.clone();
        let driver = self.driver.clone();
        let (reader, size) = blocking(move || {
            let reader = driver.reader(&digest)?;
            let size = reader.size()?;
            Ok((reader, size))
        })
        .await?;
        Ok(Response::new(read_stream(reader, size, r.offset, r.size)))
    }

    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        self.run(request, status).await
    }

    async fn list_statuses(
        &self,
        request: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        self.run(request, list_statuses).await
    }

    async fn write(
        &self,
        request: Request<Streaming<WriteContentRequest>>,
    ) -> Result<Response<BoxStream<WriteContentResponse>>, Status> {
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let driver = self.driver.clone();
        tokio::spawn(async move {
            if let Err(status) = write_stream(driver, inbound, &tx).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn abort(&self, request: Request<AbortRequest>) -> Result<Response<()>, Status> {
        self.run(request, abort).await
    }
}

/// The `Content` service's name, on gRPC and on ttrpc alike.
pub const SERVICE: &str = "containerd.services.content.v1.Content";

/// The most data one ttrpc Read answer carries; a reader asks again for more.
const TTRPC_READ_CHUNK: usize = 8 << 20;

/// Answers one call of the `Content` service over ttrpc, the isolated
/// driver's transport: the same messages as gRPC's, on the calling thread.
/// List answers in one message; Read answers one range (at most
/// [`TTRPC_READ_CHUNK`] bytes) per call; Write takes one request per call,
/// the connection's open ingest kept in `slot` between them (a refused
/// request or a commit ends it, as it ends a gRPC Write stream), and the
/// private `CloseWrite` releases it, keeping the ingest for resumption.
pub fn answer(
    driver: &Arc<dyn Store>,
    slot: &mut rcontainerd_ttrpc::blocking::Slot,
    method: &str,
    payload: bytes::Bytes,
) -> Result<Split<'static>, rcontainerd_ttrpc::Status> {
    let d = &**driver;
    let answered = match method {
        "Info" => unary(payload, |r| info(d, r)),
        "Update" => unary(payload, |r| update(d, r)),
        "List" => unary(payload, |r| Ok(ListContentResponse { info: list(d, r)? })),
        "Delete" => unary(payload, |r| delete(d, r)),
        "Read" => decode(payload).and_then(|r| read_range(d, r)),
        "Status" => unary(payload, |r| status(d, r)),
        "ListStatuses" => unary(payload, |r| list_statuses(d, r)),
        "Abort" => unary(payload, |r| abort(d, r)),
        "Write" => unary(payload, |r| write_one(driver, slot, r)),
        "CloseWrite" => {
            *slot = None;
            Ok(Split::whole(Vec::new()))
        }
        other => Err(Status::unimplemented(format!(
            "{SERVICE}/{other} is not served"
        ))),
    };
    answered.map_err(ttrpc_status)
}

/// One range of a blob: from `offset`, `size` bytes (0: to the end), at
/// most [`TTRPC_READ_CHUNK`]; the data goes to the socket from the buffer
/// it was read into.
fn read_range(d: &dyn Store, r: ReadContentRequest) -> Result<Split<'static>, Status> {
    let reader = d.reader(&r.digest).map_err(to_status)?;
    let size = reader.size().map_err(to_status)?;
    if r.offset < 0 || r.offset > size {
        return Err(Error::out_of_range(format!(
            "offset {} is outside the blob of {size} bytes",
            r.offset
        ))
        .into_status());
    }
    let rest = (size - r.offset) as u64;
    let want = if r.size > 0 {
        rest.min(r.size as u64)
    } else {
        rest
    };
    let mut data = vec![0u8; want.min(TTRPC_READ_CHUNK as u64) as usize];
    let mut got = 0;
    while got < data.len() {
        let n = reader
            .read_at(r.offset as u64 + got as u64, &mut data[got..])
            .map_err(to_status)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    data.truncate(got);
    let head = ReadContentResponse {
        offset: r.offset,
        data: bytes::Bytes::new(),
    };
    Ok(rcontainerd_ttrpc::blocking::Split::with_bytes(
        &head, 2, data,
    ))
}

/// A connection's open ingest (ttrpc): closed, and kept for resumption,
/// when the connection ends or the client releases it.
struct OpenWrite(WriteSession);

impl Drop for OpenWrite {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// One Write request of a ttrpc connection: the first opens the ingest
/// named by its ref, as a Write stream's first message does.
fn write_one(
    driver: &Arc<dyn Store>,
    slot: &mut rcontainerd_ttrpc::blocking::Slot,
    request: WriteContentRequest,
) -> Result<WriteContentResponse, Status> {
    if slot.as_ref().is_none_or(|s| !s.is::<OpenWrite>()) {
        *slot = Some(Box::new(OpenWrite(open_session(driver.clone(), &request)?)));
    }
    let open = slot
        .as_mut()
        .and_then(|s| s.downcast_mut::<OpenWrite>())
        .expect("opened above");
    match open.0.handle(request) {
        Ok(Step::Continue) => Ok(open.0.response.clone()),
        Ok(Step::Committed) => {
            let response = open.0.response.clone();
            *slot = None;
            Ok(response)
        }
        Err(status) => {
            *slot = None;
            Err(status)
        }
    }
}

/// The driver's writer for a Write stream's first message.
fn open_session(
    driver: Arc<dyn Store>,
    first: &WriteContentRequest,
) -> Result<WriteSession, Status> {
    if first.r#ref.is_empty() {
        return Err(Status::invalid_argument(
            "first message must have a reference",
        ));
    }
    let options = WriterOptions {
        reference: first.r#ref.clone(),
        expected_size: (first.total > 0).then_some(first.total),
        expected_digest: (!first.expected.is_empty()).then(|| first.expected.clone()),
    };
    let mut writer = driver.writer(options).map_err(to_status)?;
    let offset = match writer.status() {
        Ok(status) => status.offset,
        Err(e) => {
            let _ = writer.close();
            return Err(to_status(e));
        }
    };
    Ok(WriteSession {
        driver,
        reference: first.r#ref.clone(),
        writer: Some(writer),
        offset,
        total: first.total,
        expected: String::new(),
        response: WriteContentResponse::default(),
    })
}

/// What a handled Write message leads to.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Continue,
    Committed,
}

/// One Write stream's state between messages.
struct WriteSession {
    driver: Arc<dyn Store>,
    reference: String,
    /// `None` once committed or closed.
    writer: Option<Box<dyn Writer>>,
    /// The ingest's offset: kept here, since only this stream writes the ref.
    offset: i64,
    total: i64,
    expected: String,
    /// One response, updated per message, as containerd does.
    response: WriteContentResponse,
}

impl WriteSession {
    fn writer(&mut self) -> Result<&mut dyn Writer, Status> {
        match self.writer.as_deref_mut() {
            Some(writer) => Ok(writer),
            None => Err(Status::failed_precondition(format!(
                "ingest {} is closed",
                self.reference
            ))),
        }
    }

    fn handle(&mut self, request: WriteContentRequest) -> Result<Step, Status> {
        self.response.action = request.action;
        self.response.offset = self.offset;
        if !request.expected.is_empty() {
            self.expected = request.expected;
            // containerd's rule: a blob that exists already ends the ingest.
            if self.driver.info(&self.expected).is_ok() {
                self.close();
                if let Err(e) = self.driver.abort(&self.reference) {
                    tracing::warn!(reference = %self.reference, error = %e,
                        "aborting the ingest of an existing blob");
                }
                return Err(Status::already_exists(format!(
                    "blob with expected digest {} exists",
                    self.expected
                )));
            }
        }
        if request.total > 0 {
            self.total = request.total;
        }
        let action = WriteAction::try_from(request.action).map_err(|_| {
            Status::invalid_argument(format!("unknown write action {}", request.action))
        })?;
        match action {
            WriteAction::Stat => {
                let writer = self.writer()?;
                let status = writer.status().map_err(to_status)?;
                let digest = writer.digest().map_err(to_status)?;
                self.offset = status.offset;
                self.response.offset = status.offset;
                self.response.digest = digest.unwrap_or_default();
                self.response.started_at = Some(timestamp(status.started_at));
                self.response.updated_at = Some(timestamp(status.updated_at));
                self.response.total = self.total;
                Ok(Step::Continue)
            }
            WriteAction::Write | WriteAction::Commit => {
                let current = self.offset;
                if request.offset > 0 && request.offset != current {
                    return Err(Error::out_of_range(format!(
                        "write @{} must occur at current offset {current}",
                        request.offset
                    ))
                    .into_status());
                }
                if request.offset == 0 && current > 0 {
                    self.writer()?.truncate(0).map_err(to_status)?;
                    self.offset = 0;
                    self.response.offset = 0;
                }
                if !request.data.is_empty() {
                    let at = self.offset as u64;
                    let written = self.writer()?.write(at, &request.data).map_err(to_status)?;
                    if written != request.data.len() {
                        return Err(Error::data_loss(format!(
                            "wrote {written} of {} bytes",
                            request.data.len()
                        ))
                        .into_status());
                    }
                    self.offset += written as i64;
                    self.response.offset = self.offset;
                }
                // Asked before a commit, which may release the writer's hash.
                let digest = self.writer()?.digest().map_err(to_status)?;
                self.response.digest = digest.unwrap_or_default();
                if action == WriteAction::Commit {
                    let (total, expected) = (self.total, self.expected.clone());
                    let labels = request.labels.into_iter().collect();
                    self.writer()?
                        .commit(total, &expected, labels)
                        .map_err(to_status)?;
                    // Committed: nothing to keep, so the writer is dropped, not closed.
                    self.writer = None;
                    return Ok(Step::Committed);
                }
                Ok(Step::Continue)
            }
        }
    }

    /// Releases the writer, keeping the ingest for resumption.
    fn close(&mut self) {
        if let Some(mut writer) = self.writer.take() {
            if let Err(e) = writer.close() {
                tracing::warn!(reference = %self.reference, error = %e, "closing an ingest");
            }
        }
    }
}

/// Runs a Write stream to its end; an error ends it with that status.
async fn write_stream(
    driver: Arc<dyn Store>,
    mut inbound: Streaming<WriteContentRequest>,
    tx: &mpsc::Sender<Result<WriteContentResponse, Status>>,
) -> Result<(), Status> {
    let Some(first) = inbound.message().await? else {
        return Ok(());
    };
    let opening = first.clone();
    let session = tokio::task::spawn_blocking(move || open_session(driver, &opening))
        .await
        .map_err(|e| Status::internal(format!("write worker failed: {e}")))??;
    let mut session = Some(session);

    let mut request = first;
    let result = loop {
        let mut current = session
            .take()
            .expect("the session is back after each message");
        let handled = tokio::task::spawn_blocking(move || {
            let step = current.handle(request);
            (current, step)
        })
        .await;
        let (back, step) = match handled {
            Ok(done) => done,
            Err(e) => break Err(Status::internal(format!("write worker failed: {e}"))),
        };
        let response = back.response.clone();
        session = Some(back);
        let step = match step {
            Ok(step) => step,
            Err(status) => break Err(status),
        };
        if tx.send(Ok(response.clone())).await.is_err() {
            break Ok(()); // the client went away
        }
        if step == Step::Committed {
            let _ = tx.send(Ok(response)).await;
            break Ok(());
        }
        match inbound.message().await {
            Ok(Some(next)) => request = next,
            Ok(None) => {
                let _ = tx.send(Ok(response)).await;
                break Ok(());
            }
            Err(status) => break Err(status),
        }
    };
    // Closing the driver's writer may touch disk: not on the executor.
    if let Some(mut session) = session {
        let _ = tokio::task::spawn_blocking(move || session.close()).await;
    }
    result
}

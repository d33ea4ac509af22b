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
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use super::{batches, blocking, label, read_stream, to_status};
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

    /// Runs `f` with the driver on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, Status>
    where
        F: FnOnce(&dyn Store) -> rcontainerd_plugin_api::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let driver = self.driver.clone();
        blocking(move || f(&*driver)).await
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

#[tonic::async_trait]
impl content_server::Content for ContentService {
    async fn info(&self, request: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let digest = request.into_inner().digest;
        let info = self.run(move |d| d.info(&digest)).await?;
        Ok(Response::new(InfoResponse {
            info: Some(info_to_wire(info)),
        }))
    }

    async fn update(
        &self,
        request: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        let r = request.into_inner();
        let info = r
            .info
            .map(info_from_wire)
            .ok_or_else(|| Status::invalid_argument("info is required"))?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let info = self.run(move |d| d.update(info, &paths)).await?;
        Ok(Response::new(UpdateResponse {
            info: Some(info_to_wire(info)),
        }))
    }

    async fn list(
        &self,
        request: Request<ListContentRequest>,
    ) -> Result<Response<BoxStream<ListContentResponse>>, Status> {
        let filter =
            Filter::parse_all(&request.into_inner().filters).map_err(IntoStatus::into_status)?;
        let infos = self.run(|d| d.list()).await?;
        let matching = infos
            .into_iter()
            .filter(|i| filter.matches(&InfoFields(i)))
            .map(info_to_wire);
        let messages = batches(matching)
            .into_iter()
            .map(|info| Ok(ListContentResponse { info }));
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn delete(&self, request: Request<DeleteContentRequest>) -> Result<Response<()>, Status> {
        let digest = request.into_inner().digest;
        self.run(move |d| d.delete(&digest)).await?;
        Ok(Response::new(()))
    }

    async fn read(
        &self,
        request: Request<ReadContentRequest>,
    ) -> Result<Response<BoxStream<ReadContentResponse>>, Status> {
        let r = request.into_inner();
        let (reader, size) = self
            .run(move |d| {
                let reader = d.reader(&r.digest)?;
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
        let reference = request.into_inner().r#ref;
        let status = self.run(move |d| d.status(&reference)).await?;
        Ok(Response::new(StatusResponse {
            status: Some(status_to_wire(status)),
        }))
    }

    async fn list_statuses(
        &self,
        request: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        let filter =
            Filter::parse_all(&request.into_inner().filters).map_err(IntoStatus::into_status)?;
        let statuses = self.run(|d| d.list_statuses()).await?;
        Ok(Response::new(ListStatusesResponse {
            statuses: statuses
                .into_iter()
                .filter(|s| filter.matches(&IngestFields(s)))
                .map(status_to_wire)
                .collect(),
        }))
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
        let reference = request.into_inner().r#ref;
        self.run(move |d| d.abort(&reference)).await?;
        Ok(Response::new(()))
    }
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
    let opening = driver.clone();
    let (writer, offset) = blocking(move || {
        let mut writer = opening.writer(options)?;
        match writer.status() {
            Ok(status) => Ok((writer, status.offset)),
            Err(e) => {
                let _ = writer.close();
                Err(e)
            }
        }
    })
    .await?;
    let mut session = Some(WriteSession {
        driver,
        reference: first.r#ref.clone(),
        writer: Some(writer),
        offset,
        total: first.total,
        expected: String::new(),
        response: WriteContentResponse::default(),
    });

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

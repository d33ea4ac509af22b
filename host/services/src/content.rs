//! `containerd.services.content.v1.Content` over the namespaced content store.
//!
//! `Write` follows containerd 1.6 on the wire (see `docs/wire-facts.md#content`): the
//! first message names the ref; every request gets one response and the
//! last response is sent once more when the stream ends (after COMMIT or
//! when the client half-closes); `total`, `started_at` and `updated_at`
//! set by a STAT stay on later responses. Data passes through chunk by
//! chunk; `Read` streams 1 MiB messages. Delete is announced on
//! `/content/delete`, as containerd does; commits are not (containerd 1.6
//! announces none either).
//!
//! Where we answer differently from containerd 1.6, on purpose:
//! - a malformed `expected` digest on Write is `InvalidArgument`
//!   (`"<digest>" failed validation`), not a failed commit later;
//! - an unknown Write action is `InvalidArgument` rather than ignored;
//! - List filters on `size` work (containerd 1.6 never matches them);
//! - Abort of a ref whose Write stream is still open is `Unavailable`
//!   ("ref … locked") instead of removing the ingest under the writer.

use std::collections::BTreeMap;
use std::sync::Arc;

use rcontainerd_api::events::ContentDelete;
use rcontainerd_api::services::content::{
    self as wire, content_server, AbortRequest, DeleteContentRequest, InfoRequest, InfoResponse,
    ListContentRequest, ListContentResponse, ListStatusesRequest, ListStatusesResponse,
    ReadContentRequest, ReadContentResponse, StatusRequest, StatusResponse, UpdateRequest,
    UpdateResponse, WriteAction, WriteContentRequest, WriteContentResponse,
};
use rcontainerd_plugin_api::content::Status as IngestStatus;
// Read answers as the driver server answers them.
use rcontainerd_proxy::serve::read_stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::convert::{timestamp, timestamp_from_nanos};
use crate::events::{self, Publisher};
use crate::namespace;
use crate::service::{self, GrpcService, Routes};
use crate::status::IntoStatus;
use crate::{blocking, inline};
use rcontainerd_core::content::{ContentStore, IngestWriter};
use rcontainerd_core::ids::{CONTENT_SERVICE, SERVICE_TYPE};
use rcontainerd_core::leases::CallLease;
use rcontainerd_core::registry::Registration;
use rcontainerd_metadata::{BlobRecord, Resource};
use rcontainerd_pkg::errdefs::{Error, Kind, Result};
use rcontainerd_pkg::filters::{Fields, Filter};

/// Infos per `List` response message.
const LIST_BATCH: usize = 100;
/// Responses buffered ahead of the client.
const STREAM_BUFFER: usize = 4;
/// Write requests received ahead of the one being written, so receiving
/// (and the client's sending) overlaps hashing and writing.
const WRITE_PREFETCH: usize = 2;

pub struct ContentService {
    store: Arc<ContentStore>,
    events: Publisher,
}

impl ContentService {
    pub fn new(store: Arc<ContentStore>, events: Publisher) -> Self {
        ContentService { store, events }
    }
}

/// containerd's services check digests themselves and answer with a bare
/// status (no class suffix): `"<digest>" failed validation`.
#[allow(clippy::result_large_err)]
fn check_digest(digest: &str) -> Result<(), Status> {
    rcontainerd_pkg::digest::validate_request(digest).map_err(IntoStatus::into_status)
}

fn info_to_wire(blob: BlobRecord) -> wire::Info {
    wire::Info {
        digest: blob.digest,
        size: blob.size,
        created_at: Some(timestamp(blob.created_at)),
        updated_at: Some(timestamp(blob.updated_at)),
        labels: blob.labels.into_iter().collect(),
    }
}

fn status_to_wire(status: IngestStatus) -> wire::Status {
    wire::Status {
        started_at: Some(timestamp_from_nanos(status.started_at)),
        updated_at: Some(timestamp_from_nanos(status.updated_at)),
        r#ref: status.reference,
        offset: status.offset,
        total: status.total,
        expected: status.expected,
    }
}

/// List filter fields of a blob: `digest`, `size`, `labels.<key>`.
struct BlobFields<'a>(&'a BlobRecord);

impl Fields for BlobFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "digest" => Some(self.0.digest.clone()),
            "size" => Some(self.0.size.to_string()),
            "labels" if path.len() > 1 => self.0.labels.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

/// ListStatuses filter fields of an ingest: `ref`.
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
        let ns = namespace::of(&request)?;
        let digest = request.into_inner().digest;
        check_digest(&digest)?;
        let store = self.store.clone();
        let blob = inline(|| store.info(&ns, &digest))?;
        Ok(Response::new(InfoResponse {
            info: Some(info_to_wire(blob)),
        }))
    }

    async fn update(
        &self,
        request: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        let ns = namespace::of(&request)?;
        let request = request.into_inner();
        let info = request
            .info
            .ok_or_else(|| Error::invalid_argument("info is required").into_status())?;
        check_digest(&info.digest)?;
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let labels: BTreeMap<String, String> = info.labels.into_iter().collect();
        let store = self.store.clone();
        let blob = blocking(move || store.update(&ns, &info.digest, labels, &paths)).await?;
        Ok(Response::new(UpdateResponse {
            info: Some(info_to_wire(blob)),
        }))
    }

    async fn list(
        &self,
        request: Request<ListContentRequest>,
    ) -> Result<Response<BoxStream<ListContentResponse>>, Status> {
        let ns = namespace::of(&request)?;
        let filter =
            Filter::parse_all(&request.into_inner().filters).map_err(IntoStatus::into_status)?;
        let store = self.store.clone();
        let blobs = blocking(move || store.list(&ns)).await?;
        let matching: Vec<wire::Info> = blobs
            .into_iter()
            .filter(|b| filter.matches(&BlobFields(b)))
            .map(info_to_wire)
            .collect();
        let batches: Vec<Result<ListContentResponse, Status>> = matching
            .chunks(LIST_BATCH)
            .map(|chunk| {
                Ok(ListContentResponse {
                    info: chunk.to_vec(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(batches))))
    }

    async fn delete(&self, request: Request<DeleteContentRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let lease = namespace::lease(&request);
        let digest = request.into_inner().digest;
        check_digest(&digest)?;
        let store = self.store.clone();
        let event = ContentDelete {
            digest: digest.clone(),
        };
        let event_ns = ns.clone();
        blocking(move || {
            store.delete(&ns, &digest)?;
            CallLease::new(store.metadata(), &ns, lease.as_deref())
                .release(&Resource::content(&digest))
        })
        .await?;
        self.events.publish(&event_ns, "/content/delete", &event);
        Ok(Response::new(()))
    }

    async fn read(
        &self,
        request: Request<ReadContentRequest>,
    ) -> Result<Response<BoxStream<ReadContentResponse>>, Status> {
        let ns = namespace::of(&request)?;
        let request = request.into_inner();
        check_digest(&request.digest)?;
        let store = self.store.clone();
        let digest = request.digest.clone();
        let (blob, reader) = blocking(move || store.reader(&ns, &digest)).await?;
        Ok(Response::new(read_stream(
            reader,
            blob.size,
            request.offset,
            request.size,
        )))
    }

    async fn status(
        &self,
        request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let ns = namespace::of(&request)?;
        let reference = request.into_inner().r#ref;
        let store = self.store.clone();
        let status = blocking(move || store.status(&ns, &reference)).await?;
        Ok(Response::new(StatusResponse {
            status: Some(status_to_wire(status)),
        }))
    }

    async fn list_statuses(
        &self,
        request: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        let ns = namespace::of(&request)?;
        let filter =
            Filter::parse_all(&request.into_inner().filters).map_err(IntoStatus::into_status)?;
        let store = self.store.clone();
        let statuses = blocking(move || store.list_statuses(&ns)).await?;
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
        let ns = namespace::of(&request)?;
        let lease = namespace::lease(&request);
        let inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let store = self.store.clone();
        tokio::spawn(async move {
            if let Err(status) = write_stream(store, ns, lease, inbound, &tx).await {
                let _ = tx.send(Err(status)).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn abort(&self, request: Request<AbortRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let lease = namespace::lease(&request);
        let reference = request.into_inner().r#ref;
        let store = self.store.clone();
        blocking(move || {
            store.abort(&ns, &reference)?;
            CallLease::new(store.metadata(), &ns, lease.as_deref())
                .release(&Resource::ingest(&reference))
        })
        .await?;
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
    store: Arc<ContentStore>,
    namespace: String,
    /// The lease of the `containerd-lease` header: it holds the ingest, then the blob.
    lease: Option<String>,
    writer: IngestWriter,
    total: i64,
    expected: String,
    /// One response, updated per message, as containerd does: fields set
    /// by a STAT stay on later responses.
    response: WriteContentResponse,
}

impl WriteSession {
    fn lease(&self) -> CallLease<'_> {
        CallLease::new(
            self.store.metadata(),
            &self.namespace,
            self.lease.as_deref(),
        )
    }

    /// The lease now holds the blob `digest` instead of the ingest.
    #[allow(clippy::result_large_err)]
    fn lease_blob(&self, digest: &str) -> Result<(), Status> {
        self.lease()
            .swap(
                &Resource::ingest(self.writer.reference()),
                &Resource::content(digest),
            )
            .map_err(IntoStatus::into_status)
    }

    #[allow(clippy::result_large_err)]
    fn handle(&mut self, request: WriteContentRequest) -> Result<Step, Status> {
        self.response.action = request.action;
        self.response.offset = self.writer.offset() as i64;
        if !request.expected.is_empty() {
            check_digest(&request.expected)?;
            self.expected = request.expected.clone();
            if self
                .store
                .metadata()
                .blobs()
                .get(&self.namespace, &self.expected)
                .map_err(IntoStatus::into_status)?
                .is_some()
            {
                if let Err(e) = self.writer.abort() {
                    tracing::warn!(reference = %self.writer.driver_ref(), error = %e,
                        "content: aborting ingest of existing blob");
                }
                self.lease_blob(&self.expected.clone())?;
                return Err(Error::already_exists(format!(
                    "blob with expected digest {} exists",
                    self.expected
                ))
                .bare()
                .into_status());
            }
        }
        if request.total > 0 {
            self.total = request.total;
        }
        let action = WriteAction::try_from(request.action).map_err(|_| {
            Error::invalid_argument(format!("unknown write action {}", request.action))
                .bare()
                .into_status()
        })?;
        match action {
            WriteAction::Stat => {
                let status = self.writer.status().map_err(IntoStatus::into_status)?;
                self.response.digest = self.writer.digest().map_err(IntoStatus::into_status)?;
                self.response.started_at = Some(timestamp_from_nanos(status.started_at));
                self.response.updated_at = Some(timestamp_from_nanos(status.updated_at));
                self.response.total = self.total;
                Ok(Step::Continue)
            }
            WriteAction::Write | WriteAction::Commit => {
                let current = self.writer.offset() as i64;
                if request.offset > 0 && request.offset != current {
                    return Err(Error::out_of_range(format!(
                        "write @{} must occur at current offset {current}",
                        request.offset
                    ))
                    .into_status());
                }
                if request.offset == 0 && current > 0 {
                    self.writer.truncate().map_err(IntoStatus::into_status)?;
                    self.response.offset = 0;
                }
                if !request.data.is_empty() {
                    let written = self
                        .writer
                        .write(&request.data)
                        .map_err(IntoStatus::into_status)?;
                    if written != request.data.len() {
                        return Err(Error::data_loss(format!(
                            "ingest ref {:?}: wrote {written} of {} bytes",
                            self.writer.reference(),
                            request.data.len()
                        ))
                        .into_status());
                    }
                    self.response.offset += written as i64;
                }
                let step = if action == WriteAction::Commit {
                    let labels = request.labels.into_iter().collect();
                    // The blob and its lease reference land together for a collection.
                    let meta = self.store.metadata().clone();
                    let _gc = meta.hold_off_gc();
                    let committed = self.writer.commit(self.total, &self.expected, labels);
                    // A blob the namespace held already is the lease's too.
                    if committed.is_ok()
                        || committed.as_ref().is_err_and(|e| e.is(Kind::AlreadyExists))
                    {
                        let digest = self.writer.digest().map_err(IntoStatus::into_status)?;
                        self.lease_blob(&digest)?;
                    }
                    committed.map_err(IntoStatus::into_status)?;
                    Step::Committed
                } else {
                    Step::Continue
                };
                self.response.digest = self.writer.digest().map_err(IntoStatus::into_status)?;
                Ok(step)
            }
        }
    }
}

/// Runs a Write stream to its end. An error ends the stream with that
/// status; the ingest stays for resumption unless it was committed or aborted.
async fn write_stream(
    store: Arc<ContentStore>,
    namespace: String,
    lease: Option<String>,
    mut inbound: Streaming<WriteContentRequest>,
    tx: &mpsc::Sender<Result<WriteContentResponse, Status>>,
) -> Result<(), Status> {
    let Some(first) = inbound.message().await? else {
        return Ok(());
    };
    if first.r#ref.is_empty() {
        return Err(
            Error::invalid_argument("first message must have a reference")
                .bare()
                .into_status(),
        );
    }
    if !first.expected.is_empty() {
        check_digest(&first.expected)?;
    }
    let opening = store.clone();
    let (ns, reference, expected, total) = (
        namespace.clone(),
        first.r#ref.clone(),
        first.expected.clone(),
        first.total,
    );
    let held = lease.clone();
    let writer = blocking(move || {
        // The ingest and its lease reference land together for a collection.
        let _gc = opening.metadata().hold_off_gc();
        let lease = CallLease::new(opening.metadata(), &ns, held.as_deref());
        lease.check()?;
        let writer = match opening.writer(&ns, &reference, &expected, total) {
            // A blob the namespace holds (or just took from another) is the lease's too.
            Err(e) if e.is(Kind::AlreadyExists) && !expected.is_empty() => {
                lease.hold(&Resource::content(&expected))?;
                return Err(e);
            }
            other => other?,
        };
        lease.hold(&Resource::ingest(&reference))?;
        Ok(writer)
    })
    .await?;
    let mut session = Some(WriteSession {
        store,
        namespace,
        lease,
        writer,
        total: 0,
        expected: String::new(),
        response: WriteContentResponse::default(),
    });

    let (feed, mut incoming) = mpsc::channel(WRITE_PREFETCH);
    tokio::spawn(async move {
        loop {
            let next = inbound.message().await;
            let more = matches!(next, Ok(Some(_)));
            let item = next.transpose();
            if let Some(item) = item {
                if feed.send(item).await.is_err() {
                    return; // the stream ended on our side
                }
            }
            if !more {
                return; // half-closed or failed: dropping `feed` says so
            }
        }
    });

    let mut request = first;
    let result = loop {
        let mut current = session.take().expect("session is back after each message");
        let handled = tokio::task::spawn_blocking(move || {
            let step = current.handle(request);
            (current, step)
        })
        .await;
        let (back, step) = match handled {
            Ok(done) => done,
            Err(e) => break Err(Error::internal(format!("write worker failed: {e}")).into_status()),
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
        match incoming.recv().await {
            Some(Ok(next)) => request = next,
            None => {
                let _ = tx.send(Ok(response)).await;
                break Ok(());
            }
            Some(Err(status)) => break Err(status),
        }
    };
    // Closing the driver's writer may touch disk: not on the executor.
    if let Some(session) = session {
        let _ = tokio::task::spawn_blocking(move || drop(session)).await;
    }
    result
}

/// `io.containerd.grpc.v1.content`: serves the content service plugin's store.
pub fn registration() -> Registration {
    events::publishing(service::registration::<
        content_server::ContentServer<ContentService>,
    >("content", &[SERVICE_TYPE], |ctx| {
        let store = ctx.get::<Arc<ContentStore>>(CONTENT_SERVICE)?;
        Ok(service::provide(ContentGrpc(
            store,
            Publisher::from_context(ctx),
        )))
    }))
}

struct ContentGrpc(Arc<ContentStore>, Publisher);

impl GrpcService for ContentGrpc {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add_namespaced(content_server::ContentServer::new(ContentService::new(
            self.0.clone(),
            self.1.clone(),
        )));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_fields_expose_digest_size_and_labels() {
        let mut blob = BlobRecord::new("sha256:ab", 42, BTreeMap::new());
        blob.labels.insert("a.b".into(), "c".into());
        let fields = BlobFields(&blob);
        let matches = |f: &str| Filter::parse_all(&[f]).unwrap().matches(&fields);
        assert!(matches("digest==sha256:ab"));
        assert!(matches("size==42"));
        assert!(!matches("size==41"));
        assert!(matches(r#"labels."a.b"==c"#));
        assert!(!matches("labels.x"));
    }
}

//! `containerd.services.snapshots.v1.Snapshots` over one snapshotter driver:
//! what [`crate::ProxySnapshotter`] sends, answered by the driver.

use std::sync::Arc;

use rcontainerd_api::services::snapshots::{
    snapshots_server, CleanupRequest, CommitSnapshotRequest, ListSnapshotsRequest,
    ListSnapshotsResponse, MountsRequest, MountsResponse, PrepareSnapshotRequest,
    PrepareSnapshotResponse, RemoveSnapshotRequest, StatSnapshotRequest, StatSnapshotResponse,
    UpdateSnapshotRequest, UpdateSnapshotResponse, UsageRequest, UsageResponse,
    ViewSnapshotRequest, ViewSnapshotResponse,
};
use rcontainerd_api::status::IntoStatus;
use rcontainerd_pkg::filters::{Fields, Filter};
use rcontainerd_plugin_api::snapshot::{Info, Kind, Snapshotter};
use tonic::{Request, Response, Status};

use rcontainerd_ttrpc::blocking::Split;

use super::{answer_blocking, batches, label, to_status, ttrpc_status, unary};
use crate::wire::snapshot::{info_from_wire, info_to_wire, mounts_to_wire};

/// Serves one snapshotter driver.
pub struct SnapshotService {
    driver: Arc<dyn Snapshotter>,
}

impl SnapshotService {
    pub fn new(driver: Arc<dyn Snapshotter>) -> Self {
        SnapshotService { driver }
    }

    /// Answers `request` with `f` and the driver, on the blocking pool.
    async fn run<Req, Resp>(
        &self,
        request: Request<Req>,
        f: fn(&dyn Snapshotter, Req) -> Result<Resp, Status>,
    ) -> Result<Response<Resp>, Status>
    where
        Req: Send + 'static,
        Resp: Send + 'static,
    {
        answer_blocking(&self.driver, request, f).await
    }
}

/// containerd's snapshot filter fields: `kind`, `name`, `parent`, `labels.<key>`.
struct InfoFields<'a>(&'a Info);

impl Fields for InfoFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "kind" => Some(
                match self.0.kind {
                    Kind::View => "view",
                    Kind::Active => "active",
                    Kind::Committed => "committed",
                }
                .to_string(),
            ),
            "name" => Some(self.0.name.clone()),
            "parent" => Some(self.0.parent.clone()),
            "labels" if path.len() > 1 => label(&self.0.labels, path).cloned(),
            _ => None,
        }
    }
}

type InfoBatches = tonic::codegen::BoxStream<ListSnapshotsResponse>;

/// The `Snapshots` service's name, on gRPC and on ttrpc alike.
pub const SERVICE: &str = "containerd.services.snapshots.v1.Snapshots";

/// Answers one call of the `Snapshots` service over ttrpc, the isolated
/// driver's transport: the same messages as gRPC's, on the calling thread;
/// List answers with every matching snapshot in one message.
pub fn answer(
    driver: &dyn Snapshotter,
    method: &str,
    payload: bytes::Bytes,
) -> Result<Split<'static>, rcontainerd_ttrpc::Status> {
    let d = driver;
    let answered = match method {
        "Prepare" => unary(payload, |r| prepare(d, r)),
        "View" => unary(payload, |r| view(d, r)),
        "Mounts" => unary(payload, |r| mounts(d, r)),
        "Commit" => unary(payload, |r| commit(d, r)),
        "Remove" => unary(payload, |r| remove(d, r)),
        "Stat" => unary(payload, |r| stat(d, r)),
        "Update" => unary(payload, |r| update(d, r)),
        "List" => unary(payload, |r| {
            Ok(ListSnapshotsResponse {
                info: list(d, r)?.collect(),
            })
        }),
        "Usage" => unary(payload, |r| usage(d, r)),
        "Cleanup" => unary(payload, |r| cleanup(d, r)),
        other => Err(Status::unimplemented(format!(
            "{SERVICE}/{other} is not served"
        ))),
    };
    answered.map_err(ttrpc_status)
}

fn prepare(
    d: &dyn Snapshotter,
    r: PrepareSnapshotRequest,
) -> Result<PrepareSnapshotResponse, Status> {
    let labels = r.labels.into_iter().collect();
    let mounts = d.prepare(&r.key, &r.parent, labels).map_err(to_status)?;
    Ok(PrepareSnapshotResponse {
        mounts: mounts_to_wire(mounts),
    })
}

fn view(d: &dyn Snapshotter, r: ViewSnapshotRequest) -> Result<ViewSnapshotResponse, Status> {
    let labels = r.labels.into_iter().collect();
    let mounts = d.view(&r.key, &r.parent, labels).map_err(to_status)?;
    Ok(ViewSnapshotResponse {
        mounts: mounts_to_wire(mounts),
    })
}

fn mounts(d: &dyn Snapshotter, r: MountsRequest) -> Result<MountsResponse, Status> {
    let mounts = d.mounts(&r.key).map_err(to_status)?;
    Ok(MountsResponse {
        mounts: mounts_to_wire(mounts),
    })
}

fn commit(d: &dyn Snapshotter, r: CommitSnapshotRequest) -> Result<(), Status> {
    let labels = r.labels.into_iter().collect();
    d.commit(&r.name, &r.key, labels).map_err(to_status)
}

fn remove(d: &dyn Snapshotter, r: RemoveSnapshotRequest) -> Result<(), Status> {
    d.remove(&r.key).map_err(to_status)
}

fn stat(d: &dyn Snapshotter, r: StatSnapshotRequest) -> Result<StatSnapshotResponse, Status> {
    let info = d.stat(&r.key).map_err(to_status)?;
    Ok(StatSnapshotResponse {
        info: Some(info_to_wire(info)),
    })
}

fn update(d: &dyn Snapshotter, r: UpdateSnapshotRequest) -> Result<UpdateSnapshotResponse, Status> {
    let info = r
        .info
        .map(info_from_wire)
        .ok_or_else(|| Status::invalid_argument("info is required"))?;
    let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
    let info = d.update(info, &paths).map_err(to_status)?;
    Ok(UpdateSnapshotResponse {
        info: Some(info_to_wire(info)),
    })
}

/// The snapshots matching the request's filters, as containerd filters.
fn list(
    d: &dyn Snapshotter,
    r: ListSnapshotsRequest,
) -> Result<impl Iterator<Item = rcontainerd_api::services::snapshots::Info>, Status> {
    let filter = Filter::parse_all(&r.filters).map_err(IntoStatus::into_status)?;
    let infos = d.walk().map_err(to_status)?;
    Ok(infos
        .into_iter()
        .filter(move |i| filter.matches(&InfoFields(i)))
        .map(info_to_wire))
}

fn usage(d: &dyn Snapshotter, r: UsageRequest) -> Result<UsageResponse, Status> {
    let usage = d.usage(&r.key).map_err(to_status)?;
    Ok(UsageResponse {
        size: usage.size,
        inodes: usage.inodes,
    })
}

fn cleanup(d: &dyn Snapshotter, _: CleanupRequest) -> Result<(), Status> {
    d.cleanup().map_err(to_status)
}

#[tonic::async_trait]
impl snapshots_server::Snapshots for SnapshotService {
    async fn prepare(
        &self,
        request: Request<PrepareSnapshotRequest>,
    ) -> Result<Response<PrepareSnapshotResponse>, Status> {
        self.run(request, prepare).await
    }

    async fn view(
        &self,
        request: Request<ViewSnapshotRequest>,
    ) -> Result<Response<ViewSnapshotResponse>, Status> {
        self.run(request, view).await
    }

    /// On the calling worker: the author contract has `mounts` answer from
    /// memory or local metadata, and the hop would cost more than the call.
    async fn mounts(
        &self,
        request: Request<MountsRequest>,
    ) -> Result<Response<MountsResponse>, Status> {
        mounts(&*self.driver, request.into_inner()).map(Response::new)
    }

    async fn commit(
        &self,
        request: Request<CommitSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        self.run(request, commit).await
    }

    async fn remove(
        &self,
        request: Request<RemoveSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        self.run(request, remove).await
    }

    async fn stat(
        &self,
        request: Request<StatSnapshotRequest>,
    ) -> Result<Response<StatSnapshotResponse>, Status> {
        self.run(request, stat).await
    }

    async fn update(
        &self,
        request: Request<UpdateSnapshotRequest>,
    ) -> Result<Response<UpdateSnapshotResponse>, Status> {
        self.run(request, update).await
    }

    /// Batches of infos, filtered as containerd filters.
    async fn list(
        &self,
        request: Request<ListSnapshotsRequest>,
    ) -> Result<Response<InfoBatches>, Status> {
        let matching = self
            .run(request, |d, r| Ok(list(d, r)?.collect::<Vec<_>>()))
            .await?
            .into_inner();
        let messages = batches(matching)
            .into_iter()
            .map(|info| Ok(ListSnapshotsResponse { info }));
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn usage(
        &self,
        request: Request<UsageRequest>,
    ) -> Result<Response<UsageResponse>, Status> {
        self.run(request, usage).await
    }

    async fn cleanup(&self, request: Request<CleanupRequest>) -> Result<Response<()>, Status> {
        self.run(request, cleanup).await
    }
}

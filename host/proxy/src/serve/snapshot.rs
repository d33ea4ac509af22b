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

use super::{batches, blocking, label, to_status};
use crate::wire::snapshot::{info_from_wire, info_to_wire, mounts_to_wire};

/// Serves one snapshotter driver.
pub struct SnapshotService {
    driver: Arc<dyn Snapshotter>,
}

impl SnapshotService {
    pub fn new(driver: Arc<dyn Snapshotter>) -> Self {
        SnapshotService { driver }
    }

    /// Runs `f` with the driver on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, Status>
    where
        F: FnOnce(&dyn Snapshotter) -> rcontainerd_plugin_api::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let driver = self.driver.clone();
        blocking(move || f(&*driver)).await
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

#[tonic::async_trait]
impl snapshots_server::Snapshots for SnapshotService {
    async fn prepare(
        &self,
        request: Request<PrepareSnapshotRequest>,
    ) -> Result<Response<PrepareSnapshotResponse>, Status> {
        let r = request.into_inner();
        let labels = r.labels.into_iter().collect();
        let mounts = self
            .run(move |d| d.prepare(&r.key, &r.parent, labels))
            .await?;
        Ok(Response::new(PrepareSnapshotResponse {
            mounts: mounts_to_wire(mounts),
        }))
    }

    async fn view(
        &self,
        request: Request<ViewSnapshotRequest>,
    ) -> Result<Response<ViewSnapshotResponse>, Status> {
        let r = request.into_inner();
        let labels = r.labels.into_iter().collect();
        let mounts = self.run(move |d| d.view(&r.key, &r.parent, labels)).await?;
        Ok(Response::new(ViewSnapshotResponse {
            mounts: mounts_to_wire(mounts),
        }))
    }

    /// On the calling worker: the author contract has `mounts` answer from
    /// memory or local metadata, and the hop would cost more than the call.
    async fn mounts(
        &self,
        request: Request<MountsRequest>,
    ) -> Result<Response<MountsResponse>, Status> {
        let mounts = self
            .driver
            .mounts(&request.into_inner().key)
            .map_err(to_status)?;
        Ok(Response::new(MountsResponse {
            mounts: mounts_to_wire(mounts),
        }))
    }

    async fn commit(
        &self,
        request: Request<CommitSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        let r = request.into_inner();
        let labels = r.labels.into_iter().collect();
        self.run(move |d| d.commit(&r.name, &r.key, labels)).await?;
        Ok(Response::new(()))
    }

    async fn remove(
        &self,
        request: Request<RemoveSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        let key = request.into_inner().key;
        self.run(move |d| d.remove(&key)).await?;
        Ok(Response::new(()))
    }

    async fn stat(
        &self,
        request: Request<StatSnapshotRequest>,
    ) -> Result<Response<StatSnapshotResponse>, Status> {
        let key = request.into_inner().key;
        let info = self.run(move |d| d.stat(&key)).await?;
        Ok(Response::new(StatSnapshotResponse {
            info: Some(info_to_wire(info)),
        }))
    }

    async fn update(
        &self,
        request: Request<UpdateSnapshotRequest>,
    ) -> Result<Response<UpdateSnapshotResponse>, Status> {
        let r = request.into_inner();
        let info = r
            .info
            .map(info_from_wire)
            .ok_or_else(|| Status::invalid_argument("info is required"))?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let info = self.run(move |d| d.update(info, &paths)).await?;
        Ok(Response::new(UpdateSnapshotResponse {
            info: Some(info_to_wire(info)),
        }))
    }

    /// Batches of infos, filtered as containerd filters.
    async fn list(
        &self,
        request: Request<ListSnapshotsRequest>,
    ) -> Result<Response<InfoBatches>, Status> {
        let filter =
            Filter::parse_all(&request.into_inner().filters).map_err(IntoStatus::into_status)?;
        let infos = self.run(|d| d.walk()).await?;
        let matching = infos
            .into_iter()
            .filter(|i| filter.matches(&InfoFields(i)))
            .map(info_to_wire);
        let messages = batches(matching)
            .into_iter()
            .map(|info| Ok(ListSnapshotsResponse { info }));
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn usage(
        &self,
        request: Request<UsageRequest>,
    ) -> Result<Response<UsageResponse>, Status> {
        let key = request.into_inner().key;
        let usage = self.run(move |d| d.usage(&key)).await?;
        Ok(Response::new(UsageResponse {
            size: usage.size,
            inodes: usage.inodes,
        }))
    }

    async fn cleanup(&self, _: Request<CleanupRequest>) -> Result<Response<()>, Status> {
        self.run(|d| d.cleanup()).await?;
        Ok(Response::new(()))
    }
}

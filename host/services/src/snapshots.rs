//! `containerd.services.snapshots.v1.Snapshots` over the snapshot stores.
//!
//! The namespace comes from the `containerd-namespace` header (checked by the
//! interceptor); the request's `snapshotter` field picks the store. Driver
//! and store calls run on the blocking pool. Prepare, Commit and Remove are
//! announced as containerd 1.6 announces them (`/snapshot/prepare`,
//! `/snapshot/commit`, `/snapshot/remove`, naming key, parent and name but
//! not the snapshotter); View and Update are not announced.

use crate::convert::{mounts_to_wire, timestamp};
use crate::events::{self, Publisher};
use crate::namespace;
use crate::service::{self, GrpcService, Routes};
use crate::status::IntoStatus;
use crate::{blocking, inline};
use rcontainerd_api::events::{SnapshotCommit, SnapshotPrepare, SnapshotRemove};
use rcontainerd_api::services::snapshots::{
    self as wire, snapshots_server, CleanupRequest, CommitSnapshotRequest, ListSnapshotsRequest,
    ListSnapshotsResponse, MountsRequest, MountsResponse, PrepareSnapshotRequest,
    PrepareSnapshotResponse, RemoveSnapshotRequest, StatSnapshotRequest, StatSnapshotResponse,
    UpdateSnapshotRequest, UpdateSnapshotResponse, UsageRequest, UsageResponse,
    ViewSnapshotRequest, ViewSnapshotResponse,
};
use rcontainerd_core::ids::{SERVICE_TYPE, SNAPSHOTS_SERVICE};
use rcontainerd_core::leases::CallLease;
use rcontainerd_core::registry::Registration;
use rcontainerd_core::snapshots::{SnapshotStore, SnapshotStores};
use rcontainerd_metadata::{Resource, SnapshotKind, SnapshotRecord};
use rcontainerd_pkg::errdefs::{Error, Result};
use rcontainerd_pkg::filters::{Fields, Filter};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Infos per List message (containerd sends batches of this size).
const LIST_BATCH: usize = 100;

pub struct SnapshotsService {
    stores: Arc<SnapshotStores>,
    events: Publisher,
}

impl SnapshotsService {
    pub fn new(stores: Arc<SnapshotStores>, events: Publisher) -> Self {
        SnapshotsService { stores, events }
    }
}

fn wire_kind(kind: SnapshotKind) -> wire::Kind {
    match kind {
        SnapshotKind::View => wire::Kind::View,
        SnapshotKind::Active => wire::Kind::Active,
        SnapshotKind::Committed => wire::Kind::Committed,
    }
}

fn kind_name(kind: SnapshotKind) -> &'static str {
    match kind {
        SnapshotKind::View => "view",
        SnapshotKind::Active => "active",
        SnapshotKind::Committed => "committed",
    }
}

fn to_wire(record: SnapshotRecord) -> wire::Info {
    wire::Info {
        name: record.name,
        parent: record.parent,
        kind: wire_kind(record.kind) as i32,
        created_at: Some(timestamp(record.created_at)),
        updated_at: Some(timestamp(record.updated_at)),
        labels: record.labels.into_iter().collect(),
    }
}

fn sorted(labels: HashMap<String, String>) -> BTreeMap<String, String> {
    labels.into_iter().collect()
}

/// containerd's snapshot filter fields: `kind`, `name`, `parent`, `labels.<key>`.
struct SnapshotFields<'a>(&'a SnapshotRecord);

impl Fields for SnapshotFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "kind" => Some(kind_name(self.0.kind).to_string()),
            "name" => Some(self.0.name.clone()),
            "parent" => Some(self.0.parent.clone()),
            "labels" if path.len() > 1 => self.0.labels.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

impl SnapshotsService {
    fn store(&self, snapshotter: &str) -> Result<Arc<SnapshotStore>, Status> {
        self.stores
            .get(snapshotter)
            .map_err(IntoStatus::into_status)
    }

    /// Runs a lookup on the calling async worker: a host record read, or a
    /// driver's `mounts`, which the author contract requires to answer from
    /// memory or local metadata (docs/plugin-authors.md). The hop to the
    /// blocking pool would cost more than the call on these hot paths.
    fn lookup<T>(
        &self,
        snapshotter: &str,
        f: impl FnOnce(&SnapshotStore) -> Result<T>,
    ) -> Result<T, Status> {
        let store = self.store(snapshotter)?;
        inline(|| f(&store))
    }

    /// Runs `f` with the store on the blocking pool.
    async fn run<T, F>(&self, snapshotter: &str, f: F) -> Result<T, Status>
    where
        F: FnOnce(&SnapshotStore) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store(snapshotter)?;
        blocking(move || f(&store)).await
    }
}

/// What List answers: batches of infos.
type ListStream = tonic::codegen::BoxStream<ListSnapshotsResponse>;

#[tonic::async_trait]
impl snapshots_server::Snapshots for SnapshotsService {
    async fn prepare(
        &self,
        request: Request<PrepareSnapshotRequest>,
    ) -> Result<Response<PrepareSnapshotResponse>, Status> {
        let ns = namespace::of(&request)?;
        let lease = namespace::lease(&request);
        let r = request.into_inner();
        let event = SnapshotPrepare {
            key: r.key.clone(),
            parent: r.parent.clone(),
            snapshotter: String::new(),
        };
        let event_ns = ns.clone();
        let mounts = self
            .run(&r.snapshotter, move |s| {
                // The snapshot and its lease reference land together for a collection.
                let _gc = s.metadata().hold_off_gc();
                let lease = CallLease::new(s.metadata(), &ns, lease.as_deref());
                lease.check()?;
                let mounts = s.prepare(&ns, &r.key, &r.parent, sorted(r.labels))?;
                lease.hold(&Resource::snapshot(s.snapshotter(), &r.key))?;
                Ok(mounts)
            })
            .await?;
        self.events.publish(&event_ns, "/snapshot/prepare", &event);
        Ok(Response::new(PrepareSnapshotResponse {
            mounts: mounts_to_wire(mounts),
        }))
    }

    async fn view(
        &self,
        request: Request<ViewSnapshotRequest>,
    ) -> Result<Response<ViewSnapshotResponse>, Status> {
        let ns = namespace::of(&request)?;
        let lease = namespace::lease(&request);
        let r = request.into_inner();
        let mounts = self
            .run(&r.snapshotter, move |s| {
                // The snapshot and its lease reference land together for a collection.
                let _gc = s.metadata().hold_off_gc();
                let lease = CallLease::new(s.metadata(), &ns, lease.as_deref());
                lease.check()?;
                let mounts = s.view(&ns, &r.key, &r.parent, sorted(r.labels))?;
                lease.hold(&Resource::snapshot(s.snapshotter(), &r.key))?;
                Ok(mounts)
            })
            .await?;
        Ok(Response::new(ViewSnapshotResponse {
            mounts: mounts_to_wire(mounts),
        }))
    }

    async fn mounts(
        &self,
        request: Request<MountsRequest>,
    ) -> Result<Response<MountsResponse>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let mounts = self.lookup(&r.snapshotter, |s| s.mounts(&ns, &r.key))?;
        Ok(Response::new(MountsResponse {
            mounts: mounts_to_wire(mounts),
        }))
    }

    async fn commit(
        &self,
        request: Request<CommitSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let lease = namespace::lease(&request);
        let r = request.into_inner();
        let event = SnapshotCommit {
            key: r.key.clone(),
            name: r.name.clone(),
            snapshotter: String::new(),
        };
        let event_ns = ns.clone();
        self.run(&r.snapshotter, move |s| {
            let _gc = s.metadata().hold_off_gc();
            let lease = CallLease::new(s.metadata(), &ns, lease.as_deref());
            lease.check()?;
            s.commit(&ns, &r.name, &r.key, sorted(r.labels))?;
            lease.swap(
                &Resource::snapshot(s.snapshotter(), &r.key),
                &Resource::snapshot(s.snapshotter(), &r.name),
            )
        })
        .await?;
        self.events.publish(&event_ns, "/snapshot/commit", &event);
        Ok(Response::new(()))
    }

    async fn remove(
        &self,
        request: Request<RemoveSnapshotRequest>,
    ) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let lease = namespace::lease(&request);
        let r = request.into_inner();
        let event = SnapshotRemove {
            key: r.key.clone(),
            snapshotter: String::new(),
        };
        let event_ns = ns.clone();
        self.run(&r.snapshotter, move |s| {
            s.remove(&ns, &r.key)?;
            CallLease::new(s.metadata(), &ns, lease.as_deref())
                .release(&Resource::snapshot(s.snapshotter(), &r.key))
        })
        .await?;
        self.events.publish(&event_ns, "/snapshot/remove", &event);
        Ok(Response::new(()))
    }

    async fn stat(
        &self,
        request: Request<StatSnapshotRequest>,
    ) -> Result<Response<StatSnapshotResponse>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let record = self.lookup(&r.snapshotter, |s| s.stat(&ns, &r.key))?;
        Ok(Response::new(StatSnapshotResponse {
            info: Some(to_wire(record)),
        }))
    }

    async fn update(
        &self,
        request: Request<UpdateSnapshotRequest>,
    ) -> Result<Response<UpdateSnapshotResponse>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let info = r
            .info
            .ok_or_else(|| Error::invalid_argument("snapshot info is required in the request"))
            .map_err(IntoStatus::into_status)?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let record = self
            .run(&r.snapshotter, move |s| {
                s.update(&ns, &info.name, sorted(info.labels), &paths)
            })
            .await?;
        Ok(Response::new(UpdateSnapshotResponse {
            info: Some(to_wire(record)),
        }))
    }

    async fn list(
        &self,
        request: Request<ListSnapshotsRequest>,
    ) -> Result<Response<ListStream>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let filter = Filter::parse_all(&r.filters).map_err(IntoStatus::into_status)?;
        let records = self.run(&r.snapshotter, move |s| s.list(&ns)).await?;
        let infos: Vec<wire::Info> = records
            .into_iter()
            .filter(|record| filter.matches(&SnapshotFields(record)))
            .map(to_wire)
            .collect();
        let mut batches = Vec::with_capacity(infos.len().div_ceil(LIST_BATCH));
        let mut infos = infos.into_iter().peekable();
        while infos.peek().is_some() {
            let info: Vec<wire::Info> = infos.by_ref().take(LIST_BATCH).collect();
            batches.push(Ok(ListSnapshotsResponse { info }));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(batches))))
    }

    async fn usage(
        &self,
        request: Request<UsageRequest>,
    ) -> Result<Response<UsageResponse>, Status> {
        let ns = namespace::of(&request)?;
        let r = request.into_inner();
        let usage = self
            .run(&r.snapshotter, move |s| s.usage(&ns, &r.key))
            .await?;
        Ok(Response::new(UsageResponse {
            size: usage.size,
            inodes: usage.inodes,
        }))
    }

    async fn cleanup(&self, request: Request<CleanupRequest>) -> Result<Response<()>, Status> {
        namespace::of(&request)?;
        let r = request.into_inner();
        self.run(&r.snapshotter, |s| s.cleanup()).await?;
        Ok(Response::new(()))
    }
}

/// `io.containerd.grpc.v1.snapshots`: serves the stores the snapshots
/// service plugin opened (and recovered) at start-up.
pub fn registration() -> Registration {
    events::publishing(service::registration::<
        snapshots_server::SnapshotsServer<SnapshotsService>,
    >("snapshots", &[SERVICE_TYPE], |ctx| {
        let stores = ctx.get::<Arc<SnapshotStores>>(SNAPSHOTS_SERVICE)?;
        Ok(service::provide(SnapshotsGrpc(
            stores,
            Publisher::from_context(ctx),
        )))
    }))
}

struct SnapshotsGrpc(Arc<SnapshotStores>, Publisher);

impl GrpcService for SnapshotsGrpc {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add_namespaced(snapshots_server::SnapshotsServer::new(
            SnapshotsService::new(self.0.clone(), self.1.clone()),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn record(kind: SnapshotKind) -> SnapshotRecord {
        SnapshotRecord {
            name: "n".into(),
            kind,
            parent: "p".into(),
            labels: [("a.b".to_string(), "x".to_string())].into(),
            created_at: SystemTime::UNIX_EPOCH + std::time::Duration::new(5, 7),
            updated_at: SystemTime::UNIX_EPOCH - std::time::Duration::new(1, 250_000_000),
            driver_key: "ns/1/n".into(),
        }
    }

    #[test]
    fn filters_use_containerd_field_names() {
        let active = record(SnapshotKind::Active);
        let f = |s: &str| {
            Filter::parse_all(&[s])
                .unwrap()
                .matches(&SnapshotFields(&active))
        };
        assert!(f("kind==active"));
        assert!(!f("kind==committed"));
        assert!(f("parent==p,name==n"));
        assert!(f(r#"labels."a.b"==x"#));
        assert!(!f("labels.c==x"));
    }

    #[test]
    fn wire_info_carries_kind_and_normalised_timestamps() {
        let info = to_wire(record(SnapshotKind::Committed));
        assert_eq!(info.kind, wire::Kind::Committed as i32);
        assert_eq!(
            info.created_at,
            Some(prost_types::Timestamp {
                seconds: 5,
                nanos: 7
            })
        );
        // Before the epoch: seconds round down, nanos stay positive.
        assert_eq!(
            info.updated_at,
            Some(prost_types::Timestamp {
                seconds: -2,
                nanos: 750_000_000
            })
        );
    }
}

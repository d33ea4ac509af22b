//! `containerd.services.leases.v1.Leases` over the metadata store's leases.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rcontainerd_api::services::leases::{
    self as wire, leases_server, AddResourceRequest, CreateRequest, CreateResponse, DeleteRequest,
    DeleteResourceRequest, ListRequest, ListResourcesRequest, ListResourcesResponse, ListResponse,
};
use rcontainerd_core::gc::Scheduler;
use rcontainerd_core::ids::{GC_SCHEDULER, LEASES_SERVICE, SERVICE_TYPE};
use rcontainerd_core::registry::Registration;
use rcontainerd_metadata::{Lease, MetadataStore, Resource};
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_pkg::filters::Fields;
use tonic::{Request, Response, Status};

use crate::convert::timestamp;
use crate::namespace;
use crate::service::{self, GrpcService, Routes};
use crate::status::IntoStatus;
use crate::{blocking, collect_after_sync_delete, record_filter};

pub struct LeasesService {
    store: Arc<MetadataStore>,
    /// Waited on by a Delete with `sync`; none when the gc plugin is disabled.
    gc: Option<Arc<Scheduler>>,
}

impl LeasesService {
    pub fn new(store: Arc<MetadataStore>, gc: Option<Arc<Scheduler>>) -> Self {
        LeasesService { store, gc }
    }
}

fn to_wire(lease: Lease) -> wire::Lease {
    wire::Lease {
        id: lease.id,
        created_at: Some(timestamp(lease.created_at)),
        labels: lease.labels.into_iter().collect(),
    }
}

/// An id for a lease created without one: the clock's nanoseconds and
/// random characters, unique enough that two clients never collide.
fn generated_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{nanos}-{}", &random[..8])
}

#[allow(clippy::result_large_err)]
fn resource(resource: Option<wire::Resource>) -> Result<Resource, Status> {
    let r =
        resource.ok_or_else(|| Error::invalid_argument("resource is required").into_status())?;
    Ok(Resource::new(r.r#type, r.id))
}

/// containerd's lease filter fields: `id`, `labels.<key>`.
struct LeaseFields<'a>(&'a Lease);

impl Fields for LeaseFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "id" => (!self.0.id.is_empty()).then(|| self.0.id.clone()),
            "labels" if path.len() > 1 => self.0.labels.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

#[tonic::async_trait]
impl leases_server::Leases for LeasesService {
    async fn create(
        &self,
        request: Request<CreateRequest>,
    ) -> Result<Response<CreateResponse>, Status> {
        let ns = namespace::of(&request)?;
        let request = request.into_inner();
        let id = match request.id {
            id if id.is_empty() => generated_id(),
            id => id,
        };
        let labels: BTreeMap<String, String> = request.labels.into_iter().collect();
        let store = self.store.clone();
        let lease = blocking(move || store.leases().create(&ns, &id, labels)).await?;
        Ok(Response::new(CreateResponse {
            lease: Some(to_wire(lease)),
        }))
    }

    async fn delete(&self, request: Request<DeleteRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let request = request.into_inner();
        let store = self.store.clone();
        let id = request.id;
        blocking(move || store.leases().delete(&ns, &id)).await?;
        if request.sync {
            collect_after_sync_delete(self.gc.clone()).await?;
        }
        Ok(Response::new(()))
    }

    async fn list(&self, request: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let ns = namespace::of(&request)?;
        let filter = record_filter(&request.into_inner().filters)?;
        let store = self.store.clone();
        let all = blocking(move || store.leases().list(&ns)).await?;
        let leases = all
            .into_iter()
            .filter(|lease| filter.matches(&LeaseFields(lease)))
            .map(to_wire)
            .collect();
        Ok(Response::new(ListResponse { leases }))
    }

    async fn add_resource(
        &self,
        request: Request<AddResourceRequest>,
    ) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let request = request.into_inner();
        let resource = resource(request.resource)?;
        let store = self.store.clone();
        blocking(move || store.leases().add_resource(&ns, &request.id, &resource)).await?;
        Ok(Response::new(()))
    }

    async fn delete_resource(
        &self,
        request: Request<DeleteResourceRequest>,
    ) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let request = request.into_inner();
        let resource = resource(request.resource)?;
        let store = self.store.clone();
        blocking(move || store.leases().delete_resource(&ns, &request.id, &resource)).await?;
        Ok(Response::new(()))
    }

    async fn list_resources(
        &self,
        request: Request<ListResourcesRequest>,
    ) -> Result<Response<ListResourcesResponse>, Status> {
        let ns = namespace::of(&request)?;
        let id = request.into_inner().id;
        let store = self.store.clone();
        let resources = blocking(move || store.leases().resources(&ns, &id)).await?;
        Ok(Response::new(ListResourcesResponse {
            resources: resources
                .into_iter()
                .map(|r| wire::Resource {
                    id: r.id,
                    r#type: r.kind,
                })
                .collect(),
        }))
    }
}

/// `io.containerd.grpc.v1.leases`.
pub fn registration() -> Registration {
    service::registration::<leases_server::LeasesServer<LeasesService>>(
        "leases",
        &[SERVICE_TYPE],
        |ctx| {
            let store = ctx.get::<Arc<MetadataStore>>(LEASES_SERVICE)?;
            let gc = ctx.get::<Arc<Scheduler>>(GC_SCHEDULER).ok();
            Ok(service::provide(LeasesGrpc(store, gc)))
        },
    )
}

struct LeasesGrpc(Arc<MetadataStore>, Option<Arc<Scheduler>>);

impl GrpcService for LeasesGrpc {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add_namespaced(leases_server::LeasesServer::new(LeasesService::new(
            self.0.clone(),
            self.1.clone(),
        )));
    }
}

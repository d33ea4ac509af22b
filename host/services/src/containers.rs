//! `containerd.services.containers.v1.Containers` over the metadata store's
//! container records. Create, Update and Delete are announced as containerd
//! announces them: `/containers/create` with id, image and runtime,
//! `/containers/update` with id, image, labels and snapshot key as stored,
//! `/containers/delete` with the id.

use std::sync::Arc;

use rcontainerd_api::events::{
    container_create, ContainerCreate, ContainerDelete, ContainerUpdate,
};
use rcontainerd_api::services::containers::{
    self as wire, containers_server, CreateContainerRequest, CreateContainerResponse,
    DeleteContainerRequest, GetContainerRequest, GetContainerResponse, ListContainerMessage,
    ListContainersRequest, ListContainersResponse, UpdateContainerRequest, UpdateContainerResponse,
};
use rcontainerd_core::ids::{CONTAINERS_SERVICE, SERVICE_TYPE};
use rcontainerd_core::registry::Registration;
use rcontainerd_metadata::{AnyValue, Container, MetadataStore, Runtime};
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_pkg::filters::Fields;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status};

use crate::convert::timestamp;
use crate::events::{self, Publisher};
use crate::namespace;
use crate::service::{self, GrpcService, Routes};
use crate::status::IntoStatus;
use crate::{blocking, inline, record_filter};

pub struct ContainersService {
    store: Arc<MetadataStore>,
    events: Publisher,
}

impl ContainersService {
    pub fn new(store: Arc<MetadataStore>, events: Publisher) -> Self {
        ContainersService { store, events }
    }
}

fn any_to_wire(any: AnyValue) -> prost_types::Any {
    prost_types::Any {
        type_url: any.type_url,
        value: any.value,
    }
}

fn any_from_wire(any: prost_types::Any) -> AnyValue {
    AnyValue {
        type_url: any.type_url,
        value: any.value,
    }
}

fn to_wire(c: Container) -> wire::Container {
    wire::Container {
        id: c.id,
        labels: c.labels.into_iter().collect(),
        image: c.image,
        runtime: Some(wire::container::Runtime {
            name: c.runtime.name,
            options: c.runtime.options.map(any_to_wire),
        }),
        spec: c.spec.map(any_to_wire),
        snapshotter: c.snapshotter,
        snapshot_key: c.snapshot_key,
        created_at: Some(timestamp(c.created_at)),
        updated_at: Some(timestamp(c.updated_at)),
        extensions: c
            .extensions
            .into_iter()
            .map(|(k, v)| (k, any_to_wire(v)))
            .collect(),
        sandbox: c.sandbox,
    }
}

fn from_wire(c: wire::Container) -> Container {
    let mut container = Container::new(&c.id);
    container.labels = c.labels.into_iter().collect();
    container.image = c.image;
    let runtime = c.runtime.unwrap_or_default();
    container.runtime = Runtime {
        name: runtime.name,
        options: runtime.options.map(any_from_wire),
    };
    container.spec = c.spec.map(any_from_wire);
    container.snapshotter = c.snapshotter;
    container.snapshot_key = c.snapshot_key;
    container.extensions = c
        .extensions
        .into_iter()
        .map(|(k, v)| (k, any_from_wire(v)))
        .collect();
    container.sandbox = c.sandbox;
    container
}

/// containerd's container filter fields: `id`, `runtime.name`, `image`,
/// `labels.<key>`.
struct ContainerFields<'a>(&'a Container);

impl Fields for ContainerFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        let c = self.0;
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        match path.first().map(String::as_str)? {
            "id" => nonempty(&c.id),
            "runtime" => match path.get(1).map(String::as_str)? {
                "name" => nonempty(&c.runtime.name),
                _ => None,
            },
            "image" => nonempty(&c.image),
            "labels" if path.len() > 1 => c.labels.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

impl ContainersService {
    async fn matching(
        &self,
        request: Request<ListContainersRequest>,
    ) -> Result<Vec<wire::Container>, Status> {
        let ns = namespace::of(&request)?;
        let filter = record_filter(&request.into_inner().filters)?;
        let store = self.store.clone();
        let all = blocking(move || store.containers().list(&ns)).await?;
        Ok(all
            .into_iter()
            .filter(|c| filter.matches(&ContainerFields(c)))
            .map(to_wire)
            .collect())
    }
}

#[tonic::async_trait]
impl containers_server::Containers for ContainersService {
    async fn get(
        &self,
        request: Request<GetContainerRequest>,
    ) -> Result<Response<GetContainerResponse>, Status> {
        let ns = namespace::of(&request)?;
        let id = request.into_inner().id;
        let store = self.store.clone();
        let container = inline(|| store.containers().get(&ns, &id))?;
        Ok(Response::new(GetContainerResponse {
            container: Some(to_wire(container)),
        }))
    }

    async fn list(
        &self,
        request: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        let containers = self.matching(request).await?;
        Ok(Response::new(ListContainersResponse { containers }))
    }

    async fn list_stream(
        &self,
        request: Request<ListContainersRequest>,
    ) -> Result<Response<BoxStream<ListContainerMessage>>, Status> {
        let messages: Vec<Result<ListContainerMessage, Status>> = self
            .matching(request)
            .await?
            .into_iter()
            .map(|container| {
                Ok(ListContainerMessage {
                    container: Some(container),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(messages))))
    }

    async fn create(
        &self,
        request: Request<CreateContainerRequest>,
    ) -> Result<Response<CreateContainerResponse>, Status> {
        let ns = namespace::of(&request)?;
        let container = from_wire(request.into_inner().container.unwrap_or_default());
        let store = self.store.clone();
        let event_ns = ns.clone();
        let created = to_wire(blocking(move || store.containers().create(&ns, container)).await?);
        let runtime = created.runtime.clone().unwrap_or_default();
        self.events.publish(
            &event_ns,
            "/containers/create",
            &ContainerCreate {
                id: created.id.clone(),
                image: created.image.clone(),
                runtime: Some(container_create::Runtime {
                    name: runtime.name,
                    options: runtime.options,
                }),
            },
        );
        Ok(Response::new(CreateContainerResponse {
            container: Some(created),
        }))
    }

    async fn update(
        &self,
        request: Request<UpdateContainerRequest>,
    ) -> Result<Response<UpdateContainerResponse>, Status> {
        let ns = namespace::of(&request)?;
        let request = request.into_inner();
        let container = match request.container {
            Some(c) if !c.id.is_empty() => from_wire(c),
            // containerd's service refuses it before the store, bare.
            _ => {
                return Err(Error::invalid_argument("Container.ID required")
                    .bare()
                    .into_status())
            }
        };
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let store = self.store.clone();
        let event_ns = ns.clone();
        let updated =
            to_wire(blocking(move || store.containers().update(&ns, container, &paths)).await?);
        self.events.publish(
            &event_ns,
            "/containers/update",
            &ContainerUpdate {
                id: updated.id.clone(),
                image: updated.image.clone(),
                labels: updated.labels.clone(),
                snapshot_key: updated.snapshot_key.clone(),
            },
        );
        Ok(Response::new(UpdateContainerResponse {
            container: Some(updated),
        }))
    }

    async fn delete(
        &self,
        request: Request<DeleteContainerRequest>,
    ) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let id = request.into_inner().id;
        let store = self.store.clone();
        let event_ns = ns.clone();
        let deleted = id.clone();
        blocking(move || store.containers().delete(&ns, &deleted)).await?;
        self.events
            .publish(&event_ns, "/containers/delete", &ContainerDelete { id });
        Ok(Response::new(()))
    }
}

/// `io.containerd.grpc.v1.containers`.
pub fn registration() -> Registration {
    events::publishing(service::registration::<
        containers_server::ContainersServer<ContainersService>,
    >("containers", &[SERVICE_TYPE], |ctx| {
        let store = ctx.get::<Arc<MetadataStore>>(CONTAINERS_SERVICE)?;
        Ok(service::provide(ContainersGrpc(
            store,
            Publisher::from_context(ctx),
        )))
    }))
}

struct ContainersGrpc(Arc<MetadataStore>, Publisher);

impl GrpcService for ContainersGrpc {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add_namespaced(containers_server::ContainersServer::new(
            ContainersService::new(self.0.clone(), self.1.clone()),
        ));
    }
}

//! `containerd.services.namespaces.v1.Namespaces` over the metadata store.
//!
//! Each change is announced as containerd announces it: `/namespaces/create`
//! and `/namespaces/update` with the request's name and labels, in the
//! caller's namespace (the header; a caller without one, which containerd
//! answers with an error after making the change, gets the change and the
//! event in the namespace it named), `/namespaces/delete` in the deleted one.

use crate::events::{self, Publisher};
use crate::namespace;
use crate::service::{self, GrpcService, Routes};
use crate::status::IntoStatus;
use crate::{blocking, inline};
use rcontainerd_api::events::{NamespaceCreate, NamespaceDelete, NamespaceUpdate};
use rcontainerd_api::services::namespaces::{
    self as wire, namespaces_server, CreateNamespaceRequest, CreateNamespaceResponse,
    DeleteNamespaceRequest, GetNamespaceRequest, GetNamespaceResponse, ListNamespacesRequest,
    ListNamespacesResponse, UpdateNamespaceRequest, UpdateNamespaceResponse,
};
use rcontainerd_core::ids::{NAMESPACES_SERVICE, SERVICE_TYPE};
use rcontainerd_core::registry::Registration;
use rcontainerd_metadata::{MetadataStore, Namespace};
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_pkg::filters::{Fields, Filter};
use std::collections::BTreeMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};

pub struct NamespacesService {
    store: Arc<MetadataStore>,
    events: Publisher,
}

impl NamespacesService {
    pub fn new(store: Arc<MetadataStore>, events: Publisher) -> Self {
        NamespacesService { store, events }
    }
}

/// The caller's namespace, which an event about a namespace is published
/// in; a caller that named none gets it in the namespace it changed.
fn caller<T>(request: &Request<T>) -> Option<String> {
    namespace::from_metadata(request.metadata()).ok()
}

fn to_wire(ns: Namespace) -> wire::Namespace {
    wire::Namespace {
        name: ns.name,
        labels: ns.labels.into_iter().collect(),
    }
}

struct NamespaceFields<'a>(&'a Namespace);

impl Fields for NamespaceFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "name" => Some(self.0.name.clone()),
            "labels" if path.len() > 1 => self.0.labels.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

fn required(namespace: Option<wire::Namespace>) -> Result<wire::Namespace, Status> {
    namespace.ok_or_else(|| {
        Error::invalid_argument("namespace is required in the request").into_status()
    })
}

#[tonic::async_trait]
impl namespaces_server::Namespaces for NamespacesService {
    async fn get(
        &self,
        request: Request<GetNamespaceRequest>,
    ) -> Result<Response<GetNamespaceResponse>, Status> {
        let name = request.into_inner().name;
        let store = self.store.clone();
        let ns = inline(|| store.namespaces().get(&name))?;
        Ok(Response::new(GetNamespaceResponse {
            namespace: Some(to_wire(ns)),
        }))
    }

    async fn list(
        &self,
        request: Request<ListNamespacesRequest>,
    ) -> Result<Response<ListNamespacesResponse>, Status> {
        let filter =
            Filter::parse_all(&[request.into_inner().filter]).map_err(IntoStatus::into_status)?;
        let store = self.store.clone();
        let all = blocking(move || store.namespaces().list()).await?;
        let namespaces = all
            .into_iter()
            .filter(|ns| filter.matches(&NamespaceFields(ns)))
            .map(to_wire)
            .collect();
        Ok(Response::new(ListNamespacesResponse { namespaces }))
    }

    async fn create(
        &self,
        request: Request<CreateNamespaceRequest>,
    ) -> Result<Response<CreateNamespaceResponse>, Status> {
        let caller = caller(&request);
        let ns = required(request.into_inner().namespace)?;
        let event_ns = caller.unwrap_or_else(|| ns.name.clone());
        let event = NamespaceCreate {
            name: ns.name.clone(),
            labels: ns.labels.clone(),
        };
        let labels: BTreeMap<String, String> = ns.labels.into_iter().collect();
        let store = self.store.clone();
        let created = blocking(move || store.namespaces().create(&ns.name, labels)).await?;
        self.events.publish(&event_ns, "/namespaces/create", &event);
        Ok(Response::new(CreateNamespaceResponse {
            namespace: Some(to_wire(created)),
        }))
    }

    async fn update(
        &self,
        request: Request<UpdateNamespaceRequest>,
    ) -> Result<Response<UpdateNamespaceResponse>, Status> {
        let caller = caller(&request);
        let request = request.into_inner();
        let ns = required(request.namespace)?;
        let event_ns = caller.unwrap_or_else(|| ns.name.clone());
        // containerd announces the request's labels, not the stored set.
        let event = NamespaceUpdate {
            name: ns.name.clone(),
            labels: ns.labels.clone(),
        };
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let labels: BTreeMap<String, String> = ns.labels.into_iter().collect();
        let store = self.store.clone();
        let updated = blocking(move || store.namespaces().update(&ns.name, labels, &paths)).await?;
        self.events.publish(&event_ns, "/namespaces/update", &event);
        Ok(Response::new(UpdateNamespaceResponse {
            namespace: Some(to_wire(updated)),
        }))
    }

    async fn delete(
        &self,
        request: Request<DeleteNamespaceRequest>,
    ) -> Result<Response<()>, Status> {
        let name = request.into_inner().name;
        let store = self.store.clone();
        let deleted = name.clone();
        blocking(move || store.namespaces().delete(&deleted)).await?;
        // In the deleted namespace itself, as containerd does.
        self.events.publish(
            &name,
            "/namespaces/delete",
            &NamespaceDelete { name: name.clone() },
        );
        Ok(Response::new(()))
    }
}

/// `io.containerd.grpc.v1.namespaces`.
pub fn registration() -> Registration {
    events::publishing(service::registration::<
        namespaces_server::NamespacesServer<NamespacesService>,
    >("namespaces", &[SERVICE_TYPE], |ctx| {
        let store = ctx.get::<Arc<MetadataStore>>(NAMESPACES_SERVICE)?;
        Ok(service::provide(NamespacesGrpc(
            store,
            Publisher::from_context(ctx),
        )))
    }))
}

struct NamespacesGrpc(Arc<MetadataStore>, Publisher);

impl GrpcService for NamespacesGrpc {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add(namespaces_server::NamespacesServer::new(
            NamespacesService::new(self.0.clone(), self.1.clone()),
        ));
    }
}

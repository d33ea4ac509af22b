//! `containerd.services.images.v1.Images` over the metadata store's image
//! records. Create, Update and Delete are announced as containerd announces
//! them: `/images/create` and `/images/update` with the stored name and
//! labels, `/images/delete` with the name.

use std::collections::BTreeMap;
use std::sync::Arc;

use rcontainerd_api::services::images::{
    self as wire, images_server, CreateImageRequest, CreateImageResponse, DeleteImageRequest,
    GetImageRequest, GetImageResponse, ImageCreate, ImageDelete, ImageUpdate, ListImagesRequest,
    ListImagesResponse, UpdateImageRequest, UpdateImageResponse,
};
use rcontainerd_core::gc::Scheduler;
use rcontainerd_core::ids::{GC_SCHEDULER, IMAGES_SERVICE, SERVICE_TYPE};
use rcontainerd_core::registry::Registration;
use rcontainerd_metadata::{Image, MetadataStore};
use rcontainerd_pkg::errdefs::Error;
use rcontainerd_pkg::filters::Fields;
use tonic::{Request, Response, Status};

use crate::convert::{descriptor_from_wire, descriptor_to_wire, timestamp};
use crate::events::{self, Publisher};
use crate::namespace;
use crate::service::{self, GrpcService, Routes};
use crate::status::IntoStatus;
use crate::{blocking, collect_after_sync_delete, inline, record_filter};

pub struct ImagesService {
    store: Arc<MetadataStore>,
    /// Waited on by a Delete with `sync`; none when the gc plugin is disabled.
    gc: Option<Arc<Scheduler>>,
    events: Publisher,
}

impl ImagesService {
    pub fn new(store: Arc<MetadataStore>, gc: Option<Arc<Scheduler>>, events: Publisher) -> Self {
        ImagesService { store, gc, events }
    }
}

fn to_wire(image: Image) -> wire::Image {
    wire::Image {
        name: image.name,
        labels: image.labels.into_iter().collect(),
        target: Some(descriptor_to_wire(image.target)),
        created_at: Some(timestamp(image.created_at)),
        updated_at: Some(timestamp(image.updated_at)),
    }
}

fn from_wire(image: wire::Image) -> Image {
    let labels: BTreeMap<String, String> = image.labels.into_iter().collect();
    Image::new(&image.name, labels, descriptor_from_wire(image.target))
}

/// The image a Create or Update names; containerd's service refuses a
/// request without a name before the store sees it, with a bare message.
#[allow(clippy::result_large_err)]
fn named(image: Option<wire::Image>) -> Result<wire::Image, Status> {
    match image {
        Some(image) if !image.name.is_empty() => Ok(image),
        _ => Err(Error::invalid_argument("Image.Name required")
            .bare()
            .into_status()),
    }
}

/// containerd's image filter fields: `name`, `target.digest`,
/// `target.mediatype`, `labels.<key>`, `annotations.<key>`.
struct ImageFields<'a>(&'a Image);

impl Fields for ImageFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        let image = self.0;
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        match path.first().map(String::as_str)? {
            "name" => nonempty(&image.name),
            "target" => match path.get(1).map(String::as_str)? {
                "digest" => nonempty(&image.target.digest),
                "mediatype" => nonempty(&image.target.media_type),
                _ => None,
            },
            "labels" if path.len() > 1 => image.labels.get(&path[1..].join(".")).cloned(),
            "annotations" if path.len() > 1 => {
                image.target.annotations.get(&path[1..].join(".")).cloned()
            }
            _ => None,
        }
    }
}

#[tonic::async_trait]
impl images_server::Images for ImagesService {
    async fn get(
        &self,
        request: Request<GetImageRequest>,
    ) -> Result<Response<GetImageResponse>, Status> {
        let ns = namespace::of(&request)?;
        let name = request.into_inner().name;
        let store = self.store.clone();
        let image = inline(|| store.images().get(&ns, &name))?;
        Ok(Response::new(GetImageResponse {
            image: Some(to_wire(image)),
        }))
    }

    async fn list(
        &self,
        request: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let ns = namespace::of(&request)?;
        let filter = record_filter(&request.into_inner().filters)?;
        let store = self.store.clone();
        let all = blocking(move || store.images().list(&ns)).await?;
        let images = all
            .into_iter()
            .filter(|image| filter.matches(&ImageFields(image)))
            .map(to_wire)
            .collect();
        Ok(Response::new(ListImagesResponse { images }))
    }

    async fn create(
        &self,
        request: Request<CreateImageRequest>,
    ) -> Result<Response<CreateImageResponse>, Status> {
        let ns = namespace::of(&request)?;
        let image = from_wire(named(request.into_inner().image)?);
        let store = self.store.clone();
        let event_ns = ns.clone();
        let created = to_wire(blocking(move || store.images().create(&ns, image)).await?);
        self.events.publish(
            &event_ns,
            "/images/create",
            &ImageCreate {
                name: created.name.clone(),
                labels: created.labels.clone(),
            },
        );
        Ok(Response::new(CreateImageResponse {
            image: Some(created),
        }))
    }

    async fn update(
        &self,
        request: Request<UpdateImageRequest>,
    ) -> Result<Response<UpdateImageResponse>, Status> {
        let ns = namespace::of(&request)?;
        let request = request.into_inner();
        let image = from_wire(named(request.image)?);
        let paths = request.update_mask.map(|m| m.paths).unwrap_or_default();
        let store = self.store.clone();
        let event_ns = ns.clone();
        let updated = to_wire(blocking(move || store.images().update(&ns, image, &paths)).await?);
        self.events.publish(
            &event_ns,
            "/images/update",
            &ImageUpdate {
                name: updated.name.clone(),
                labels: updated.labels.clone(),
            },
        );
        Ok(Response::new(UpdateImageResponse {
            image: Some(updated),
        }))
    }

    async fn delete(&self, request: Request<DeleteImageRequest>) -> Result<Response<()>, Status> {
        let ns = namespace::of(&request)?;
        let request = request.into_inner();
        let target = request
            .target
            .map(|t| t.digest)
            .filter(|digest| !digest.is_empty());
        let store = self.store.clone();
        let event_ns = ns.clone();
        let name = request.name.clone();
        let sync = request.sync;
        blocking(move || store.images().delete(&ns, &request.name, target.as_deref())).await?;
        self.events
            .publish(&event_ns, "/images/delete", &ImageDelete { name });
        if sync {
            collect_after_sync_delete(self.gc.clone()).await?;
        }
        Ok(Response::new(()))
    }
}

/// `io.containerd.grpc.v1.images`.
pub fn registration() -> Registration {
    events::publishing(service::registration::<
        images_server::ImagesServer<ImagesService>,
    >("images", &[SERVICE_TYPE], |ctx| {
        let store = ctx.get::<Arc<MetadataStore>>(IMAGES_SERVICE)?;
        let gc = ctx.get::<Arc<Scheduler>>(GC_SCHEDULER).ok();
        Ok(service::provide(ImagesGrpc(
            store,
            gc,
            Publisher::from_context(ctx),
        )))
    }))
}

struct ImagesGrpc(Arc<MetadataStore>, Option<Arc<Scheduler>>, Publisher);

impl GrpcService for ImagesGrpc {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add_namespaced(images_server::ImagesServer::new(ImagesService::new(
            self.0.clone(),
            self.1.clone(),
            self.2.clone(),
        )));
    }
}

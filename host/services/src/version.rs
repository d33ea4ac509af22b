//! `containerd.services.version.v1.Version`.

use rcontainerd_api::services::version::{version_server, VersionResponse};
use tonic::{Request, Response, Status};

use crate::service::{self, GrpcService, Routes};
use rcontainerd_core::registry::Registration;

/// containerd API level we serve, with our own version as build metadata
/// (semver: same precedence as the containerd release, so clients that gate
/// features on the server version treat us as containerd 1.6.20).
pub const VERSION: &str = concat!("1.6.20+rcontainerd.", env!("CARGO_PKG_VERSION"));
pub const REVISION: &str = concat!("rcontainerd-", env!("CARGO_PKG_VERSION"));

pub struct VersionService;

#[tonic::async_trait]
impl version_server::Version for VersionService {
    async fn version(&self, _: Request<()>) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: VERSION.to_string(),
            revision: REVISION.to_string(),
        }))
    }
}

/// `io.containerd.grpc.v1.version`.
pub fn registration() -> Registration {
    service::registration::<version_server::VersionServer<VersionService>>("version", &[], |_| {
        Ok(service::provide(VersionGrpc))
    })
}

struct VersionGrpc;

impl GrpcService for VersionGrpc {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add(version_server::VersionServer::new(VersionService));
    }
}

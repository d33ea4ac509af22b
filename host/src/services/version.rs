//! `containerd.services.version.v1.Version`.

use rcontainerd_api::services::version::{version_server, VersionResponse};
use tonic::{Request, Response, Status};

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

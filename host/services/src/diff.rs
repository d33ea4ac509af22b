//! `containerd.services.diff.v1.Diff` over the diff service plugin's differs.
//!
//! Both calls can run for long (a layer of gigabytes): they run off the executor, and a client
//! that goes away stops them at their next read or write (the differ unmounts on every path).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rcontainerd_api::services::diff::{
    diff_server, ApplyRequest, ApplyResponse, DiffRequest, DiffResponse,
};
use rcontainerd_core::differ::{DiffOptions, Differs};
use rcontainerd_core::ids::{DIFF_SERVICE, SERVICE_TYPE};
use rcontainerd_core::registry::Registration;
use rcontainerd_pkg::errdefs::Error;
use tonic::{Request, Response, Status};

use crate::convert::{descriptor_from_wire, descriptor_to_wire, mounts_from_wire};
use crate::service::{self, GrpcService, Routes};
use crate::status::IntoStatus;
use crate::{blocking, namespace};

pub struct DiffService {
    differs: Arc<Differs>,
}

/// Says "cancelled" to the work when the call's future is dropped before it finished.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl CancelOnDrop {
    fn new() -> (Self, Arc<AtomicBool>) {
        let flag = Arc::new(AtomicBool::new(false));
        (CancelOnDrop(flag.clone()), flag)
    }

    /// The call finished: nothing to cancel.
    fn disarm(self) {
        std::mem::forget(self);
    }
}

#[tonic::async_trait]
impl diff_server::Diff for DiffService {
    async fn apply(
        &self,
        request: Request<ApplyRequest>,
    ) -> Result<Response<ApplyResponse>, Status> {
        let ns = namespace::of(&request)?;
        let request = request.into_inner();
        let Some(diff) = request.diff else {
            return Err(Error::invalid_argument("diff descriptor is required").into_status());
        };
        let layer = descriptor_from_wire(Some(diff));
        let mounts = mounts_from_wire(request.mounts);
        let differs = self.differs.clone();
        let (guard, cancelled) = CancelOnDrop::new();
        let applied = blocking(move || differs.apply(&ns, &cancelled, &layer, &mounts)).await;
        guard.disarm();
        Ok(Response::new(ApplyResponse {
            applied: Some(descriptor_to_wire(applied?)),
        }))
    }

    async fn diff(&self, request: Request<DiffRequest>) -> Result<Response<DiffResponse>, Status> {
        let ns = namespace::of(&request)?;
        let lease = namespace::lease(&request);
        let request = request.into_inner();
        let lower = mounts_from_wire(request.left);
        let upper = mounts_from_wire(request.right);
        let options = DiffOptions {
            media_type: request.media_type,
            reference: request.r#ref,
            labels: request.labels.into_iter().collect::<BTreeMap<_, _>>(),
        };
        let differs = self.differs.clone();
        let (guard, cancelled) = CancelOnDrop::new();
        let made = blocking(move || {
            differs.diff(&ns, lease.as_deref(), &cancelled, &lower, &upper, &options)
        })
        .await;
        guard.disarm();
        Ok(Response::new(DiffResponse {
            diff: Some(descriptor_to_wire(made?)),
        }))
    }
}

/// `io.containerd.grpc.v1.diff`.
pub fn registration() -> Registration {
    service::registration::<diff_server::DiffServer<DiffService>>("diff", &[SERVICE_TYPE], |ctx| {
        let differs = ctx.get::<Arc<Differs>>(DIFF_SERVICE)?;
        Ok(service::provide(DiffGrpc(differs)))
    })
}

struct DiffGrpc(Arc<Differs>);

impl GrpcService for DiffGrpc {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add_namespaced(diff_server::DiffServer::new(DiffService {
            differs: self.0.clone(),
        }));
    }
}

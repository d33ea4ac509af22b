//! How a gRPC service plugs into the server: a [`GrpcService`] adds its
//! routes through [`Routes`], which applies the edge's limits and the
//! namespace interceptor the same way to every service. A service whose
//! plugin failed is served by an [`Unavailable`] stand-in, so clients get
//! Unavailable with the reason, never Unimplemented.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::sync::Arc;
use std::task::{Context, Poll};

use rcontainerd_core::ids::GRPC_TYPE;
use rcontainerd_core::registry::{BuiltinInit, Instance, Registration};
use rcontainerd_pkg::errdefs::Error;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tonic::service::RoutesBuilder;

use crate::namespace;
use crate::status::IntoStatus;

/// A service the server serves: what a `io.containerd.grpc.v1` plugin provides.
pub trait GrpcService: Send + Sync {
    fn add_routes(&self, routes: &mut Routes);
}

/// Settings the server applies to every service.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_recv_message_size: usize,
    pub max_send_message_size: usize,
}

/// A generated tonic server whose message sizes can be limited.
pub trait Limited {
    fn limited(self, limits: &Limits) -> Self;
}

/// The routes being built, with the settings every service gets.
pub struct Routes {
    builder: RoutesBuilder,
    limits: Limits,
}

impl Routes {
    pub fn new(limits: Limits) -> Self {
        Routes {
            builder: RoutesBuilder::default(),
            limits,
        }
    }

    /// A service that needs no namespace (Version, Introspection, …).
    pub fn add<S>(&mut self, server: S)
    where
        S: Limited
            + Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
        S: NamedService + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        self.builder.add_service(server.limited(&self.limits));
    }

    /// A namespaced service: a request without a valid `containerd-namespace`
    /// header is refused before any handler runs.
    pub fn add_namespaced<S>(&mut self, server: S)
    where
        S: Limited
            + Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
        S: NamedService + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
    {
        self.builder.add_service(InterceptedService::new(
            server.limited(&self.limits),
            namespace::require,
        ));
    }

    pub(crate) fn add_unavailable<S: NamedService + 'static>(&mut self, stand_in: Unavailable<S>) {
        self.builder.add_service(stand_in);
    }

    pub fn into_routes(self) -> tonic::service::Routes {
        self.builder.routes()
    }
}

/// Every tonic server type the edge serves gets the same limits.
macro_rules! limited {
    ($($server:ty),* $(,)?) => {$(
        impl<T> Limited for $server {
            fn limited(self, limits: &Limits) -> Self {
                self.max_decoding_message_size(limits.max_recv_message_size)
                    .max_encoding_message_size(limits.max_send_message_size)
            }
        }
    )*};
}

use rcontainerd_api::services as api;
limited!(
    api::containers::containers_server::ContainersServer<T>,
    api::content::content_server::ContentServer<T>,
    api::diff::diff_server::DiffServer<T>,
    api::events::events_server::EventsServer<T>,
    api::images::images_server::ImagesServer<T>,
    api::introspection::introspection_server::IntrospectionServer<T>,
    api::leases::leases_server::LeasesServer<T>,
    api::namespaces::namespaces_server::NamespacesServer<T>,
    api::snapshots::snapshots_server::SnapshotsServer<T>,
    api::tasks::tasks_server::TasksServer<T>,
    api::version::version_server::VersionServer<T>,
    tonic_health::pb::health_server::HealthServer<T>,
);

/// Serves every method of API service `S` with Unavailable and the reason
/// its plugin failed.
pub struct Unavailable<S> {
    reason: Arc<str>,
    service: PhantomData<fn() -> S>,
}

impl<S> Unavailable<S> {
    pub fn new(reason: &Error) -> Self {
        Unavailable {
            reason: reason.message.as_str().into(),
            service: PhantomData,
        }
    }
}

impl<S> Clone for Unavailable<S> {
    fn clone(&self) -> Self {
        Unavailable {
            reason: self.reason.clone(),
            service: PhantomData,
        }
    }
}

impl<S: NamedService> NamedService for Unavailable<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for Unavailable<S> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<Body>) -> Self::Future {
        let status = Error::unavailable(self.reason.to_string()).into_status();
        std::future::ready(Ok(status.into_http()))
    }
}

impl<S: NamedService + 'static> GrpcService for Unavailable<S> {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add_unavailable(self.clone());
    }
}

/// The registration of gRPC plugin `io.containerd.grpc.v1.<id>` serving API
/// service `S`: `init` builds the service from what earlier plugins provide;
/// if it fails, `S` answers Unavailable with the reason.
pub fn registration<S: NamedService + 'static>(
    id: &str,
    requires: &[&str],
    init: BuiltinInit,
) -> Registration {
    Registration::builtin(GRPC_TYPE, id, requires, init).with_stand_in(stand_in::<S>)
}

fn stand_in<S: NamedService + 'static>(reason: &Error) -> Instance {
    provide(Unavailable::<S>::new(reason))
}

/// What a gRPC plugin's init returns.
pub fn provide(service: impl GrpcService + 'static) -> Instance {
    Instance::of(Arc::new(service) as Arc<dyn GrpcService>)
}

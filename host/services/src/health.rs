//! `grpc.health.v1.Health` (`io.containerd.grpc.v1.healthcheck`): the
//! server's overall status answers SERVING while the daemon serves.

use rcontainerd_core::registry::Registration;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::HealthService;

use crate::service::{self, GrpcService, Routes};

pub fn registration() -> Registration {
    service::registration::<HealthServer<HealthService>>("healthcheck", &[], |_| {
        Ok(service::provide(Health))
    })
}

struct Health;

impl GrpcService for Health {
    fn add_routes(&self, routes: &mut Routes) {
        let (reporter, server) = tonic_health::server::health_reporter();
        // Nothing reports per-service health: "" (the whole server) stays SERVING.
        drop(reporter);
        routes.add(server);
    }
}

//! Namespaced API services whose capability has not landed yet. They are
//! served so that clients get containerd's answers in containerd's order:
//! a missing or invalid `containerd-namespace` header first, then
//! `Unimplemented` for the method. Each is replaced by its real service (a
//! file and a line in the daemon's built-in list) in the issue that brings it.

use rcontainerd_api::services::{containers, images, leases, tasks};

use crate::service::{GrpcService, Routes};

pub struct Pending;

impl containers::containers_server::Containers for Pending {}
impl images::images_server::Images for Pending {}
impl leases::leases_server::Leases for Pending {}
impl tasks::tasks_server::Tasks for Pending {}

impl GrpcService for Pending {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add_namespaced(containers::containers_server::ContainersServer::new(
            Pending,
        ));
        routes.add_namespaced(images::images_server::ImagesServer::new(Pending));
        routes.add_namespaced(leases::leases_server::LeasesServer::new(Pending));
        routes.add_namespaced(tasks::tasks_server::TasksServer::new(Pending));
    }
}

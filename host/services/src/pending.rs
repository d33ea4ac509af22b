//! Namespaced API services whose capability has not landed yet. They are
//! served so that clients get containerd's answers in containerd's order:
//! a missing or invalid `containerd-namespace` header first, then
//! `Unimplemented` for the method. Each is replaced by its real service (a
//! file and a line in the daemon's built-in list) in the issue that brings it.

use rcontainerd_api::services::tasks;

use crate::service::{GrpcService, Routes};

pub struct Pending;

impl tasks::tasks_server::Tasks for Pending {}

impl GrpcService for Pending {
    fn add_routes(&self, routes: &mut Routes) {
        routes.add_namespaced(tasks::tasks_server::TasksServer::new(Pending));
    }
}

//! Namespaced services whose capability has not landed yet. They are
//! served so that clients get containerd's answers in containerd's order:
//! a missing or invalid `containerd-namespace` header first (the header
//! check runs before any handler), then `Unimplemented` for the method.
//! Each is replaced by its real service in the issue that brings it.

use rcontainerd_api::services::{containers, images, leases, tasks};

pub struct Pending;

impl containers::containers_server::Containers for Pending {}
impl images::images_server::Images for Pending {}
impl leases::leases_server::Leases for Pending {}
impl tasks::tasks_server::Tasks for Pending {}

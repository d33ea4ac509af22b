//! Plugin types and URIs the daemon's built-ins are known by. They are
//! containerd's, so both `ctr`s list the same plugins.

pub const CONTENT_TYPE: &str = "io.containerd.content.v1";
pub const SNAPSHOTTER_TYPE: &str = "io.containerd.snapshotter.v1";
pub const METADATA_TYPE: &str = "io.containerd.metadata.v1";
pub const GC_TYPE: &str = "io.containerd.gc.v1";
/// The event exchange: what services publish to and Subscribe reads from.
pub const EVENT_TYPE: &str = "io.containerd.event.v1";
/// Domain services: build the objects the gRPC plugins serve.
pub const SERVICE_TYPE: &str = "io.containerd.service.v1";
/// gRPC services: each provides one (or more) API services at the edge.
pub const GRPC_TYPE: &str = "io.containerd.grpc.v1";
/// Task runtime drivers (shim v2).
pub const RUNTIME_TYPE: &str = "io.containerd.runtime.v2";

pub const METADATA: &str = "io.containerd.metadata.v1.bolt";
pub const GC_SCHEDULER: &str = "io.containerd.gc.v1.scheduler";
pub const EXCHANGE: &str = "io.containerd.event.v1.exchange";
pub const INTROSPECTION_SERVICE: &str = "io.containerd.service.v1.introspection-service";
pub const NAMESPACES_SERVICE: &str = "io.containerd.service.v1.namespaces-service";
pub const IMAGES_SERVICE: &str = "io.containerd.service.v1.images-service";
pub const CONTAINERS_SERVICE: &str = "io.containerd.service.v1.containers-service";
pub const LEASES_SERVICE: &str = "io.containerd.service.v1.leases-service";
pub const SNAPSHOTS_SERVICE: &str = "io.containerd.service.v1.snapshots-service";
pub const CONTENT_SERVICE: &str = "io.containerd.service.v1.content-service";
pub const DIFFER_TYPE: &str = "io.containerd.differ.v1";
pub const DIFF_SERVICE: &str = "io.containerd.service.v1.diff-service";
pub const TASKS_SERVICE: &str = "io.containerd.service.v1.tasks-service";

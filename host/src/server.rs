//! The gRPC endpoint: a unix socket served by tonic.
//!
//! The socket's parent directory is created; a stale socket file is
//! replaced, but if another daemon answers on it we refuse to start rather
//! than steal its address. The socket is `0660` and owned by `grpc.uid/gid`.

use crate::errdefs::{Error, Result};
use crate::plugin::builtin::{
    self, GRPC_CONTENT, GRPC_HEALTH, GRPC_INTROSPECTION, GRPC_NAMESPACES, GRPC_SNAPSHOTS,
    GRPC_VERSION,
};
use crate::plugin::Registry;
use crate::services::{
    content, introspection, namespace_header, namespaces, pending, snapshots, version,
};
use rcontainerd_api::services as api;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

/// How long open calls may take to finish once shutdown has begun.
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

pub struct SocketOptions {
    pub path: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub max_recv_message_size: usize,
    pub max_send_message_size: usize,
}

/// Binds the socket, refusing if a live daemon already serves on it.
pub fn bind(opts: &SocketOptions) -> Result<UnixListener> {
    let path = &opts.path;
    let io = |what: &str, e: std::io::Error| {
        Error::unavailable(format!("socket {}: {what}: {e}", path.display()))
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io("create parent directory", e))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(Error::unavailable(format!(
                    "another daemon is already serving on {}",
                    path.display()
                )));
            }
            std::fs::remove_file(path).map_err(|e| io("remove stale socket", e))?;
        }
        Ok(_) => {
            return Err(Error::failed_precondition(format!(
                "{} exists and is not a socket",
                path.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("stat", e)),
    }
    let listener = UnixListener::bind(path).map_err(|e| io("bind", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| io("chmod", e))?;
    if opts.uid != 0 || opts.gid != 0 {
        nix::unistd::chown(
            path,
            Some(nix::unistd::Uid::from_raw(opts.uid)),
            Some(nix::unistd::Gid::from_raw(opts.gid)),
        )
        .map_err(|e| io("chown", std::io::Error::from(e)))?;
    }
    Ok(listener)
}

/// Serves the gRPC services of initialised plugins until `shutdown` fires.
pub async fn serve(
    registry: &Registry,
    listener: UnixListener,
    opts: &SocketOptions,
    started: Instant,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let done = &registry.initialized;
    let mut router = tonic::transport::Server::builder()
        // Large blobs stream through Content.Write/Read: windows larger than
        // h2's 64 KiB default keep the pipe full on a local socket.
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .add_optional_service(
            done.is_ok(GRPC_VERSION)
                .then(|| api::version::version_server::VersionServer::new(version::VersionService)),
        );

    let uuid = done.values.get(builtin::SERVER_UUID).cloned();
    router = router.add_optional_service((done.is_ok(GRPC_INTROSPECTION) && uuid.is_some()).then(
        || {
            api::introspection::introspection_server::IntrospectionServer::new(
                introspection::IntrospectionService::new(
                    &registry.statuses,
                    uuid.clone().unwrap_or_default(),
                ),
            )
        },
    ));

    let namespaces_service = match (&done.metadata, done.is_ok(GRPC_NAMESPACES)) {
        (Some(store), true) => Some(
            api::namespaces::namespaces_server::NamespacesServer::new(
                namespaces::NamespacesService::new(store.clone()),
            )
            .max_decoding_message_size(opts.max_recv_message_size)
            .max_encoding_message_size(opts.max_send_message_size),
        ),
        _ => None,
    };
    router = router.add_optional_service(namespaces_service);

    let health = done.is_ok(GRPC_HEALTH).then(|| {
        let (reporter, service) = tonic_health::server::health_reporter();
        // The overall server status ("") answers SERVING while we run.
        drop(reporter);
        service
    });
    router = router.add_optional_service(health);

    // Snapshots over every loaded snapshotter; opening a store replays its
    // intents and removes orphans, so it runs before we serve.
    let snapshots_service = match (&done.metadata, done.is_ok(GRPC_SNAPSHOTS)) {
        (Some(store), true) => {
            let store = store.clone();
            let backends = done.snapshotters.clone();
            let stores = crate::services::blocking(move || {
                Ok(crate::snapshots::SnapshotStores::open_all(
                    &store, &backends,
                ))
            })
            .await?;
            Some(
                api::snapshots::snapshots_server::SnapshotsServer::with_interceptor(
                    snapshots::SnapshotsService::new(stores),
                    namespace_header::require,
                ),
            )
        }
        _ => None,
    };
    router = router.add_optional_service(snapshots_service);

    // Content: the driver's blobs seen through per-namespace records.
    let content_service = match (&done.metadata, &done.content, done.is_ok(GRPC_CONTENT)) {
        (Some(store), Some(driver), true) => {
            let store = Arc::new(crate::content::ContentStore::new(
                store.clone(),
                driver.clone(),
            ));
            let server = api::content::content_server::ContentServer::new(
                content::ContentService::new(store),
            )
            .max_decoding_message_size(opts.max_recv_message_size)
            .max_encoding_message_size(opts.max_send_message_size);
            Some(tonic::service::interceptor::InterceptedService::new(
                server,
                namespace_header::require,
            ))
        }
        _ => None,
    };
    router = router.add_optional_service(content_service);

    // Namespaced services not yet implemented: header check, then Unimplemented.
    let ns = namespace_header::require;
    let router = router
        .add_service(
            api::containers::containers_server::ContainersServer::with_interceptor(
                pending::Pending,
                ns,
            ),
        )
        .add_service(api::images::images_server::ImagesServer::with_interceptor(
            pending::Pending,
            ns,
        ))
        .add_service(api::leases::leases_server::LeasesServer::with_interceptor(
            pending::Pending,
            ns,
        ))
        .add_service(api::tasks::tasks_server::TasksServer::with_interceptor(
            pending::Pending,
            ns,
        ));

    tracing::info!(address = %opts.path.display(), "serving on {}", opts.path.display());
    tracing::info!(
        "rcontainerd successfully booted in {:.3}s",
        started.elapsed().as_secs_f64()
    );
    // On a signal, stop accepting and let open calls finish, but only for
    // SHUTDOWN_DRAIN: a client that ignores GOAWAY (or a long stream) must not
    // keep the daemon alive after SIGTERM.
    let (began, began_rx) = tokio::sync::oneshot::channel::<()>();
    let graceful = async move {
        shutdown.await;
        let _ = began.send(());
    };
    let serving = router.serve_with_incoming_shutdown(UnixListenerStream::new(listener), graceful);
    let result = tokio::select! {
        result = serving => result,
        _ = async {
            if began_rx.await.is_ok() {
                tokio::time::sleep(SHUTDOWN_DRAIN).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!(
                "connections still open {}s after shutdown began; closing them",
                SHUTDOWN_DRAIN.as_secs()
            );
            Ok(())
        }
    };
    remove_socket(&opts.path);
    result.map_err(|e| Error::internal(format!("grpc server: {e}")))
}

fn remove_socket(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "removing socket");
        }
    }
}

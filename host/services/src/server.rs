//! The gRPC endpoint: a unix socket served by tonic.
//!
//! The socket's parent directory is created; a stale socket file is
//! replaced, but if another daemon answers on it we refuse to start rather
//! than steal its address. The socket is `0660` and owned by `grpc.uid/gid`.

use crate::service::{GrpcService, Limits, Routes};
use rcontainerd_core::ids::GRPC_TYPE;
use rcontainerd_core::registry::Registry;
use rcontainerd_pkg::errdefs::{Error, Result};
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

/// Serves the gRPC services the registry's `io.containerd.grpc.v1` plugins
/// provide (a failed plugin's stand-in included) until `shutdown` fires.
pub async fn serve(
    registry: &Registry,
    listener: UnixListener,
    opts: &SocketOptions,
    started: Instant,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let mut routes = Routes::new(Limits {
        max_recv_message_size: opts.max_recv_message_size,
        max_send_message_size: opts.max_send_message_size,
    });
    for service in registry
        .all_with_stand_ins::<Arc<dyn GrpcService>>(GRPC_TYPE)
        .values()
    {
        service.add_routes(&mut routes);
    }
    let router = tonic::transport::Server::builder()
        // Large blobs stream through Content.Write/Read: windows larger than
        // h2's 64 KiB default keep the pipe full on a local socket.
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .add_routes(routes.into_routes());

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

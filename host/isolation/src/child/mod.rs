//! The helper process's side: load one plugin of a library through the
//! ABI, initialise it, and serve its driver on the private socket until
//! SIGTERM (or the daemon's death).

mod privileges;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use rcontainerd_plugin_api::host::load_library;
use rcontainerd_plugin_api::{Driver, InitContext, PluginError};
use thiserror::Error;

use crate::handshake::{DriverKind, Handshake};

/// What the supervisor passes on the command line.
#[derive(Debug, Clone)]
pub struct Args {
    pub uri: String,
    pub library: PathBuf,
    pub socket: PathBuf,
    pub init: InitContext,
    pub capabilities: Vec<String>,
}

#[derive(Debug, Error)]
pub enum ChildError {
    #[error("{0}: {1}")]
    Setup(&'static str, std::io::Error),
    #[error("capabilities: {0}")]
    Capability(String),
    #[error("{}", .0.message)]
    Driver(PluginError),
    #[error("serving: {0}")]
    Serve(String),
}

/// Runs the helper; returns when the driver has stopped serving.
pub fn run(args: Args) -> Result<(), ChildError> {
    let mut handshake = privileges::take_handshake_pipe()?;
    let prepared = privileges::keep_only(&args.capabilities)
        .map_err(|e| PluginError::failed_precondition(e.to_string()))
        .and_then(|()| driver(&args))
        .and_then(|(kind, driver, exports)| {
            let listener = bind(&args)?;
            Ok((kind, driver, exports, listener))
        });
    let (kind, driver, exports, listener) = match prepared {
        Ok(ready) => ready,
        Err(e) => {
            let _ = handshake.write_all(Handshake::failed(&e).to_line().as_bytes());
            return Err(ChildError::Driver(e));
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("isolated-driver")
        .enable_all()
        .build()
        .map_err(|e| ChildError::Setup("start the runtime", e))?;
    runtime.block_on(async move {
        let listener = tokio::net::UnixListener::from_std(listener)
            .map_err(|e| ChildError::Setup("listen", e))?;
        let ready = Handshake::Ready { kind, exports };
        handshake
            .write_all(ready.to_line().as_bytes())
            .map_err(|e| ChildError::Setup("write the handshake", e))?;
        drop(handshake);
        let server = match driver {
            Driver::Snapshotter(driver) => rcontainerd_proxy::serve::snapshotter_over_ttrpc(driver),
            Driver::Content(driver) => rcontainerd_proxy::serve::content_store_over_ttrpc(driver),
            _ => unreachable!("the kind was checked at load"),
        };
        serve_over_ttrpc(server, listener).await
    })
}

/// How long a stopping child waits for the calls it is answering.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the driver over ttrpc on blocking sockets (the accept loop and a
/// thread per connection) until SIGTERM, then lets the calls being answered
/// finish.
async fn serve_over_ttrpc(
    server: std::sync::Arc<rcontainerd_ttrpc::blocking::Server>,
    listener: tokio::net::UnixListener,
) -> Result<(), ChildError> {
    let listener = listener
        .into_std()
        .and_then(|l| l.set_nonblocking(false).map(|()| l))
        .map_err(|e| ChildError::Setup("listen", e))?;
    let accepting = server.clone();
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("ttrpc-accept".into())
        .spawn(move || {
            let result = accepting.serve(listener);
            let _ = failed_tx.send(result);
        })
        .map_err(|e| ChildError::Setup("start the accept thread", e))?;
    tokio::select! {
        _ = terminated() => {}
        Ok(Err(e)) = failed_rx => return Err(ChildError::Serve(e.to_string())),
    }
    if !tokio::task::block_in_place(|| server.stop(DRAIN)) {
        tracing::warn!("calls still running {}s after SIGTERM", DRAIN.as_secs());
    }
    Ok(())
}

/// Loads and initialises the library's plugin `uri`.
fn driver(
    args: &Args,
) -> Result<
    (
        DriverKind,
        Driver,
        std::collections::BTreeMap<String, String>,
    ),
    PluginError,
> {
    let plugins =
        load_library(&args.library).map_err(|e| PluginError::failed_precondition(e.to_string()))?;
    let plugin = plugins
        .into_iter()
        .find(|p| p.manifest().uri() == args.uri)
        .ok_or_else(|| {
            PluginError::not_found(format!(
                "{} has no plugin {}",
                args.library.display(),
                args.uri
            ))
        })?;
    let instance = plugin.init(args.init.clone())?;
    let kind = match &instance.driver {
        Driver::Snapshotter(_) => DriverKind::Snapshotter,
        Driver::Content(_) => DriverKind::Content,
        other => {
            return Err(PluginError::failed_precondition(format!(
                "isolation serves snapshotter and content drivers; {} provides {other:?}",
                args.uri
            )))
        }
    };
    Ok((kind, instance.driver, instance.exports))
}

/// The private socket, readable and writable by the owner (the daemon's
/// user) only.
fn bind(args: &Args) -> Result<std::os::unix::net::UnixListener, PluginError> {
    let io = |what: &str, e| PluginError::io(format_args!("{what} {}", args.socket.display()), e);
    match std::fs::remove_file(&args.socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io("remove", e)),
        _ => {}
    }
    let listener =
        std::os::unix::net::UnixListener::bind(&args.socket).map_err(|e| io("bind", e))?;
    std::fs::set_permissions(&args.socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| io("chmod", e))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| io("listen on", e))?;
    Ok(listener)
}

/// Resolves on SIGTERM or SIGINT: the supervisor's stop.
async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

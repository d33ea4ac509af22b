//! The readiness probe: containerd's `Version` RPC over the daemon's unix socket, retried until it answers.

use anyhow::{bail, Context};
use hyper_util::rt::TokioIo;
use rcontainerd_api::services::version::version_client::VersionClient;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint};

/// Pause between attempts.
const RETRY: Duration = Duration::from_millis(1);

/// Calls Version every [`RETRY`] until it answers, `child` exits, or `deadline` passes.
/// Returns the version string the daemon reported.
pub async fn wait_for_version(
    socket: &Path,
    child: &mut Child,
    deadline: Instant,
) -> anyhow::Result<String> {
    loop {
        let last_error = match version(socket).await {
            Ok(version) => return Ok(version),
            Err(e) => format!("{e:#}"),
        };
        if let Some(status) = child.try_wait().context("checking on the daemon")? {
            bail!(
                "daemon exited with {status} before answering Version (last attempt: {last_error})"
            );
        }
        if Instant::now() >= deadline {
            bail!("daemon did not answer Version in time (last attempt: {last_error})");
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One attempt: connect, call, and return the version string.
async fn version(socket: &Path) -> anyhow::Result<String> {
    let channel = connect(socket.to_owned()).await?;
    let reply = VersionClient::new(channel)
        .version(())
        .await
        .context("calling Version")?;
    Ok(reply.into_inner().version)
}

pub async fn connect(socket: PathBuf) -> anyhow::Result<Channel> {
    let context = format!("connecting to {}", socket.display());
    // The URI is never dialled (the connector ignores it); `localhost` is the authority ctr sends.
    Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move { UnixStream::connect(socket).await.map(TokioIo::new) }
        }))
        .await
        .context(context)
}

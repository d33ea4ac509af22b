//! The readiness probe: containerd's `Version` RPC over the daemon's unix socket, retried until it answers.

use crate::client;
use anyhow::{bail, Context};
use rcontainerd_api::services::version::version_client::VersionClient;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

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
    let channel = client::connect(socket).await?;
    let reply = VersionClient::new(channel)
        .version(())
        .await
        .context("calling Version")?;
    Ok(reply.into_inner().version)
}

//! One daemon started in a fresh run directory for a throughput benchmark.

use crate::boot::{self, Daemon};
use crate::client;
use crate::daemon::Subject;
use crate::workdir::WorkDir;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::Channel;

/// A running daemon in its own directory; stopped by [`Session::stop`] (or on drop, which also cleans up).
pub struct Session {
    // Field order matters on drop: the daemon dies before its directory is cleaned.
    daemon: Option<Daemon>,
    socket: PathBuf,
    dir: WorkDir,
}

impl Session {
    pub fn start(
        subject: &Subject,
        tmp_dir: Option<&Path>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let dir = WorkDir::new(tmp_dir)?;
        let mut launch = subject
            .prepare(dir.path())
            .context("preparing the run directory")?;
        let (daemon, _, _) = boot::boot(timeout, subject, &mut launch)?;
        Ok(Self {
            daemon: Some(daemon),
            socket: launch.socket,
            dir,
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub async fn connect(&self) -> anyhow::Result<Channel> {
        client::connect(&self.socket).await
    }

    /// Stops the daemon (SIGTERM, then SIGKILL) and hands back its run directory, for the caller to
    /// remove when deleting it cannot slow a measurement down.
    pub fn stop(mut self) -> anyhow::Result<WorkDir> {
        if let Some(daemon) = self.daemon.take() {
            daemon.stop()?;
        }
        Ok(self.dir)
    }
}

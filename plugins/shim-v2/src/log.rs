//! `<bundle>/log`: the FIFO a shim writes its log into. The daemon must hold it open before the
//! shim starts — the shim opens it write-only without creating it, and dies if it cannot — and
//! copies what arrives into its own log.

use std::path::PathBuf;

use nix::sys::stat::Mode;
use rcontainerd_plugin_api::{PluginError, Result};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::bundle::Bundle;

/// The reading end; dropping it stops the copy.
pub struct ShimLog {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ShimLog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ShimLog {
    /// Makes the FIFO and starts copying from it.
    pub fn create(bundle: &Bundle, handle: &tokio::runtime::Handle) -> Result<ShimLog> {
        let path = bundle.path.join("log");
        nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o700)).map_err(|e| {
            PluginError::io(
                format!("mkfifo {}", path.display()),
                std::io::Error::from(e),
            )
        })?;
        Self::open(bundle, handle)
    }

    /// Opens an existing FIFO (a shim that outlived the previous daemon) and copies from it.
    pub fn open(bundle: &Bundle, handle: &tokio::runtime::Handle) -> Result<ShimLog> {
        let path: PathBuf = bundle.path.join("log");
        let _entered = handle.enter();
        // Read-write: opening never blocks for a writer, and EOF never comes while we hold it.
        let receiver = tokio::net::unix::pipe::OpenOptions::new()
            .read_write(true)
            .open_receiver(&path)
            .map_err(|e| PluginError::io(format!("open {}", path.display()), e))?;
        let id = bundle.id.clone();
        let namespace = bundle.namespace.clone();
        let task = handle.spawn(async move {
            let mut lines = BufReader::new(receiver).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!(target: "shim", id = %id, ns = %namespace, "{line}");
            }
        });
        Ok(ShimLog { task })
    }
}
